package match

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/value"
)

// exprNode is $expr: an aggregation expression whose truthiness decides the match.
type exprNode struct {
	eval func(doc bson.Raw, ctx any) (bson.RawValue, error)
}

func (n exprNode) match(doc bson.Raw, ctx any) (bool, error) {
	v, err := n.eval(doc, ctx)
	if err != nil {
		return false, err
	}
	return value.Truthy(v), nil
}

func (c *compiler) expr(v bson.RawValue) (node, error) {
	if c.elemMatch {
		return nil, errorf("", "$expr", "$expr can only be applied to the top-level document")
	}
	if c.opts.Expr == nil {
		return nil, errorf("", "$expr", "$expr is not available here")
	}
	eval, err := c.opts.Expr(v)
	if err != nil {
		return nil, errorf("", "$expr", err.Error())
	}
	return exprNode{eval}, nil
}
