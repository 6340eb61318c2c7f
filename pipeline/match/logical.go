package match

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/value"
)

// node is one compiled clause, matched against the document (or, inside $elemMatch, against
// an array element). Only $expr produces errors.
type node interface {
	match(doc bson.Raw, ctx any) (bool, error)
}

type andNode []node

func (n andNode) match(doc bson.Raw, ctx any) (bool, error) {
	for _, c := range n {
		ok, err := c.match(doc, ctx)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

type orNode []node

func (n orNode) match(doc bson.Raw, ctx any) (bool, error) {
	for _, c := range n {
		ok, err := c.match(doc, ctx)
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

type notNode struct{ child node }

func (n notNode) match(doc bson.Raw, ctx any) (bool, error) {
	ok, err := n.child.match(doc, ctx)
	return !ok && err == nil, err
}

type constNode bool

func (n constNode) match(bson.Raw, any) (bool, error) { return bool(n), nil }

// andOf returns the conjunction of nodes without a wrapper for zero or one of them.
func andOf(nodes []node) node {
	switch len(nodes) {
	case 0:
		return constNode(true)
	case 1:
		return nodes[0]
	}
	return andNode(nodes)
}

// logical compiles $and, $or and $nor: a nonempty array of filter documents.
func (c *compiler) logical(op string, v bson.RawValue, depth int) (node, error) {
	if v.Type != bson.TypeArray {
		return nil, errorf("", op, op+" must be an array")
	}
	var nodes []node
	it := value.NewIter(v.Value)
	for it.Next() {
		e := it.Val()
		if e.Type != bson.TypeEmbeddedDocument {
			return nil, errorf("", op, "$or/$and/$nor entries need to be full objects")
		}
		n, err := c.filter(bson.Raw(e.Value), depth+1)
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	if len(nodes) == 0 {
		return nil, errorf("", op, "$and/$or/$nor must be a nonempty array")
	}
	switch op {
	case "$and":
		return andOf(nodes), nil
	case "$or":
		if len(nodes) == 1 {
			return nodes[0], nil
		}
		return orNode(nodes), nil
	}
	return notNode{orNode(nodes)}, nil
}
