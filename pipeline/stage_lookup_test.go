package pipeline

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/match"
)

func lookupSpec(extra ...bson.E) bson.D {
	d := bson.D{{Key: "from", Value: bson.D{{Key: "connectionName", Value: "c"}, {Key: "db", Value: "shop"}, {Key: "coll", Value: "inventory"}}}}
	return append(d, extra...)
}

var (
	lf    = bson.E{Key: "localField", Value: "item"}
	ff    = bson.E{Key: "foreignField", Value: "sku"}
	asX   = bson.E{Key: "as", Value: "x"}
	ttl   = bson.E{Key: "ttl", Value: bson.D{{Key: "size", Value: 1}, {Key: "unit", Value: "minute"}}}
	mem   = bson.E{Key: "maxMemUsageBytes", Value: 1 << 20}
	pipeE = bson.E{Key: "pipeline", Value: bson.A{bson.D{{Key: "$match", Value: bson.D{{Key: "$expr", Value: bson.D{{Key: "$eq", Value: bson.A{"$sku", "$$it"}}}}}}}}}
	letE  = bson.E{Key: "let", Value: bson.D{{Key: "it", Value: "$item"}}}
)

// Option errors of $lookup and $cachedLookup name the field (Atlas's $lookup and
// $cachedLookup pages, spec §3.4); the three $lookup syntaxes and $cachedLookup parse.
func TestParseLookup(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stage string
		spec  bson.D
		want  string // "" parses
	}{
		{"equality", "$lookup", lookupSpec(lf, ff, asX), ""},
		{"let/pipeline", "$lookup", lookupSpec(letE, pipeE, asX), ""},
		{"concise", "$lookup", lookupSpec(lf, ff, letE, pipeE, asX), ""},
		{"pipeline without let", "$lookup", lookupSpec(bson.E{Key: "pipeline", Value: bson.A{bson.D{{Key: "$limit", Value: 1}}}}, asX), ""},
		{"parallelism", "$lookup", lookupSpec(lf, ff, asX, bson.E{Key: "parallelism", Value: 4}, bson.E{Key: "partitionBy", Value: "$item"}), ""},
		{"cached", "$cachedLookup", lookupSpec(lf, ff, asX, ttl, mem), ""},
		{"no from", "$lookup", bson.D{lf, ff, asX}, "$lookup.from is required"},
		{"from a string", "$lookup", bson.D{{Key: "from", Value: "inventory"}, lf, ff, asX}, "$lookup.from must be {connectionName, db, coll}"},
		{"from without coll", "$lookup", bson.D{{Key: "from", Value: bson.D{{Key: "connectionName", Value: "c"}, {Key: "db", Value: "shop"}}}, lf, ff, asX}, "$lookup.from.coll is required"},
		{"from unknown field", "$lookup", bson.D{{Key: "from", Value: bson.D{{Key: "connectionName", Value: "c"}, {Key: "db", Value: "shop"}, {Key: "coll", Value: "i"}, {Key: "x", Value: 1}}}, lf, ff, asX}, "$lookup.from.x is not a known option"},
		{"bad db", "$lookup", bson.D{{Key: "from", Value: bson.D{{Key: "connectionName", Value: "c"}, {Key: "db", Value: "a.b"}, {Key: "coll", Value: "i"}}}, lf, ff, asX}, "$lookup.from.db"},
		{"localField alone", "$lookup", lookupSpec(lf, asX), "$lookup.foreignField is required with localField"},
		{"foreignField alone", "$lookup", lookupSpec(ff, asX), "$lookup.localField is required with foreignField"},
		{"localField a number", "$lookup", lookupSpec(bson.E{Key: "localField", Value: 1}, ff, asX), "$lookup.localField must be a field path string"},
		{"localField with $", "$lookup", lookupSpec(bson.E{Key: "localField", Value: "$item"}, ff, asX), "$lookup.localField"},
		{"nothing to join on", "$lookup", lookupSpec(asX), "localField and foreignField, or pipeline, are required"},
		{"no as", "$lookup", lookupSpec(lf, ff), "$lookup.as is required"},
		{"as with $", "$lookup", lookupSpec(lf, ff, bson.E{Key: "as", Value: "$x"}), "$lookup.as"},
		{"let without pipeline", "$lookup", lookupSpec(lf, ff, letE, asX), "$lookup.let needs a pipeline"},
		{"let a bad name", "$lookup", lookupSpec(bson.E{Key: "let", Value: bson.D{{Key: "Item", Value: 1}}}, pipeE, asX), "$lookup.let.Item"},
		{"let a bad expression", "$lookup", lookupSpec(bson.E{Key: "let", Value: bson.D{{Key: "it", Value: bson.D{{Key: "$nope", Value: 1}}}}}, pipeE, asX), "$lookup.let.it"},
		{"undefined variable", "$lookup", lookupSpec(pipeE, asX), "Use of undefined variable: it"},
		{"pipeline not an array", "$lookup", lookupSpec(bson.E{Key: "pipeline", Value: 1}, asX), "$lookup.pipeline must be an array"},
		{"pipeline bad stage", "$lookup", lookupSpec(bson.E{Key: "pipeline", Value: bson.A{bson.D{{Key: "$merge", Value: bson.D{}}}}}, asX), "$lookup.pipeline.0"},
		{"nested lookup", "$lookup", lookupSpec(bson.E{Key: "pipeline", Value: bson.A{bson.D{{Key: "$lookup", Value: bson.D{}}}}}, asX), "nested $lookup is not supported yet"},
		{"parallelism 0", "$lookup", lookupSpec(lf, ff, asX, bson.E{Key: "parallelism", Value: 0}), "$lookup.parallelism must be 1 to 16"},
		{"parallelism 17", "$lookup", lookupSpec(lf, ff, asX, bson.E{Key: "parallelism", Value: 17}), "$lookup.parallelism must be 1 to 16"},
		{"unknown option", "$lookup", lookupSpec(lf, ff, asX, bson.E{Key: "ttl", Value: 1}), "$lookup.ttl is not a known option"},
		{"cached without ttl", "$cachedLookup", lookupSpec(lf, ff, asX, mem), "$cachedLookup.ttl is required"},
		{"cached bad ttl unit", "$cachedLookup", lookupSpec(lf, ff, asX, mem, bson.E{Key: "ttl", Value: bson.D{{Key: "size", Value: 1}, {Key: "unit", Value: "week"}}}), "$cachedLookup.ttl"},
		{"cached ttl 0", "$cachedLookup", lookupSpec(lf, ff, asX, mem, bson.E{Key: "ttl", Value: bson.D{{Key: "size", Value: 0}, {Key: "unit", Value: "ms"}}}), "$cachedLookup.ttl.size must be a positive integer"},
		{"cached without maxMem", "$cachedLookup", lookupSpec(lf, ff, asX, ttl), "$cachedLookup.maxMemUsageBytes is required"},
		{"cached maxMem 0", "$cachedLookup", lookupSpec(lf, ff, asX, ttl, bson.E{Key: "maxMemUsageBytes", Value: 0}), "$cachedLookup.maxMemUsageBytes must be positive"},
		{"cached maxMem a string", "$cachedLookup", lookupSpec(lf, ff, asX, ttl, bson.E{Key: "maxMemUsageBytes", Value: "1GB"}), "$cachedLookup.maxMemUsageBytes must be an integer"},
		{"cached with let", "$cachedLookup", lookupSpec(lf, ff, asX, ttl, mem, letE), "$cachedLookup.let is not supported by $cachedLookup"},
		{"cached with pipeline", "$cachedLookup", lookupSpec(lf, ff, asX, ttl, mem, pipeE), "$cachedLookup.pipeline is not supported by $cachedLookup"},
		{"cached without localField", "$cachedLookup", lookupSpec(asX, ttl, mem), "$cachedLookup.localField"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, b, _ := bson.MarshalValue(bson.A{bson.D{{Key: "$source", Value: bson.D{{Key: "connectionName", Value: "k"}}}}, bson.D{{Key: tc.stage, Value: tc.spec}}})
			p, err := Parse(b, ParseOptions{})
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if len(p.Lookups) != 1 || p.Lookups[0].Stage != tc.stage || p.Lookups[0].ConnectionName != "c" || p.Lookups[0].DB != "shop" || p.Lookups[0].Coll != "inventory" {
					t.Errorf("Lookups: %+v", p.Lookups)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// $cachedLookup only in the main pipeline; $lookup also inside a window (spec §2.1).
func TestLookupPlacement(t *testing.T) {
	inWindow := func(stage string, spec bson.D) error {
		_, b, _ := bson.MarshalValue(bson.A{bson.D{{Key: "$source", Value: bson.D{{Key: "connectionName", Value: "k"}}}}, bson.D{{Key: "$tumblingWindow", Value: bson.D{
			{Key: "interval", Value: bson.D{{Key: "size", Value: 1}, {Key: "unit", Value: "second"}}},
			{Key: "pipeline", Value: bson.A{bson.D{{Key: stage, Value: spec}}}}}}}})
		_, err := Parse(b, ParseOptions{})
		return err
	}
	if err := inWindow("$lookup", lookupSpec(lf, ff, asX)); err != nil {
		t.Errorf("$lookup in a window: %v", err)
	}
	if err := inWindow("$cachedLookup", lookupSpec(lf, ff, asX, ttl, mem)); err == nil || !strings.Contains(err.Error(), "not allowed inside a window") {
		t.Errorf("$cachedLookup in a window: %v", err)
	}
}

// The find's filter: {foreignField: {$in: keys}} where keys are an array localField's
// elements, null for a missing or null one, else the value (MongoDB's $lookup manual); with a
// let pipeline whose head $match compares a field to a variable, that equality joins it.
func TestLookupFilter(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec bson.D
		doc  bson.D
		want string
	}{
		{"scalar", lookupSpec(lf, ff, asX), bson.D{{Key: "item", Value: "a"}}, `{"sku": {"$in": ["a"]}}`},
		{"array", lookupSpec(lf, ff, asX), bson.D{{Key: "item", Value: bson.A{"a", 2}}}, `{"sku": {"$in": ["a",{"$numberInt":"2"}]}}`},
		{"missing", lookupSpec(lf, ff, asX), bson.D{}, `{"sku": {"$in": [null]}}`},
		{"null", lookupSpec(lf, ff, asX), bson.D{{Key: "item", Value: nil}}, `{"sku": {"$in": [null]}}`},
		// mongod's jstests/aggregation/sources/lookup/lookup_equijoin_semantics.js: an empty
		// array matches like null; a path goes into arrays of documents, and an array at its
		// end gives its elements, an array element staying one value.
		{"empty array", lookupSpec(lf, ff, asX), bson.D{{Key: "item", Value: bson.A{}}}, `{"sku": {"$in": [null]}}`},
		{"nested arrays", lookupSpec(lf, ff, asX), bson.D{{Key: "item", Value: bson.A{bson.A{nil, 1}, 2}}}, `{"sku": {"$in": [[null,{"$numberInt":"1"}],{"$numberInt":"2"}]}}`},
		{"path into array of arrays", lookupSpec(bson.E{Key: "localField", Value: "a.x"}, ff, asX), bson.D{{Key: "a", Value: bson.A{bson.D{{Key: "x", Value: bson.A{1, 2}}}}}}, `{"sku": {"$in": [{"$numberInt":"1"},{"$numberInt":"2"}]}}`},
		{"path with a missing element", lookupSpec(bson.E{Key: "localField", Value: "a.x"}, ff, asX), bson.D{{Key: "a", Value: bson.A{bson.D{{Key: "no_x", Value: 2}}, bson.D{{Key: "x", Value: 1}}}}}, `{"sku": {"$in": [{"$numberInt":"1"}]}}`},
		{"path missing everywhere", lookupSpec(bson.E{Key: "localField", Value: "a.x"}, ff, asX), bson.D{{Key: "a", Value: bson.A{bson.D{{Key: "no_x", Value: 2}}}}}, `{"sku": {"$in": [null]}}`},
		{"dotted", lookupSpec(bson.E{Key: "localField", Value: "a.b"}, ff, asX), bson.D{{Key: "a", Value: bson.A{bson.D{{Key: "b", Value: 1}}, bson.D{{Key: "b", Value: 2}}}}}, `{"sku": {"$in": [{"$numberInt":"1"},{"$numberInt":"2"}]}}`},
		{"let pushdown", lookupSpec(letE, pipeE, asX), bson.D{{Key: "item", Value: "a"}}, `{"sku": {"$eq": "a"}}`},
		{"let missing", lookupSpec(letE, pipeE, asX), bson.D{}, `{}`},
		{"let an array", lookupSpec(letE, pipeE, asX), bson.D{{Key: "item", Value: bson.A{"a"}}}, `{}`},
		{"concise", lookupSpec(lf, ff, letE, pipeE, asX), bson.D{{Key: "item", Value: "a"}}, `{"$and": [{"sku": {"$in": ["a"]}},{"sku": {"$eq": "a"}}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := parseLookup(rawVal(tc.spec))
			if err != nil {
				t.Fatal(err)
			}
			s := st.(*lookupStage)
			src := &recordingSource{}
			s.src, s.ctx = src, context.Background()
			d := &Doc{Raw: mustDoc(tc.doc)}
			if err := s.Process(d, nil, func(*Doc) {}); err != nil {
				t.Fatal(err)
			}
			if len(src.filters) != 1 || src.filters[0].String() != tc.want {
				t.Errorf("filters %v, want %s", src.filters, tc.want)
			}
		})
	}
}

// recordingSource answers every find with no document and records the filters. It stands for
// the deployment only where the filter, not the answer, is under test; the answers are tested
// against FerretDB (e2e TestLookupFromFerretDB).
type recordingSource struct {
	filters []bson.Raw
	err     error
}

func (r *recordingSource) Find(_ context.Context, f bson.Raw) ([]bson.Raw, error) {
	r.filters = append(r.filters, f)
	return nil, r.err
}

func rawVal(d bson.D) bson.RawValue {
	b, _ := bson.Marshal(d)
	return bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: b}
}

// A deployment failure during a lookup is not a dead letter: the engine stops the batch and
// Err reports it. (The failure is a fake here; e2e TestLookupFromFerretDB shows a real
// unreachable deployment failing the processor.)
func TestLookupFailureStopsEngine(t *testing.T) {
	plan := mustPlan(t, bson.D{{Key: "$lookup", Value: lookupSpec(lf, ff, asX)}})
	boom := errors.New("deployment unreachable")
	src := &recordingSource{err: boom}
	plan.Lookups[0].Bind(context.Background(), src)
	eng := NewEngine(plan, Options{})
	r := eng.Push([]Input{{Doc: mustDoc(bson.D{{Key: "item", Value: "a"}})}, {Doc: mustDoc(bson.D{{Key: "item", Value: "b"}})}})
	if !errors.Is(eng.Err(), boom) {
		t.Fatalf("Err = %v, want %v", eng.Err(), boom)
	}
	if len(r.DLQ) != 0 || len(r.Out) != 0 || len(src.filters) != 1 {
		t.Errorf("after a failure: %d outputs, %d dead letters, %d finds; want 0, 0, 1", len(r.Out), len(r.DLQ), len(src.filters))
	}
}

// The cache keeps results for ttl, never holds more than max bytes (the results' BSON, the key
// and the per-entry overhead), evicts expired entries before live ones, and does not keep a
// result larger than max.
func TestLookupCacheBounds(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	doc := func(n int) bson.Raw { return mustDoc(bson.D{{Key: "s", Value: strings.Repeat("x", n)}}) }
	entry := func(key string, docs ...bson.Raw) int64 {
		n := int64(lookupEntryOverhead + len(key))
		for _, d := range docs {
			n += int64(len(d)) + lookupDocOverhead
		}
		return n
	}
	one := doc(100)
	per := entry("k00", one)
	c := newLookupCache(time.Minute, 3*per)
	for i := range 50 {
		k := "k" + string(rune('0'+i/10)) + string(rune('0'+i%10))
		c.put(k, []bson.Raw{one}, now)
		if c.used > c.max {
			t.Fatalf("after %d puts the cache holds %d bytes, over its %d", i+1, c.used, c.max)
		}
	}
	if c.Evictions != 47 || c.Misses != 0 {
		t.Errorf("%d evictions, %d misses; want 47 and 0", c.Evictions, c.Misses)
	}
	if len(c.entries) != 3 || c.used != 3*per {
		t.Errorf("%d entries, %d bytes; want 3 and %d", len(c.entries), c.used, 3*per)
	}
	// Hits within ttl, misses after it.
	var live string
	for k := range c.entries {
		live = k
	}
	if _, ok := c.get(live, now.Add(59*time.Second)); !ok {
		t.Error("an entry is gone before its ttl")
	}
	if _, ok := c.get(live, now.Add(time.Minute)); ok {
		t.Error("an entry outlived its ttl")
	}
	if len(c.entries) != 2 || c.used != 2*per {
		t.Errorf("an expired entry was not removed: %d entries, %d bytes", len(c.entries), c.used)
	}
	// Expired entries go first: two old entries expire, a fresh one is added at a later time,
	// and a new entry needing two entries' room evicts the expired ones, not the fresh one.
	c2 := newLookupCache(time.Minute, 3*per)
	c2.put("old1", []bson.Raw{one}, now)
	c2.put("old2", []bson.Raw{one}, now)
	later := now.Add(2 * time.Minute)
	c2.put("new", []bson.Raw{one}, later)
	c2.put("big", []bson.Raw{one, doc(100 + lookupEntryOverhead)}, later)
	if _, ok := c2.entries["new"]; !ok {
		t.Errorf("a live entry was evicted while expired ones were there: %v", c2.keys)
	}
	if _, ok := c2.entries["big"]; !ok || c2.used > c2.max {
		t.Errorf("big not cached or over the limit: %v, %d of %d", c2.keys, c2.used, c2.max)
	}
	// Too big on its own: not cached, and nothing else evicted for it.
	c2.put("huge", []bson.Raw{doc(int(3 * per))}, later)
	if _, ok := c2.entries["huge"]; ok || c2.used > c2.max {
		t.Errorf("an entry over maxMemUsageBytes was cached")
	}
	// keys and entries agree after all this.
	if len(c2.keys) != len(c2.entries) {
		t.Errorf("%d keys, %d entries", len(c2.keys), len(c2.entries))
	}
	for i, k := range c2.keys {
		if c2.entries[k].at != i {
			t.Errorf("entry %s at %d, listed at %d", k, c2.entries[k].at, i)
		}
	}
}

// collectionSource answers a find with the documents of its collection the filter matches
// (by spid's own query matcher) and records the filters. It stands for the deployment where
// the number and shape of the finds are under test; the deployment's answers are tested
// against FerretDB (e2e TestLookupFromFerretDB).
type collectionSource struct {
	docs    []bson.Raw
	filters []bson.Raw
}

func (c *collectionSource) Find(_ context.Context, f bson.Raw) ([]bson.Raw, error) {
	c.filters = append(c.filters, f)
	m, err := match.Compile(f, match.Options{})
	if err != nil {
		return nil, err
	}
	var out []bson.Raw
	for _, d := range c.docs {
		if ok, err := m.Match(d, nil); err == nil && ok {
			out = append(out, d)
		}
	}
	return out, nil
}

// The documents of one Push are looked up with one find ({foreignField: {$in: [every key]}}
// for the equality form), and each gets the foreign documents that match its own key, by
// MongoDB's equality rules (an array matches by element, null matches null and missing); a
// document whose let fails is a dead letter and the others go on.
func TestLookupBatchesFinds(t *testing.T) {
	coll := &collectionSource{docs: []bson.Raw{
		mustDoc(bson.D{{Key: "_id", Value: 1}, {Key: "sku", Value: "a"}}),
		mustDoc(bson.D{{Key: "_id", Value: 2}, {Key: "sku", Value: bson.A{"b", "c"}}}),
		mustDoc(bson.D{{Key: "_id", Value: 3}, {Key: "sku", Value: nil}}),
		mustDoc(bson.D{{Key: "_id", Value: 4}}),
	}}
	plan := mustPlan(t, bson.D{{Key: "$lookup", Value: lookupSpec(lf, ff, asX)}}, bson.D{{Key: "$project", Value: bson.D{{Key: "_id", Value: 0}, {Key: "item", Value: 1}, {Key: "x", Value: "$x._id"}}}})
	plan.Lookups[0].Bind(context.Background(), coll)
	eng := NewEngine(plan, Options{})
	var in []Input
	for _, item := range []any{"a", "b", bson.A{"a", "c"}, nil, "zz", "a"} {
		d := bson.D{{Key: "item", Value: item}}
		if item == nil {
			d = bson.D{}
		}
		in = append(in, Input{Doc: mustDoc(d)})
	}
	r := eng.Push(in)
	if eng.Err() != nil {
		t.Fatal(eng.Err())
	}
	if len(coll.filters) != 1 || coll.filters[0].String() != `{"sku": {"$in": ["a","b","c",null,"zz"]}}` {
		t.Errorf("finds: %v, want one with every key", coll.filters)
	}
	var got []string
	for _, o := range r.Out {
		v := o.Lookup("x")
		got = append(got, v.String())
	}
	want := []string{`[{"$numberInt":"1"}]`, `[{"$numberInt":"2"}]`, `[{"$numberInt":"1"},{"$numberInt":"2"}]`, `[{"$numberInt":"3"},{"$numberInt":"4"}]`, `[]`, `[{"$numberInt":"1"}]`}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("matches\n%v\nwant\n%v", got, want)
	}

	// let/pipeline: the documents' pushed-down equalities are sent as one $in; a let that
	// fails is a dead letter.
	coll.filters = nil
	plan = mustPlan(t, bson.D{{Key: "$lookup", Value: lookupSpec(bson.E{Key: "let", Value: bson.D{{Key: "it", Value: bson.D{{Key: "$toLower", Value: "$item"}}}, {Key: "q", Value: bson.D{{Key: "$divide", Value: bson.A{1, "$n"}}}}}},
		pipeE, asX)}})
	plan.Lookups[0].Bind(context.Background(), coll)
	eng = NewEngine(plan, Options{})
	r = eng.Push([]Input{
		{Doc: mustDoc(bson.D{{Key: "item", Value: "A"}, {Key: "n", Value: 1}})},
		{Doc: mustDoc(bson.D{{Key: "item", Value: "B"}, {Key: "n", Value: 0}})},
		{Doc: mustDoc(bson.D{{Key: "item", Value: "c"}, {Key: "n", Value: 2}})},
	})
	if len(coll.filters) != 1 || coll.filters[0].String() != `{"sku": {"$in": ["a","c"]}}` {
		t.Errorf("finds: %v, want one $in of the pushed-down values", coll.filters)
	}
	if len(r.Out) != 2 || len(r.DLQ) != 1 || !strings.Contains(r.DLQ[0].String(), "divide by zero") {
		t.Fatalf("%d outputs, dead letters %v; want 2 and one for $divide", len(r.Out), r.DLQ)
	}
	// The find's {sku: "c"} matches the array ["b", "c"]; the pipeline's $expr $eq does not
	// (aggregation equality compares the whole array), so c gets nothing, as in mongod.
	if got := r.Out[0].Lookup("x").String(); !strings.Contains(got, `"_id": {"$numberInt":"1"}`) || strings.Contains(got, `"$numberInt":"2"`) {
		t.Errorf("a matched %s, want the document _id 1 only", got)
	}
	if got := r.Out[1].Lookup("x").String(); got != `[]` {
		t.Errorf("c matched %s, want nothing", got)
	}
	ops := eng.Operators()
	if ops[0].Name != "$lookup" || ops[0].InputCount != 3 || ops[0].DLQCount != 1 || ops[0].OutputCount != 2 {
		t.Errorf("operator stats %+v", ops[0])
	}

	// The concise form with a pushed-down equality: the documents' filters go as one $or.
	coll.filters = nil
	plan = mustPlan(t, bson.D{{Key: "$lookup", Value: lookupSpec(lf, ff, letE, pipeE, asX)}})
	plan.Lookups[0].Bind(context.Background(), coll)
	eng = NewEngine(plan, Options{})
	r = eng.Push([]Input{{Doc: mustDoc(bson.D{{Key: "item", Value: "a"}})}, {Doc: mustDoc(bson.D{{Key: "item", Value: "b"}})}})
	if len(coll.filters) != 1 || !strings.HasPrefix(coll.filters[0].String(), `{"$or": [{"$and": [{"sku": {"$in": ["a"]}},{"sku": {"$eq": "a"}}]}`) {
		t.Errorf("finds: %v, want one $or", coll.filters)
	}
	if len(r.Out) != 2 || !strings.Contains(r.Out[0].Lookup("x").String(), `"_id": {"$numberInt":"1"}`) {
		t.Errorf("concise outputs %v", r.Out)
	}
}

// Inside a window, a $lookup before $group is answered in batches like any chained stage, and
// one after $group looks up each of the window's results when the window closes.
func TestLookupInWindow(t *testing.T) {
	coll := &collectionSource{docs: []bson.Raw{
		mustDoc(bson.D{{Key: "_id", Value: 1}, {Key: "sku", Value: "a"}, {Key: "w", Value: 10}}),
		mustDoc(bson.D{{Key: "_id", Value: 2}, {Key: "sku", Value: "b"}, {Key: "w", Value: 20}}),
	}}
	window := func(inner ...bson.D) bson.D {
		arr := bson.A{}
		for _, s := range inner {
			arr = append(arr, s)
		}
		return bson.D{{Key: "$tumblingWindow", Value: bson.D{{Key: "interval", Value: bson.D{{Key: "size", Value: 10}, {Key: "unit", Value: "second"}}}, {Key: "pipeline", Value: arr}}}}
	}
	before := bson.D{{Key: "$lookup", Value: lookupSpec(lf, ff, asX)}}
	sumW := bson.D{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$item"}, {Key: "w", Value: bson.D{{Key: "$sum", Value: bson.D{{Key: "$sum", Value: "$x.w"}}}}}}}}
	after := bson.D{{Key: "$lookup", Value: lookupSpec(bson.E{Key: "localField", Value: "_id"}, ff, asX)}}
	count := bson.D{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$item"}, {Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}}}}}
	sortID := bson.D{{Key: "$sort", Value: bson.D{{Key: "_id", Value: 1}}}}
	in := []Input{
		{Doc: mustDoc(bson.D{{Key: "item", Value: "a"}}), Time: 1000},
		{Doc: mustDoc(bson.D{{Key: "item", Value: "b"}}), Time: 2000},
		{Doc: mustDoc(bson.D{{Key: "item", Value: "a"}}), Time: 3000},
	}
	for _, tc := range []struct {
		name  string
		inner []bson.D
		finds int
		want  []string
	}{
		{"before $group", []bson.D{before, sumW, sortID}, 1, []string{`"w": {"$numberInt":"20"}`, `"w": {"$numberInt":"20"}`}},
		{"after $group", []bson.D{count, sortID, after}, 2, []string{`"x": [{"_id": {"$numberInt":"1"}`, `"x": [{"_id": {"$numberInt":"2"}`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			coll.filters = nil
			plan := mustPlan(t, window(tc.inner...))
			plan.Lookups[0].Bind(context.Background(), coll)
			eng := NewEngine(plan, Options{})
			r := eng.Push(in)
			r.Merge(eng.Flush())
			if eng.Err() != nil || len(r.DLQ) != 0 || len(r.Out) != 2 {
				t.Fatalf("err %v, %d dead letters, %d outputs", eng.Err(), len(r.DLQ), len(r.Out))
			}
			for i, w := range tc.want {
				if !strings.Contains(r.Out[i].String(), w) {
					t.Errorf("output %d %s lacks %s", i, r.Out[i], w)
				}
			}
			if len(coll.filters) != tc.finds {
				t.Errorf("%d finds, want %d", len(coll.filters), tc.finds)
			}
		})
	}
}
