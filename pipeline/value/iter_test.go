package value

import (
	"bytes"
	"encoding/binary"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// everyType is a document with one element of each BSON type.
func everyType(t testing.TB) []byte {
	t.Helper()
	doc, err := bson.Marshal(bson.D{
		{Key: "double", Value: 1.5},
		{Key: "string", Value: "héllo"},
		{Key: "doc", Value: bson.D{{Key: "a", Value: int32(1)}}},
		{Key: "array", Value: bson.A{int32(1), "two", bson.D{}}},
		{Key: "binary", Value: bson.Binary{Subtype: 4, Data: []byte("0123456789abcdef")}},
		{Key: "undefined", Value: bson.Undefined{}},
		{Key: "oid", Value: bson.NewObjectID()},
		{Key: "bool", Value: true},
		{Key: "date", Value: bson.DateTime(-86_400_000)},
		{Key: "null", Value: nil},
		{Key: "regex", Value: bson.Regex{Pattern: "^a.*", Options: "i"}},
		{Key: "dbpointer", Value: bson.DBPointer{DB: "db.coll", Pointer: bson.NewObjectID()}},
		{Key: "js", Value: bson.JavaScript("function() {}")},
		{Key: "symbol", Value: bson.Symbol("sym")},
		{Key: "jsscope", Value: bson.CodeWithScope{Code: "x", Scope: bson.D{{Key: "x", Value: int32(1)}}}},
		{Key: "int32", Value: int32(-7)},
		{Key: "timestamp", Value: bson.Timestamp{T: 1, I: 2}},
		{Key: "int64", Value: int64(1) << 40},
		{Key: "decimal", Value: bson.NewDecimal128(1, 2)},
		{Key: "minkey", Value: bson.MinKey{}},
		{Key: "maxkey", Value: bson.MaxKey{}},
		{Key: "", Value: "empty key"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// sameAsBsoncore checks that Iter yields exactly bsoncore's elements of a valid document.
// Iter is stricter in one place: a string (of a string, symbol, JavaScript or DBPointer value)
// must end in the NUL its length prefix counts, and the last element must end before the
// document's terminating NUL; bsoncore checks neither. There Iter stops early, with Err set.
func sameAsBsoncore(t *testing.T, doc []byte) {
	t.Helper()
	want, err := bsoncore.Document(doc).Elements()
	if err != nil {
		t.Fatalf("bsoncore: %v", err)
	}
	it := NewIter(doc)
	i := 0
	for ; it.Next(); i++ {
		if i >= len(want) {
			t.Fatalf("more elements than bsoncore's %d", len(want))
		}
		w := want[i]
		wv := w.Value()
		if !bytes.Equal(it.Key(), w.KeyBytes()) || !bytes.Equal(it.Elem(), w) ||
			it.Val().Type != bson.Type(wv.Type) || !bytes.Equal(it.Val().Value, wv.Data) {
			t.Fatalf("element %d: key %q elem %x, want key %q elem %x", i, it.Key(), it.Elem(), w.KeyBytes(), []byte(w))
		}
		if got, want := Lookup(doc, string(w.KeyBytes())), iterLookup(doc, string(w.KeyBytes())); got.Type != want.Type || !bytes.Equal(got.Value, want.Value) || got.Type == 0 {
			t.Fatalf("Lookup(%q) = %v, want %v", w.KeyBytes(), got, want)
		}
	}
	if i < len(want) && it.Err() {
		end := 4
		for _, w := range want[:i+1] {
			end += len(w)
		}
		declared := int(int32(binary.LittleEndian.Uint32(doc)))
		if lacksNul(want[i]) || end > declared-1 {
			return
		}
	}
	if i != len(want) || it.Err() {
		t.Fatalf("%d elements (err %v), want %d", i, it.Err(), len(want))
	}
}

// iterLookup is Lookup by Iter: the first element named key, or Missing.
func iterLookup(doc []byte, key string) bson.RawValue {
	it := NewIter(doc)
	for it.Next() {
		if string(it.Key()) == key {
			return it.Val()
		}
	}
	return Missing
}

// lookupKeys are keys of everyType's elements, short and long, and keys it lacks.
var lookupKeys = []string{"maxkey", "int64", "doc", "timestamp", "undefined", "nope", "", "a_much_longer_key_name"}

// lacksNul reports whether a string-bearing element's string does not end in a NUL.
func lacksNul(e bsoncore.Element) bool {
	v := e.Value()
	switch v.Type {
	case bsoncore.TypeString, bsoncore.TypeSymbol, bsoncore.TypeJavaScript, bsoncore.TypeDBPointer:
		l := int(int32(binary.LittleEndian.Uint32(v.Data)))
		return l < 1 || v.Data[3+l] != 0
	}
	return false
}

func TestIterEveryType(t *testing.T) {
	doc := everyType(t)
	sameAsBsoncore(t, doc)
	if v := Lookup(doc, "int64"); v.Int64() != 1<<40 {
		t.Errorf("Lookup(int64) = %v", v)
	}
	if v := Lookup(doc, "nope"); v.Type != 0 {
		t.Errorf("Lookup of a missing key = %v, want missing", v)
	}
	if v := Lookup(doc, "doc"); v.Type != bson.TypeEmbeddedDocument || Lookup(v.Value, "a").Int32() != 1 {
		t.Errorf("Lookup(doc) = %v", v)
	}
}

func TestIterMalformed(t *testing.T) {
	doc := everyType(t)
	// Every truncation and every single-byte corruption either walks cleanly or stops with
	// Err set; none panics or walks past the document.
	for n := range len(doc) {
		it := NewIter(doc[:n])
		for it.Next() {
		}
		if !it.Err() {
			t.Fatalf("truncated to %d bytes: no error", n)
		}
	}
	for i := range doc {
		for _, b := range []byte{0, 1, 0x7f, 0xff} {
			bad := bytes.Clone(doc)
			bad[i] = b
			it := NewIter(bad)
			for it.Next() {
				if e := it.Elem(); len(e) == 0 || len(e) > len(bad) {
					t.Fatalf("corrupt byte %d: element of %d bytes", i, len(e))
				}
			}
			for _, k := range lookupKeys {
				if got, want := Lookup(bad, k), iterLookup(bad, k); got.Type != want.Type || !bytes.Equal(got.Value, want.Value) {
					t.Fatalf("corrupt byte %d: Lookup(%q) = %v, Iter finds %v", i, k, got, want)
				}
			}
		}
	}
	// A string whose length prefix does not count its NUL.
	bad := []byte{0x11, 0, 0, 0, 0x02, 's', 0, 3, 0, 0, 0, 'a', 'b', 'c', 0, 0, 0}
	bad[0] = byte(len(bad))
	it := NewIter(bad)
	if it.Next() || !it.Err() {
		t.Fatal("a string without its NUL was accepted")
	}
}

// FuzzIter checks Iter against bsoncore on valid documents and for panics on anything.
func FuzzIter(f *testing.F) {
	f.Add(everyType(f))
	f.Add([]byte{5, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, doc []byte) {
		it := NewIter(doc)
		for it.Next() {
			_ = it.Val()
		}
		Lookup(doc, "a")
		if bson.Raw(doc).Validate() == nil {
			sameAsBsoncore(t, doc)
		}
	})
}
