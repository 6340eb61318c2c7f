// Package value holds what every part of the pipeline engine needs to know about BSON values:
// MongoDB's comparison order across types, numeric comparison across int32, int64, double and
// decimal128, aggregation truthiness, and type names. Values stay bson.RawValue: nothing here
// decodes a document.
package value

import (
	"bytes"
	"math"
	"math/big"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Missing is the value of a field that does not exist (Type 0). In expressions it sorts below
// null, with undefined, as in mongod; $sort and the query language treat it as null themselves.
var Missing = bson.RawValue{}

// IsMissing reports whether v is the missing value.
func IsMissing(v bson.RawValue) bool { return v.Type == 0 }

// IsNullish reports whether v is null, undefined or missing.
func IsNullish(v bson.RawValue) bool {
	return v.Type == 0 || v.Type == bson.TypeNull || v.Type == bson.TypeUndefined
}

// IsNumber reports whether v is int32, int64, double or decimal128.
func IsNumber(v bson.RawValue) bool {
	switch v.Type {
	case bson.TypeInt32, bson.TypeInt64, bson.TypeDouble, bson.TypeDecimal128:
		return true
	}
	return false
}

// canonical is MongoDB's cross-type sort order (src/mongo/bson/bsontypes.h canonicalizeBSONType).
func canonical(t bson.Type) int {
	switch t {
	case bson.TypeMinKey:
		return -1
	case 0, bson.TypeUndefined:
		return 0
	case bson.TypeNull:
		return 5
	case bson.TypeDouble, bson.TypeInt32, bson.TypeInt64, bson.TypeDecimal128:
		return 10
	case bson.TypeString, bson.TypeSymbol:
		return 15
	case bson.TypeEmbeddedDocument:
		return 20
	case bson.TypeArray:
		return 25
	case bson.TypeBinary:
		return 30
	case bson.TypeObjectID:
		return 35
	case bson.TypeBoolean:
		return 40
	case bson.TypeDateTime:
		return 45
	case bson.TypeTimestamp:
		return 47
	case bson.TypeRegex:
		return 50
	case bson.TypeDBPointer:
		return 55
	case bson.TypeJavaScript:
		return 60
	case bson.TypeCodeWithScope:
		return 65
	case bson.TypeMaxKey:
		return 127
	}
	return 100
}

// TypeOrder exposes the canonical order for callers that group by type (for example $sort).
func TypeOrder(t bson.Type) int { return canonical(t) }

func cmpInt[T int | int64 | uint64 | int32 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Compare orders two values as MongoDB does: first by canonical type, then by value.
// Numbers compare by value across types, exactly (decimal128 and large int64 included);
// NaN sorts below every other number and equals NaN.
func Compare(a, b bson.RawValue) int {
	ca, cb := canonical(a.Type), canonical(b.Type)
	if ca != cb {
		return cmpInt(ca, cb)
	}
	switch ca {
	case 0, 5, -1, 127:
		return 0
	case 10:
		return CompareNumbers(a, b)
	case 15:
		return bytes.Compare(strBytes(a), strBytes(b))
	case 20:
		return compareDocs(a.Document(), b.Document(), true)
	case 25:
		return compareDocs(bson.Raw(a.Array()), bson.Raw(b.Array()), false)
	case 30:
		sa, da := a.Binary()
		sb, db := b.Binary()
		if c := cmpInt(len(da), len(db)); c != 0 {
			return c
		}
		if c := cmpInt(int(sa), int(sb)); c != 0 {
			return c
		}
		return bytes.Compare(da, db)
	case 35:
		oa, ob := a.ObjectID(), b.ObjectID()
		return bytes.Compare(oa[:], ob[:])
	case 40:
		ba, bb := a.Boolean(), b.Boolean()
		switch {
		case ba == bb:
			return 0
		case !ba:
			return -1
		}
		return 1
	case 45:
		return cmpInt(a.DateTime(), b.DateTime())
	case 47:
		ta, ia := a.Timestamp()
		tb, ib := b.Timestamp()
		if c := cmpInt(uint64(ta), uint64(tb)); c != 0 {
			return c
		}
		return cmpInt(uint64(ia), uint64(ib))
	case 50:
		pa, fa := a.Regex()
		pb, fb := b.Regex()
		if c := bytes.Compare([]byte(pa), []byte(pb)); c != 0 {
			return c
		}
		return bytes.Compare([]byte(fa), []byte(fb))
	}
	return bytes.Compare(a.Value, b.Value)
}

// Equal reports whether Compare(a, b) == 0.
func Equal(a, b bson.RawValue) bool { return Compare(a, b) == 0 }

// strBytes is the content of a string or symbol value without copying it; a malformed one
// reads as empty.
func strBytes(v bson.RawValue) []byte {
	b := v.Value
	if len(b) < 5 {
		return nil
	}
	n := int(int32(uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24))
	if n < 1 || n > len(b)-4 {
		return nil
	}
	return b[4 : 4+n-1]
}

// compareDocs compares documents (keys and values in order) or arrays (values only).
func compareDocs(a, b bson.Raw, keys bool) int {
	ea, _ := a.Elements()
	eb, _ := b.Elements()
	for i := 0; i < len(ea) && i < len(eb); i++ {
		va, vb := ea[i].Value(), eb[i].Value()
		if keys {
			// mongod compares the canonical type, then the field name, then the value.
			if c := cmpInt(canonical(va.Type), canonical(vb.Type)); c != 0 {
				return c
			}
			if c := bytes.Compare([]byte(ea[i].Key()), []byte(eb[i].Key())); c != 0 {
				return c
			}
		}
		if c := Compare(va, vb); c != 0 {
			return c
		}
	}
	return cmpInt(len(ea), len(eb))
}

// CompareNumbers compares two numeric values exactly.
func CompareNumbers(a, b bson.RawValue) int {
	// Fast paths for the common cases.
	if a.Type != bson.TypeDecimal128 && b.Type != bson.TypeDecimal128 {
		if a.Type != bson.TypeDouble && b.Type != bson.TypeDouble {
			return cmpInt(intOf(a), intOf(b))
		}
		fa, fb := floatOf(a), floatOf(b)
		na, nb := math.IsNaN(fa), math.IsNaN(fb)
		switch {
		case na && nb:
			return 0
		case na:
			return -1
		case nb:
			return 1
		}
		if a.Type == bson.TypeDouble && b.Type == bson.TypeDouble {
			return cmpInt(fa, fb)
		}
		// A double against an int64: exact when both fit in 2^53, else compare as big floats.
		if math.Abs(fa) < 1<<53 && math.Abs(fb) < 1<<53 {
			return cmpInt(fa, fb)
		}
	}
	ra, nanA, infA := ratOf(a)
	rb, nanB, infB := ratOf(b)
	switch {
	case nanA && nanB:
		return 0
	case nanA:
		return -1
	case nanB:
		return 1
	case infA != 0 || infB != 0:
		return cmpInt(infA, infB)
	}
	return ra.Cmp(rb)
}

func intOf(v bson.RawValue) int64 {
	if v.Type == bson.TypeInt32 {
		return int64(v.Int32())
	}
	return v.Int64()
}

func floatOf(v bson.RawValue) float64 {
	switch v.Type {
	case bson.TypeInt32:
		return float64(v.Int32())
	case bson.TypeInt64:
		return float64(v.Int64())
	}
	return v.Double()
}

// ratOf converts a number to an exact rational; nan and inf (±1) report the special values.
func ratOf(v bson.RawValue) (r *big.Rat, nan bool, inf int) {
	switch v.Type {
	case bson.TypeInt32, bson.TypeInt64:
		return new(big.Rat).SetInt64(intOf(v)), false, 0
	case bson.TypeDouble:
		f := v.Double()
		switch {
		case math.IsNaN(f):
			return nil, true, 0
		case math.IsInf(f, 1):
			return nil, false, 1
		case math.IsInf(f, -1):
			return nil, false, -1
		}
		return new(big.Rat).SetFloat64(f), false, 0
	case bson.TypeDecimal128:
		d := v.Decimal128()
		s := d.String()
		switch s {
		case "NaN", "-NaN":
			return nil, true, 0
		case "Infinity":
			return nil, false, 1
		case "-Infinity":
			return nil, false, -1
		}
		coef, exp, err := d.BigInt()
		if err != nil {
			return nil, true, 0
		}
		r := new(big.Rat).SetInt(coef)
		if exp > 0 {
			r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(exp)), nil)))
		} else if exp < 0 {
			r.Quo(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(-exp)), nil)))
		}
		return r, false, 0
	}
	return new(big.Rat), false, 0
}

