package pipeline

import (
	"sort"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/value"
)

// sortKey is one field of a sort specification.
type sortKey struct {
	path []string
	desc bool
}

func parseSortKeys(stage, field string, spec bson.Raw) ([]sortKey, error) {
	elems, err := spec.Elements()
	if err != nil || len(elems) == 0 {
		return nil, errf(stage, field, "must have at least one sort key")
	}
	var keys []sortKey
	for _, e := range elems {
		dir, err := intField(stage, join(field, e.Key()), e.Value())
		if err != nil || (dir != 1 && dir != -1) {
			return nil, errf(stage, join(field, e.Key()), "must be 1 (ascending) or -1 (descending)")
		}
		keys = append(keys, sortKey{path: strings.Split(e.Key(), "."), desc: dir == -1})
	}
	return keys, nil
}

// sortValue is the value a document sorts by on one key: missing sorts as null; for an array
// the smallest element (ascending) or the largest (descending), as MongoDB does.
func sortValue(doc bson.Raw, k sortKey) bson.RawValue {
	v, err := doc.LookupErr(k.path...)
	if err != nil || v.Type == 0 {
		return nullValue
	}
	if v.Type == bson.TypeArray {
		vals, _ := v.Array().Values()
		if len(vals) == 0 {
			return bson.RawValue{Type: bson.TypeUndefined}
		}
		best := vals[0]
		for _, x := range vals[1:] {
			c := value.Compare(x, best)
			if (!k.desc && c < 0) || (k.desc && c > 0) {
				best = x
			}
		}
		return best
	}
	return v
}

func compareBySort(keys []sortKey, a, b bson.Raw) int {
	for _, k := range keys {
		c := value.Compare(sortValue(a, k), sortValue(b, k))
		if k.desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

// sortStage is $sort inside a window: it orders the window's documents (stably).
type sortStage struct{ keys []sortKey }

func parseSort(spec bson.RawValue) (Stage, error) {
	doc, ok := spec.DocumentOK()
	if !ok {
		return nil, errf("$sort", "", "takes a sort specification like {field: 1}, not %s", typeName(spec))
	}
	keys, err := parseSortKeys("$sort", "", doc)
	if err != nil {
		return nil, err
	}
	return &sortStage{keys: keys}, nil
}

func (s *sortStage) Name() string { return "$sort" }

func (s *sortStage) Process(d *Doc, _ *[]byte, emit func(*Doc)) error { emit(d); return nil }

func (s *sortStage) apply(docs []*Doc) ([]*Doc, error) {
	sort.SliceStable(docs, func(i, j int) bool { return compareBySort(s.keys, docs[i].Raw, docs[j].Raw) < 0 })
	return docs, nil
}

// limitStage is $limit inside a window.
type limitStage struct{ n int64 }

func parseLimit(spec bson.RawValue) (Stage, error) {
	n, err := intField("$limit", "", spec)
	if err != nil || n < 1 {
		return nil, errf("$limit", "", "must be a positive integer")
	}
	return &limitStage{n: n}, nil
}

func (s *limitStage) Name() string { return "$limit" }

func (s *limitStage) Process(d *Doc, _ *[]byte, emit func(*Doc)) error { emit(d); return nil }

func (s *limitStage) apply(docs []*Doc) ([]*Doc, error) {
	if int64(len(docs)) > s.n {
		docs = docs[:s.n]
	}
	return docs, nil
}

// countStage is $count inside a window: one document {<field>: <number of documents>}.
type countStage struct{ field string }

func parseCount(spec bson.RawValue) (Stage, error) {
	f, ok := spec.StringValueOK()
	if !ok || f == "" || strings.HasPrefix(f, "$") || strings.Contains(f, ".") || strings.ContainsRune(f, 0) {
		return nil, errf("$count", "", "must be a non-empty field name without '$' or '.'")
	}
	return &countStage{field: f}, nil
}

func (s *countStage) Name() string { return "$count" }

func (s *countStage) Process(d *Doc, _ *[]byte, emit func(*Doc)) error { emit(d); return nil }

func (s *countStage) apply(docs []*Doc) ([]*Doc, error) {
	if len(docs) == 0 {
		return nil, nil
	}
	doc, _ := bson.Marshal(bson.D{{Key: s.field, Value: int32(len(docs))}})
	return []*Doc{{Raw: doc, Meta: docs[0].Meta, Time: docs[0].Time}}, nil
}

// batchStage is a stage that needs all of a window's documents at once.
type batchStage interface {
	Stage
	apply(docs []*Doc) ([]*Doc, error)
}
