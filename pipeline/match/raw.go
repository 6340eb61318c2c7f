package match

import (
	"encoding/binary"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// iter walks the elements of a raw document or array without allocating. Malformed bytes end
// the iteration rather than panic: documents reach the matcher from many sources.
type iter struct {
	rest []byte
	k    []byte
	v    bson.RawValue
}

func newIter(doc []byte) iter {
	if len(doc) < 5 {
		return iter{}
	}
	n := int(int32(binary.LittleEndian.Uint32(doc)))
	if n < 5 || n > len(doc) {
		return iter{}
	}
	return iter{rest: doc[4 : n-1]}
}

func (it *iter) next() bool {
	if len(it.rest) == 0 {
		return false
	}
	el, rem, ok := bsoncore.ReadElement(it.rest)
	if !ok {
		it.rest = nil
		return false
	}
	it.rest = rem
	keyEnd := 1
	for el[keyEnd] != 0 {
		keyEnd++
	}
	it.k = el[1:keyEnd]
	it.v = bson.RawValue{Type: bson.Type(el[0]), Value: el[keyEnd+1:]}
	if !wellFormed(it.v) {
		it.rest = nil
		return false
	}
	return true
}

// wellFormed checks what bsoncore's length walk does not: a string's length prefix counts its
// terminating NUL.
func wellFormed(v bson.RawValue) bool {
	switch v.Type {
	case bson.TypeString, bson.TypeSymbol, bson.TypeJavaScript:
		d := v.Value
		return len(d) >= 5 && binary.LittleEndian.Uint32(d) >= 1 && d[len(d)-1] == 0
	}
	return true
}

// key returns the current key as a string (allocates; for compile time).
func (it *iter) key() string { return string(it.k) }

func (it *iter) value() bson.RawValue { return it.v }

// lookup returns the value of the field named key, or value.Missing.
func lookup(doc []byte, key string) bson.RawValue {
	it := newIter(doc)
	for it.next() {
		if string(it.k) == key {
			return it.v
		}
	}
	return bson.RawValue{}
}

// isDocLike reports whether v is an embedded document or an array (mongod's isABSONObj).
func isDocLike(v bson.RawValue) bool {
	return v.Type == bson.TypeEmbeddedDocument || v.Type == bson.TypeArray
}

// count returns the number of elements of a document or array.
func count(doc []byte) int {
	n := 0
	it := newIter(doc)
	for it.next() {
		n++
	}
	return n
}

// strBytes returns the bytes of a string-like value without copying.
func strBytes(v bson.RawValue) ([]byte, bool) {
	d := v.Value
	if len(d) < 5 || int(binary.LittleEndian.Uint32(d)) != len(d)-4 {
		return nil, false
	}
	return d[4 : len(d)-1], true
}
