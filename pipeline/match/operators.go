package match

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/value"
)

// clause is one compiled field operator. It builds either a node that follows a path through
// the document (in a filter) or a predicate on a single value (in an $elemMatch value form,
// where mongod applies operators to each array element as it is).
type clause interface {
	node(path []string) node
	single() pred
}

// opCompiler compiles the operand of one field operator at path.
type opCompiler func(c *compiler, path, op string, v bson.RawValue, depth int) (clause, error)

// operators is the table of field operators; $options is read by $regex.
var operators map[string]opCompiler

func init() {
	operators = map[string]opCompiler{
		"$eq":           compileComparison,
		"$ne":           compileComparison,
		"$gt":           compileComparison,
		"$gte":          compileComparison,
		"$lt":           compileComparison,
		"$lte":          compileComparison,
		"$in":           compileIn,
		"$nin":          compileIn,
		"$exists":       compileExists,
		"$type":         compileType,
		"$mod":          compileMod,
		"$regex":        nil, // needs its sibling $options; see operatorClauses
		"$size":         compileSize,
		"$all":          compileAll,
		"$elemMatch":    compileElemMatch,
		"$not":          compileNot,
		"$bitsAllSet":   compileBits,
		"$bitsAnySet":   compileBits,
		"$bitsAllClear": compileBits,
		"$bitsAnyClear": compileBits,
	}
}

// unsupported are mongod operators stream processing does not have.
var unsupported = map[string]bool{
	"$near": true, "$nearSphere": true, "$geoWithin": true, "$geoIntersects": true,
	"$within": true, "$maxDistance": true, "$minDistance": true, "$geometry": true,
	"$box": true, "$center": true, "$centerSphere": true, "$polygon": true,
	"$where": true, "$text": true,
}

// operatorDoc compiles {path: {$op: v, ...}}: each operator follows the path on its own, so
// {a: {$gt: 1, $lt: 5}} matches {a: [0, 10]} as in mongod.
func (c *compiler) operatorDoc(path string, p []string, doc bson.Raw, depth int) (node, error) {
	clauses, err := c.operatorClauses(path, doc, depth)
	if err != nil {
		return nil, err
	}
	nodes := make([]node, len(clauses))
	for i, cl := range clauses {
		nodes[i] = cl.node(p)
	}
	return andOf(nodes), nil
}

func (c *compiler) operatorClauses(path string, doc bson.Raw, depth int) ([]clause, error) {
	if depth > maxDepth {
		return nil, errorf(path, "", "exceeded depth limit of 100 when parsing match expression")
	}
	var (
		clauses    []clause
		regex      bson.RawValue
		options    bson.RawValue
		hasRegex   bool
		hasOptions bool
	)
	it := value.NewIter(doc)
	for it.Next() {
		op, v := string(it.Key()), it.Val()
		switch op {
		case "$regex":
			regex, hasRegex = v, true
			continue
		case "$options":
			options, hasOptions = v, true
			continue
		}
		compile, ok := operators[op]
		if !ok {
			if unsupported[op] {
				return nil, errorf(path, op, op+" is not supported in stream processing")
			}
			return nil, errorf(path, op, "unknown operator: "+op)
		}
		cl, err := compile(c, path, op, v, depth)
		if err != nil {
			return nil, err
		}
		clauses = append(clauses, cl)
	}
	if hasOptions && !hasRegex {
		return nil, errorf(path, "$options", "$options needs a $regex")
	}
	if hasRegex {
		cl, err := compileRegexOp(path, regex, options, hasOptions)
		if err != nil {
			return nil, err
		}
		clauses = append(clauses, cl)
	}
	return clauses, nil
}

// leaf is a clause that tests each value a path yields.
type leaf struct {
	pred   pred
	expand bool
}

func (l leaf) node(path []string) node { return &pathNode{path: path, pred: l.pred, expand: l.expand} }
func (l leaf) single() pred            { return l.pred }

// negate is $ne, $nin, $not and $exists: false: no value the path yields matches.
type negate struct{ child clause }

func (n negate) node(path []string) node { return notNode{n.child.node(path)} }
func (n negate) single() pred            { return notPred{n.child.single()} }

// conj is a group of clauses that must all match ($all, the operators inside $not).
type conj []clause

func (g conj) node(path []string) node {
	nodes := make([]node, len(g))
	for i, c := range g {
		nodes[i] = c.node(path)
	}
	if len(nodes) == 0 {
		// Only $all builds an empty group, and an empty $all matches nothing.
		return constNode(false)
	}
	return andOf(nodes)
}

func (g conj) single() pred {
	if len(g) == 0 {
		return falsePred{}
	}
	ps := make(andPred, len(g))
	for i, c := range g {
		ps[i] = c.single()
	}
	return ps
}

type notPred struct{ p pred }

func (n notPred) test(v bson.RawValue) bool { return !n.p.test(v) }

type andPred []pred

func (a andPred) test(v bson.RawValue) bool {
	for _, p := range a {
		if !p.test(v) {
			return false
		}
	}
	return true
}

type falsePred struct{}

func (falsePred) test(bson.RawValue) bool { return false }
