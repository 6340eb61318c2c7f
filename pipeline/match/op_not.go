package match

import (
	"go.mongodb.org/mongo-driver/v2/bson"
)

// compileNot compiles $not: a regular expression or a document of operators, none of whose
// combination may match. {a: {$not: {$gt: 5}}} matches a missing a.
func compileNot(c *compiler, path, op string, v bson.RawValue, depth int) (clause, error) {
	switch v.Type {
	case bson.TypeRegex:
		r, err := regexFromValue(path, op, v)
		if err != nil {
			return nil, err
		}
		return negate{leaf{pred: r, expand: true}}, nil
	case bson.TypeEmbeddedDocument:
		doc := bson.Raw(v.Value)
		if count(doc) == 0 {
			return nil, errorf(path, op, "$not cannot be empty")
		}
		clauses, err := c.operatorClauses(path, doc, depth+1)
		if err != nil {
			return nil, err
		}
		return negate{conj(clauses)}, nil
	}
	return nil, errorf(path, op, "$not needs a regex or a document")
}
