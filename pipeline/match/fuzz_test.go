package match

import (
	"errors"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func FuzzCompileMatch(f *testing.F) {
	seeds := [][2]string{
		{`{"a.b": {"$gt": 1}}`, `{"a": [{"b": 2}]}`},
		{`{"a.0.b": null}`, `{"a": [[{"b": 1}], 2]}`},
		{`{"$or": [{"a": {"$in": [1, {"$regularExpression": {"pattern": "^x", "options": "i"}}]}}, {"b": {"$exists": false}}]}`, `{"a": "X"}`},
		{`{"a": {"$elemMatch": {"b": {"$size": 1}, "c": {"$type": "number"}}}}`, `{"a": [{"b": [1], "c": 1.5}]}`},
		{`{"a": {"$not": {"$mod": [3, 1]}}, "b": {"$bitsAnySet": [0, 70]}}`, `{"a": 4, "b": -3}`},
		{`{"a": {"$all": [{"$elemMatch": {"$gt": 1}}]}}`, `{"a": [0, 2]}`},
		{solarSchema, `{"device_id": "device_1", "group_id": 2, "timestamp": "t", "obs": {"watts": 1, "temp": 1}}`},
		{`{"$jsonSchema": {"properties": {"a": {"items": [{"enum": [1, {"x": 1}]}], "additionalItems": {"multipleOf": 0.5}, "uniqueItems": true}}}}`, `{"a": [1, 1.5, 2]}`},
	}
	for _, s := range seeds {
		f.Add([]byte(ej(f, s[0])), []byte(ej(f, s[1])))
	}
	f.Fuzz(func(t *testing.T, filter, doc []byte) {
		if bson.Raw(filter).Validate() != nil || bson.Raw(doc).Validate() != nil {
			t.Skip()
		}
		m, err := Compile(filter, Options{})
		if err != nil {
			return
		}
		if _, err := m.Match(doc, nil); err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("Match returned an error without $expr: %v", err)
		}
		// A matcher is reusable: matching again gives the same answer.
		a, _ := m.Match(doc, nil)
		b, _ := m.Match(doc, nil)
		if a != b {
			t.Fatal("Match is not deterministic")
		}
	})
}

// TestMalformedDocument: bson.Raw.Validate accepts a string with a zero length prefix, which
// the driver's accessors panic on; Match reports ErrMalformed instead.
func TestMalformedDocument(t *testing.T) {
	inner := []byte("\x0c\x00\x00\x00\x02b\x00\x00\x00\x00\x00\x00")
	doc := append([]byte("\x17\x00\x00\x00\x03a\x00"), inner...)
	doc = append(doc, 0)
	doc[0] = byte(len(doc))
	if err := bson.Raw(doc).Validate(); err != nil {
		t.Skipf("driver now rejects the document: %v", err)
	}
	for _, f := range []string{`{"a": {"b": "x"}}`, `{"a.b": "x"}`, `{"a.b": {"$regex": "x"}}`} {
		m, err := Compile(ej(t, f), Options{})
		if err != nil {
			t.Fatal(err)
		}
		ok, err := m.Match(doc, nil)
		if ok || (err != nil && !errors.Is(err, ErrMalformed)) {
			t.Errorf("%s: got %v, %v", f, ok, err)
		}
	}
}
