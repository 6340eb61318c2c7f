package expr

import (
	"encoding/binary"
	"math"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/spi-streams/spi/pipeline/value"
)

// Limits that keep one document's evaluation bounded in memory and time.
const (
	maxArrayLen  = 10_000_000 // elements in an intermediate array
	maxStringLen = 16 << 20   // bytes in an intermediate string (the BSON document limit)
)

// maxSteps bounds the loop iterations ($map, $filter, $reduce, $range, ...) one top-level
// evaluation may run; a variable so the fuzz target can lower it.
var maxSteps int64 = 200_000_000

var (
	nullValue  = bson.RawValue{Type: bson.TypeNull}
	trueValue  = bson.RawValue{Type: bson.TypeBoolean, Value: []byte{1}}
	falseValue = bson.RawValue{Type: bson.TypeBoolean, Value: []byte{0}}
	emptyArray = bson.RawValue{Type: bson.TypeArray, Value: []byte{5, 0, 0, 0, 0}}
)

func boolValue(b bool) bson.RawValue {
	if b {
		return trueValue
	}
	return falseValue
}

func int32Value(i int32) bson.RawValue {
	return bson.RawValue{Type: bson.TypeInt32, Value: binary.LittleEndian.AppendUint32(make([]byte, 0, 4), uint32(i))}
}

func int64Value(i int64) bson.RawValue {
	return bson.RawValue{Type: bson.TypeInt64, Value: binary.LittleEndian.AppendUint64(make([]byte, 0, 8), uint64(i))}
}

func doubleValue(f float64) bson.RawValue {
	return bson.RawValue{Type: bson.TypeDouble, Value: binary.LittleEndian.AppendUint64(make([]byte, 0, 8), math.Float64bits(f))}
}

func dateValue(ms int64) bson.RawValue {
	return bson.RawValue{Type: bson.TypeDateTime, Value: binary.LittleEndian.AppendUint64(make([]byte, 0, 8), uint64(ms))}
}

func stringValue(s string) bson.RawValue {
	return bson.RawValue{Type: bson.TypeString, Value: bsoncore.AppendString(make([]byte, 0, len(s)+5), s)}
}

func decimalValue(d bson.Decimal128) bson.RawValue {
	h, l := d.GetBytes()
	return bson.RawValue{Type: bson.TypeDecimal128, Value: bsoncore.AppendDecimal128(make([]byte, 0, 16), h, l)}
}

func binaryValue(sub byte, data []byte) bson.RawValue {
	return bson.RawValue{Type: bson.TypeBinary, Value: bsoncore.AppendBinary(make([]byte, 0, len(data)+5), sub, data)}
}

// intValue returns an int32 when i fits, else an int64 (mongod's "narrowest integer" results).
func intValue(i int64) bson.RawValue {
	if i >= math.MinInt32 && i <= math.MaxInt32 {
		return int32Value(int32(i))
	}
	return int64Value(i)
}

// arrBuilder appends values to a raw BSON array.
type arrBuilder struct {
	buf []byte
	idx int32
	n   int
}

func newArr() *arrBuilder {
	b := &arrBuilder{}
	b.idx, b.buf = bsoncore.AppendArrayStart(make([]byte, 0, 64))
	return b
}

func (b *arrBuilder) add(v bson.RawValue) {
	b.buf = bsoncore.AppendHeader(b.buf, bsoncore.Type(v.Type), strconv.Itoa(b.n))
	b.buf = append(b.buf, v.Value...)
	b.n++
}

func (b *arrBuilder) done() bson.RawValue {
	b.buf, _ = bsoncore.AppendArrayEnd(b.buf, b.idx)
	return bson.RawValue{Type: bson.TypeArray, Value: b.buf}
}

// docBuilder appends fields to a raw BSON document.
type docBuilder struct {
	buf []byte
	idx int32
}

func newDoc() *docBuilder {
	b := &docBuilder{}
	b.idx, b.buf = bsoncore.AppendDocumentStart(make([]byte, 0, 64))
	return b
}

func (b *docBuilder) add(key string, v bson.RawValue) {
	b.buf = bsoncore.AppendHeader(b.buf, bsoncore.Type(v.Type), key)
	b.buf = append(b.buf, v.Value...)
}

func (b *docBuilder) done() bson.RawValue {
	b.buf, _ = bsoncore.AppendDocumentEnd(b.buf, b.idx)
	return bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: b.buf}
}

// elem is one field of a document.
type elem struct {
	key string
	val bson.RawValue
}

// eachElem walks the fields of a raw document or array without allocating; fn returns false
// to stop. It reports false if the bytes are malformed.
func eachElem(doc []byte, fn func(key []byte, v bson.RawValue) bool) bool {
	it := value.NewIter(doc)
	for it.Next() {
		if !fn(it.Key(), it.Val()) {
			return true
		}
	}
	return !it.Err()
}

func elements(doc []byte) ([]elem, error) {
	var out []elem
	if !eachElem(doc, func(k []byte, v bson.RawValue) bool {
		out = append(out, elem{string(k), v})
		return true
	}) {
		return nil, errMalformed
	}
	return out, nil
}

func values(doc []byte) ([]bson.RawValue, error) {
	var out []bson.RawValue
	if !eachElem(doc, func(_ []byte, v bson.RawValue) bool {
		out = append(out, v)
		return true
	}) {
		return nil, errMalformed
	}
	return out, nil
}

var errMalformed = evalErr("", "malformed BSON")

// arrayLen counts the elements of a raw array.
func arrayLen(arr []byte) int {
	n := 0
	eachElem(arr, func([]byte, bson.RawValue) bool { n++; return true })
	return n
}

func itoa(i int) string { return strconv.Itoa(i) }

// docValue wraps a raw document as a value.
func docValue(d []byte) bson.RawValue {
	return bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: d}
}

// arrayValues returns an array's elements; v must be an array.
func arrayValues(v bson.RawValue) []bson.RawValue {
	out, _ := values(v.Value)
	return out
}

// buildArray makes an array value from elements.
func buildArray(vs []bson.RawValue) bson.RawValue {
	b := newArr()
	for _, v := range vs {
		b.add(v)
	}
	return b.done()
}

func itoa64(i int64) string { return strconv.FormatInt(i, 10) }

// formatDouble renders a double the way mongod prints one in messages and $toString.
func formatDouble(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	// mongod formats with fmt's "{}": the shortest round-tripping digits, in positional
	// notation unless the exponent is below -4 or at least 16 (123456789.0 prints
	// "123456789", 1e21 prints "1e+21").
	if a := math.Abs(f); a != 0 && (a < 1e-4 || a >= 1e16) {
		return strconv.FormatFloat(f, 'e', -1, 64)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}
