package kafka

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/ejson"
)

// jsonValue parses a JSON value of any type (a key in keyFormat json): ejson reads documents,
// so the value is read as the field of one.
func jsonValue(src []byte) (bson.RawValue, error) {
	wrapped := make([]byte, 0, len(src)+8)
	wrapped = append(append(append(wrapped, `{"v":`...), src...), '}')
	d, err := ejson.AppendBSON(nil, wrapped)
	if err != nil {
		return bson.RawValue{}, err
	}
	return bson.Raw(d).Lookup("v"), nil
}
