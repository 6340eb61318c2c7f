package expr

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/value"
)

func evalType(_ string, v bson.RawValue) (bson.RawValue, error) {
	return stringValue(value.TypeName(v)), nil
}

func evalIsNumber(_ string, v bson.RawValue) (bson.RawValue, error) {
	return boolValue(value.IsNumber(v)), nil
}
