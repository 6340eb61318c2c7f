package expr

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/value"
)

// compareOp builds $eq, $ne, $gt, $gte, $lt, $lte from a test of value.Compare's result.
func compareOp(test func(c int) bool) compileFunc {
	return binaryOp(func(_ string, a, b bson.RawValue) (bson.RawValue, error) {
		return boolValue(test(value.Compare(a, b))), nil
	})
}

func evalCmp(_ string, a, b bson.RawValue) (bson.RawValue, error) {
	return int32Value(int32(value.Compare(a, b))), nil
}
