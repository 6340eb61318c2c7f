package value

import (
	"encoding/binary"
	"math/bits"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Iter walks the elements of a raw document or array without allocating. It is the one
// element scanner of the engine: every stage, expression and query operator reads documents
// through it, so it finds each key and each value length in a single pass (bsoncore's
// ReadElement and KeyBytes scan a key twice). It keeps offsets, not slices, so a walk stores
// no pointers (and costs no GC write barriers). Malformed bytes end the walk; Err reports it.
//
//	it := value.NewIter(doc)
//	for it.Next() {
//		use(it.Key(), it.Val())
//	}
type Iter struct {
	b []byte // the elements: the document without its length and terminating NUL
	// The current element is b[off:end]; its key ends at b[ke].
	off, ke, end int
	bad          bool
}

// NewIter starts a walk over doc, a document or an array. A doc whose length prefix is wrong
// yields nothing and sets Err.
func NewIter(doc []byte) Iter {
	if len(doc) < 5 {
		return Iter{bad: true}
	}
	n := int(int32(binary.LittleEndian.Uint32(doc)))
	if n < 5 || n > len(doc) || doc[n-1] != 0 {
		return Iter{bad: true}
	}
	return Iter{b: doc[4 : n-1]}
}

// Err reports whether the walk stopped at malformed bytes.
func (it *Iter) Err() bool { return it.bad }

// Key is the current element's name, a slice of the document.
func (it *Iter) Key() []byte { return it.b[it.off+1 : it.ke] }

// Val is the current element's value, a slice of the document.
func (it *Iter) Val() bson.RawValue {
	return bson.RawValue{Type: bson.Type(it.b[it.off]), Value: it.b[it.ke+1 : it.end]}
}

// Elem is the whole current element (type byte, key, NUL and value).
func (it *Iter) Elem() []byte { return it.b[it.off:it.end] }

// End is the offset just past the current element, for From.
func (it *Iter) End() int { return it.end }

// From is the run of whole elements from offset start (0, or an earlier End) up to the current
// element; once Next has returned false, up to the end of the last well-formed element. A
// stage that keeps most elements as they are copies each run with one append.
func (it *Iter) From(start int) []byte { return it.b[start:it.off] }

// fixedLen is the length of each fixed-size value type; 0 marks the variable ones (and the
// zero-length ones, which sizeOf handles).
var fixedLen = [256]int8{
	bson.TypeDouble:     8,
	bson.TypeObjectID:   12,
	bson.TypeBoolean:    1,
	bson.TypeDateTime:   8,
	bson.TypeInt32:      4,
	bson.TypeTimestamp:  8,
	bson.TypeInt64:      8,
	bson.TypeDecimal128: 16,
}

// Next moves to the next element and reports whether there is one.
func (it *Iter) Next() bool {
	it.off = it.end
	ke, n := scan(it.b[it.off:])
	if n == 0 {
		if it.off < len(it.b) {
			it.bad, it.end = true, len(it.b)
		}
		return false
	}
	it.ke, it.end = it.off+ke, it.off+n
	return true
}

// scan measures the element at the start of r: the offset of its key's terminating NUL and
// its whole length. end is 0 when r is empty or the element is malformed. It returns offsets
// rather than slices so that callers' hot loops store no pointers.
func scan(r []byte) (keyEnd, end int) {
	if len(r) == 0 {
		return 0, 0
	}
	i := shortKey(r)
	if i < 0 {
		if i = nulAt(r, 1); i < 0 {
			return 0, 0
		}
	}
	t := r[0]
	n := int(fixedLen[t])
	if n == 0 {
		n = sizeOf(bson.Type(t), r[i+1:])
		if n < 0 {
			return 0, 0
		}
	}
	if n > len(r)-i-1 {
		return 0, 0
	}
	return i, i + 1 + n
}

// shortKey is the index of the NUL that ends the key of the element at the start of r when
// the key has at most 7 bytes and 8 follow the type byte, found in one word (nulAt's test);
// else -1, and nulAt(r, 1) finds it. Small enough to be inlined in the hot loops.
func shortKey(r []byte) int {
	if len(r) >= 9 {
		w := binary.LittleEndian.Uint64(r[1:])
		if z := (w - 0x0101010101010101) &^ w & 0x8080808080808080; z != 0 {
			return 1 + bits.TrailingZeros64(z)>>3
		}
	}
	return -1
}

// nulAt is the index of the first NUL in r at or after i, or -1: a key's end, eight bytes at
// a time. In w - 0x01…01 &^ w & 0x80…80 the lowest set bit marks the first zero byte of w
// (higher lanes may be flagged by the borrow, and are not looked at): "Bit Twiddling Hacks"
// (Sean Eron Anderson, Stanford), "Determine if a word has a zero byte".
func nulAt(r []byte, i int) int {
	for ; i+8 <= len(r); i += 8 {
		w := binary.LittleEndian.Uint64(r[i:])
		if z := (w - 0x0101010101010101) &^ w & 0x8080808080808080; z != 0 {
			return i + bits.TrailingZeros64(z)>>3
		}
	}
	for ; i < len(r); i++ {
		if r[i] == 0 {
			return i
		}
	}
	return -1
}

// sizeOf is the length of a variable-size value at the start of v, or -1 if it is malformed.
func sizeOf(t bson.Type, v []byte) int {
	switch t {
	case bson.TypeString, bson.TypeJavaScript, bson.TypeSymbol:
		if len(v) < 5 {
			return -1
		}
		l := int(int32(binary.LittleEndian.Uint32(v)))
		if l < 1 || l > len(v)-4 || v[3+l] != 0 {
			return -1
		}
		return 4 + l
	case bson.TypeEmbeddedDocument, bson.TypeArray, bson.TypeCodeWithScope:
		if len(v) < 4 {
			return -1
		}
		l := int(int32(binary.LittleEndian.Uint32(v)))
		if l < 5 || l > len(v) {
			return -1
		}
		return l
	case bson.TypeBinary:
		if len(v) < 5 {
			return -1
		}
		l := int(int32(binary.LittleEndian.Uint32(v)))
		if l < 0 || l > len(v)-5 {
			return -1
		}
		return 5 + l
	case bson.TypeUndefined, bson.TypeNull, bson.TypeMinKey, bson.TypeMaxKey:
		return 0
	case bson.TypeRegex:
		n := 0
		for range 2 {
			for n < len(v) && v[n] != 0 {
				n++
			}
			if n >= len(v) {
				return -1
			}
			n++
		}
		return n
	case bson.TypeDBPointer:
		if len(v) < 4 {
			return -1
		}
		l := int(int32(binary.LittleEndian.Uint32(v)))
		if l < 1 || l > len(v)-16 || v[3+l] != 0 {
			return -1
		}
		return 4 + l + 12
	}
	return -1
}

// Has reports whether a raw document has top-level fields named a and b, in one walk.
func Has(doc []byte, a, b string) (hasA, hasB bool) {
	if len(doc) < 5 {
		return false, false
	}
	n := int(int32(binary.LittleEndian.Uint32(doc)))
	if n < 5 || n > len(doc) || doc[n-1] != 0 {
		return false, false
	}
	for r := doc[4 : n-1]; len(r) > 0 && (!hasA || !hasB); {
		ke, end := scan(r)
		if end == 0 {
			break
		}
		k := r[1:ke]
		hasA = hasA || string(k) == a
		hasB = hasB || string(k) == b
		r = r[end:]
	}
	return hasA, hasB
}

// Lookup returns the value of the field key of a raw document, or Missing.
func Lookup(doc []byte, key string) bson.RawValue {
	if len(doc) < 5 {
		return Missing
	}
	n := int(int32(binary.LittleEndian.Uint32(doc)))
	if n < 5 || n > len(doc) || doc[n-1] != 0 {
		return Missing
	}
	r := doc[4 : n-1]
	// scan's work in one loop: most documents are a run of short keys and fixed-size values,
	// and a lookup visits every element before the one it finds.
	for len(r) > 0 {
		ke := shortKey(r)
		if ke < 0 {
			if ke = nulAt(r, 1); ke < 0 {
				return Missing
			}
		}
		n := int(fixedLen[r[0]])
		if n == 0 {
			if n = sizeOf(bson.Type(r[0]), r[ke+1:]); n < 0 {
				return Missing
			}
		}
		end := ke + 1 + n
		if end > len(r) {
			return Missing
		}
		if ke-1 == len(key) && string(r[1:ke]) == key {
			return bson.RawValue{Type: bson.Type(r[0]), Value: r[ke+1 : end]}
		}
		r = r[end:]
	}
	return Missing
}
