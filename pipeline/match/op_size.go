package match

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/value"
)

// sizePred is $size: an array of exactly n elements. Leaf arrays are not expanded.
type sizePred struct{ n int }

func (p sizePred) test(v bson.RawValue) bool {
	return v.Type == bson.TypeArray && count(v.Value) == p.n
}

func compileSize(_ *compiler, path, op string, v bson.RawValue, _ int) (clause, error) {
	if !value.IsNumber(v) {
		return nil, errorf(path, op, "$size needs a number")
	}
	n, exact, _ := asInt64(v)
	if !exact {
		return nil, errorf(path, op, "$size must be a whole number")
	}
	if n < 0 {
		return nil, errorf(path, op, "$size may not be negative")
	}
	if n > 1<<31 {
		return leaf{pred: falsePred{}}, nil
	}
	return leaf{pred: sizePred{int(n)}}, nil
}
