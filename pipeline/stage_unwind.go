package pipeline

import (
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/spi-streams/spi/pipeline/value"
)

// unwindStage is $unwind: one output document per array element.
type unwindStage struct {
	path       []string
	indexField string
	preserve   bool
}

func parseUnwind(spec bson.RawValue) (Stage, error) {
	s := &unwindStage{}
	var path string
	switch spec.Type {
	case bson.TypeString:
		path = spec.StringValue()
	case bson.TypeEmbeddedDocument:
		doc := spec.Document()
		if err := checkFields("$unwind", "", doc, "path", "includeArrayIndex", "preserveNullAndEmptyArrays"); err != nil {
			return nil, err
		}
		p, ok := doc.Lookup("path").StringValueOK()
		if !ok {
			return nil, errf("$unwind", "path", "is required and must be a string like \"$items\"")
		}
		path = p
		if v, err := doc.LookupErr("includeArrayIndex"); err == nil {
			name, ok := v.StringValueOK()
			if !ok || name == "" || strings.HasPrefix(name, "$") || strings.ContainsRune(name, 0) {
				return nil, errf("$unwind", "includeArrayIndex", "must be a field name that does not start with '$'")
			}
			s.indexField = name
		}
		if v, err := doc.LookupErr("preserveNullAndEmptyArrays"); err == nil {
			b, ok := v.BooleanOK()
			if !ok {
				return nil, errf("$unwind", "preserveNullAndEmptyArrays", "must be a boolean, not %s", typeName(v))
			}
			s.preserve = b
		}
	default:
		return nil, errf("$unwind", "", "takes a field path like \"$items\" or {path: ...}, not %s", typeName(spec))
	}
	if !strings.HasPrefix(path, "$") || len(path) < 2 || strings.HasPrefix(path, "$$") {
		return nil, errf("$unwind", "path", "%q must be a field path starting with '$'", path)
	}
	if strings.ContainsRune(path, 0) {
		return nil, errf("$unwind", "path", "must not contain a null byte")
	}
	s.path = strings.Split(path[1:], ".")
	for _, p := range s.path {
		if p == "" {
			return nil, errf("$unwind", "path", "%q has an empty component", path)
		}
	}
	return s, nil
}

func (s *unwindStage) Name() string { return "$unwind" }

func (s *unwindStage) Process(d *Doc, buf *[]byte, emit func(*Doc)) error {
	v := lookupPath(d.Raw, s.path)
	if v.Type == 0 || v.Type == bson.TypeNull || v.Type == bson.TypeUndefined {
		if s.preserve {
			emit(s.with(d, buf, nil, -1))
		}
		return nil
	}
	if v.Type != bson.TypeArray {
		// A non-array value is treated as a one-element array.
		emit(s.with(d, buf, &v, -2))
		return nil
	}
	it := value.NewIter(v.Value)
	i := 0
	for ; it.Next(); i++ {
		ev := it.Val()
		emit(s.with(d, buf, &ev, i))
	}
	if i == 0 && s.preserve {
		emit(s.with(d, buf, nil, -1))
	}
	return nil
}

// lookupPath returns the value at a dotted path through embedded documents (not arrays), or
// missing.
func lookupPath(doc []byte, path []string) bson.RawValue {
	for _, p := range path[:len(path)-1] {
		v := value.Lookup(doc, p)
		if v.Type != bson.TypeEmbeddedDocument {
			return value.Missing
		}
		doc = v.Value
	}
	return value.Lookup(doc, path[len(path)-1])
}

// with returns d with the path set to v (removed when v is nil and the field was an empty
// array) and the index field set to i (null for -1, none when -2 and no index field).
func (s *unwindStage) with(d *Doc, buf *[]byte, v *bson.RawValue, i int) *Doc {
	out := setPath(d.Raw, s.path, v, scratch(buf, len(d.Raw)+16))
	keep(buf, out)
	if s.indexField != "" {
		var iv bson.RawValue
		switch {
		case i >= 0:
			iv = bson.RawValue{Type: bson.TypeInt64, Value: bsoncore.AppendInt64(nil, int64(i))}
		default:
			iv = bson.RawValue{Type: bson.TypeNull}
		}
		out = setPath(out, strings.Split(s.indexField, "."), &iv, nil)
	}
	nd := *d
	nd.Raw = out
	return &nd
}

// setPath returns doc with the field at path replaced by v, keeping its position; a nil v
// leaves an existing null or missing field as it is and removes an empty array.
func setPath(doc bson.Raw, path []string, v *bson.RawValue, dst []byte) []byte {
	if dst == nil {
		extra := 16
		if v != nil {
			extra += len(v.Value)
		}
		dst = make([]byte, 0, len(doc)+extra)
	}
	idx, dst := bsoncore.AppendDocumentStart(dst)
	found := false
	it := value.NewIter(doc)
	for it.Next() {
		if string(it.Key()) != path[0] {
			dst = append(dst, it.Elem()...)
			continue
		}
		found = true
		ev := it.Val()
		if len(path) > 1 {
			sub := emptyDoc
			if ev.Type == bson.TypeEmbeddedDocument {
				sub = ev.Value
			}
			dst = bsoncore.AppendHeader(dst, bsoncore.TypeEmbeddedDocument, path[0])
			dst = setPath(sub, path[1:], v, dst)
			continue
		}
		switch {
		case v != nil:
			dst = appendElem(dst, path[0], *v)
		case ev.Type == bson.TypeArray:
			// preserveNullAndEmptyArrays on []: the field is removed.
		default:
			dst = append(dst, it.Elem()...)
		}
	}
	if !found && v != nil {
		if len(path) > 1 {
			dst = bsoncore.AppendHeader(dst, bsoncore.TypeEmbeddedDocument, path[0])
			dst = setPath(emptyDoc, path[1:], v, dst)
		} else {
			dst = bsoncore.AppendValueElement(dst, path[0], bsoncore.Value{Type: bsoncore.Type(v.Type), Data: v.Value})
		}
	}
	dst, _ = bsoncore.AppendDocumentEnd(dst, idx)
	return dst
}
