package match

import (
	"math"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/value"
)

// modPred is $mod: [divisor, remainder] on the number truncated to an integer.
type modPred struct{ div, rem int64 }

func (p modPred) test(v bson.RawValue) bool {
	if !value.IsNumber(v) || isNaN(v) {
		return false
	}
	n, _, _ := asInt64(v)
	if p.div == -1 {
		// MinInt64 % -1 overflows in hardware; the remainder is 0 for every n.
		return p.rem == 0
	}
	return n%p.div == p.rem
}

func compileMod(_ *compiler, path, op string, v bson.RawValue, _ int) (clause, error) {
	if v.Type != bson.TypeArray {
		return nil, errorf(path, op, "malformed mod, needs to be an array")
	}
	var args []bson.RawValue
	it := value.NewIter(v.Value)
	for it.Next() {
		args = append(args, it.Val())
	}
	switch {
	case len(args) < 2:
		return nil, errorf(path, op, "malformed mod, not enough elements")
	case len(args) > 2:
		return nil, errorf(path, op, "malformed mod, too many elements")
	case !value.IsNumber(args[0]):
		return nil, errorf(path, op, "malformed mod, divisor not a number")
	case !value.IsNumber(args[1]):
		return nil, errorf(path, op, "malformed mod, remainder not a number")
	}
	for i, name := range []string{"divisor", "remainder"} {
		if f, _ := asNumber(args[i]); math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, errorf(path, op, "malformed mod, "+name+" value is invalid: Unable to coerce NaN/Inf to integral type")
		}
	}
	div, _, _ := asInt64(args[0])
	rem, _, _ := asInt64(args[1])
	if div == 0 {
		return nil, errorf(path, op, "divisor cannot be 0")
	}
	return leaf{pred: modPred{div, rem}, expand: true}, nil
}