// Truthy is aggregation truthiness: false, null, undefined, missing and numeric zero are false;
// everything else (empty strings and arrays included) is true.
func Truthy(v bson.RawValue) bool {
	switch v.Type {
	case 0, bson.TypeNull, bson.TypeUndefined:
		return false
	case bson.TypeBoolean:
		return v.Boolean()
	case bson.TypeInt32:
		return v.Int32() != 0
	case bson.TypeInt64:
		return v.Int64() != 0
	case bson.TypeDouble:
		return v.Double() != 0
	case bson.TypeDecimal128:
		r, nan, inf := ratOf(v)
		return nan || inf != 0 || r.Sign() != 0
	}
	return true
}

// TypeName is the $type name of a value ("missing" for a missing field).
func TypeName(v bson.RawValue) string {
	switch v.Type {
	case 0:
		return "missing"
	case bson.TypeDouble:
		return "double"
	case bson.TypeString:
		return "string"
	case bson.TypeEmbeddedDocument:
		return "object"
	case bson.TypeArray:
		return "array"
	case bson.TypeBinary:
		return "binData"
	case bson.TypeUndefined:
		return "undefined"
	case bson.TypeObjectID:
		return "objectId"
	case bson.TypeBoolean:
		return "bool"
	case bson.TypeDateTime:
		return "date"
	case bson.TypeNull:
		return "null"
	case bson.TypeRegex:
		return "regex"
	case bson.TypeDBPointer:
		return "dbPointer"
	case bson.TypeJavaScript:
		return "javascript"
	case bson.TypeSymbol:
		return "symbol"
	case bson.TypeCodeWithScope:
		return "javascriptWithScope"
	case bson.TypeInt32:
		return "int"
	case bson.TypeTimestamp:
		return "timestamp"
	case bson.TypeInt64:
		return "long"
	case bson.TypeDecimal128:
		return "decimal"
	case bson.TypeMinKey:
		return "minKey"
	case bson.TypeMaxKey:
		return "maxKey"
	}
	return "unknown"
}

// Of wraps a Go value (as the driver marshals it) into a RawValue; for tests and constants.
func Of(v any) bson.RawValue {
	if v == nil {
		return bson.RawValue{Type: bson.TypeNull}
	}
	t, data, err := bson.MarshalValue(v)
	if err != nil {
		panic(err)
	}
	return bson.RawValue{Type: t, Value: data}
}
