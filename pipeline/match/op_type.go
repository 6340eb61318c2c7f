package match

import (
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/value"
)

// typeSet is a set of BSON types; number stands for the "number" alias.
type typeSet struct {
	types  [256]bool
	number bool
}

func (s *typeSet) has(t bson.Type) bool {
	if s.number && (t == bson.TypeInt32 || t == bson.TypeInt64 || t == bson.TypeDouble || t == bson.TypeDecimal128) {
		return true
	}
	return s.types[byte(t)]
}

// typeNames are the $type aliases (value.TypeName's names plus "number").
var typeNames = map[string]bson.Type{
	"double": bson.TypeDouble, "string": bson.TypeString, "object": bson.TypeEmbeddedDocument,
	"array": bson.TypeArray, "binData": bson.TypeBinary, "undefined": bson.TypeUndefined,
	"objectId": bson.TypeObjectID, "bool": bson.TypeBoolean, "date": bson.TypeDateTime,
	"null": bson.TypeNull, "regex": bson.TypeRegex, "dbPointer": bson.TypeDBPointer,
	"javascript": bson.TypeJavaScript, "symbol": bson.TypeSymbol,
	"javascriptWithScope": bson.TypeCodeWithScope, "int": bson.TypeInt32,
	"timestamp": bson.TypeTimestamp, "long": bson.TypeInt64, "decimal": bson.TypeDecimal128,
	"minKey": bson.TypeMinKey, "maxKey": bson.TypeMaxKey,
}

// addType adds one $type operand (a type name or a numeric code) to s.
func (s *typeSet) add(path, op string, v bson.RawValue) error {
	if v.Type == bson.TypeString {
		name := v.StringValue()
		if name == "number" {
			s.number = true
			return nil
		}
		t, ok := typeNames[name]
		if !ok {
			return errorf(path, op, "unknown type name alias: "+name)
		}
		s.types[byte(t)] = true
		return nil
	}
	if !value.IsNumber(v) {
		return errorf(path, op, "type must be represented as a number or a string")
	}
	n, exact, _ := asInt64(v)
	if !exact {
		f, _ := asNumber(v)
		return errorf(path, op, "Invalid numerical type code: "+strconv.FormatFloat(f, 'g', -1, 64))
	}
	switch {
	case n == -1:
		s.types[byte(bson.TypeMinKey)] = true
	case n == 127:
		s.types[byte(bson.TypeMaxKey)] = true
	case n >= 1 && n <= 19:
		s.types[byte(n)] = true
	default:
		return errorf(path, op, "Invalid numerical type code: "+strconv.FormatInt(n, 10))
	}
	return nil
}

// typePred is $type. With leaf arrays expanded, {$type: "array"} matches an array field (the
// array itself is yielded) and a type matches an array holding an element of that type.
type typePred struct{ set *typeSet }

func (p typePred) test(v bson.RawValue) bool { return v.Type != 0 && p.set.has(v.Type) }

func compileType(_ *compiler, path, op string, v bson.RawValue, _ int) (clause, error) {
	set := &typeSet{}
	if v.Type == bson.TypeArray {
		n := 0
		it := value.NewIter(v.Value)
		for it.Next() {
			if err := set.add(path, op, it.Val()); err != nil {
				return nil, err
			}
			n++
		}
		if n == 0 {
			return nil, errorf(path, op, "$type must match at least one type")
		}
	} else if err := set.add(path, op, v); err != nil {
		return nil, err
	}
	return leaf{pred: typePred{set}, expand: true}, nil
}
