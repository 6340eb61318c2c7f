package match

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/value"
)

// elemMatchValue is the value form, {$elemMatch: {$gte: 80, $lt: 85}}: one element must
// satisfy every operator.
type elemMatchValue struct{ p pred }

func (m elemMatchValue) test(v bson.RawValue) bool {
	if v.Type != bson.TypeArray {
		return false
	}
	it := value.NewIter(v.Value)
	for it.Next() {
		if m.p.test(it.Val()) {
			return true
		}
	}
	return false
}

// elemMatchObject is the document form, {$elemMatch: {qty: {$gt: 1}, sku: "x"}}: one element
// that is a document (or an array) must match the whole filter.
type elemMatchObject struct{ n node }

func (m elemMatchObject) test(v bson.RawValue) bool {
	if v.Type != bson.TypeArray {
		return false
	}
	it := value.NewIter(v.Value)
	for it.Next() {
		if !isDocLike(it.Val()) {
			continue
		}
		// No $expr inside $elemMatch, so there is no error to report.
		if ok, _ := m.n.match(bson.Raw(it.Val().Value), nil); ok {
			return true
		}
	}
	return false
}

// pathless are the operators that take no field path; an $elemMatch starting with one of
// them is the document form.
var pathless = map[string]bool{
	"$and": true, "$or": true, "$nor": true, "$expr": true, "$where": true, "$text": true,
	"$comment": true, "$jsonSchema": true, "$alwaysTrue": true, "$alwaysFalse": true,
}

func compileElemMatch(c *compiler, path, op string, v bson.RawValue, depth int) (clause, error) {
	if v.Type != bson.TypeEmbeddedDocument {
		return nil, errorf(path, op, "$elemMatch needs an Object")
	}
	doc := bson.Raw(v.Value)
	if isOperatorDoc(doc) {
		it := value.NewIter(doc)
		it.Next()
		if !pathless[string(it.Key())] {
			clauses, err := c.operatorClauses(path, doc, depth+1)
			if err != nil {
				return nil, err
			}
			return leaf{pred: elemMatchValue{conj(clauses).single()}}, nil
		}
	}
	sub := &compiler{opts: c.opts, elemMatch: true}
	n, err := sub.filter(doc, depth+1)
	if err != nil {
		return nil, err
	}
	return leaf{pred: elemMatchObject{n}}, nil
}
