package match

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/value"
)

// compileAll compiles $all: every value must match on its own (each follows the path), so
// {a: {$all: [1, 2]}} matches {a: [2, 1]}. An empty $all matches nothing.
func compileAll(c *compiler, path, op string, v bson.RawValue, depth int) (clause, error) {
	if v.Type != bson.TypeArray {
		return nil, errorf(path, op, "$all needs an array")
	}
	var (
		group     conj
		elemMatch int
	)
	it := value.NewIter(v.Value)
	for it.Next() {
		e := it.Val()
		if e.Type == bson.TypeEmbeddedDocument && isOperatorDoc(bson.Raw(e.Value)) {
			inner := value.NewIter(e.Value)
			inner.Next()
			if string(inner.Key()) != "$elemMatch" {
				return nil, errorf(path, op, "no $ expressions in $all")
			}
			cl, err := compileElemMatch(c, path, "$elemMatch", inner.Val(), depth+1)
			if err != nil {
				return nil, err
			}
			group = append(group, cl)
			elemMatch++
			continue
		}
		if e.Type == bson.TypeRegex {
			r, err := regexFromValue(path, op, e)
			if err != nil {
				return nil, err
			}
			group = append(group, leaf{pred: r, expand: true})
			continue
		}
		p, err := eqPred(path, op, e)
		if err != nil {
			return nil, err
		}
		group = append(group, leaf{pred: p, expand: true})
	}
	if elemMatch > 0 && elemMatch != len(group) {
		return nil, errorf(path, op, "$all/$elemMatch has to be consistent")
	}
	return group, nil
}
