package match

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/value"
)

// existsPred is $exists: true: the path yields a value.
type existsPred struct{}

func (existsPred) test(v bson.RawValue) bool { return v.Type != 0 }

func compileExists(_ *compiler, _, _ string, v bson.RawValue, _ int) (clause, error) {
	// mongod reads the operand for its truth: {$exists: 0} is {$exists: false}.
	l := leaf{pred: existsPred{}, expand: true}
	if v.Type == bson.TypeBoolean || value.IsNumber(v) || value.IsNullish(v) {
		if !value.Truthy(v) {
			return negate{l}, nil
		}
	}
	return l, nil
}
