// Package match is MongoDB's query language, the argument of $match and $validate, evaluated over
// raw BSON. A filter is compiled once into a tree of matcher nodes; matching walks the raw
// document with field lookups and never decodes it.
package match

import (
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/value"
)

// ExprCompiler compiles the argument of $expr. The pipeline passes one backed by package expr;
// the evaluator receives the document being matched and an opaque context passed to Match.
type ExprCompiler func(v bson.RawValue) (func(doc bson.Raw, ctx any) (bson.RawValue, error), error)

// Options configures Compile.
type Options struct {
	// Expr compiles $expr; nil makes $expr a compile error ("$expr is not available here").
	Expr ExprCompiler
}

// Matcher is a compiled filter. It is safe for concurrent use.
type Matcher interface {
	// Match reports whether doc matches. The error is a per-document evaluation failure (from $expr), not a mismatch.
	Match(doc bson.Raw, ctx any) (bool, error)
}

// CompileError is a filter rejected by Compile: the field path, the operator and the reason.
type CompileError struct {
	Path     string // the field path the operator applies to; empty at the top level
	Operator string // the operator, e.g. "$gt"; empty for a literal value
	Msg      string // the reason, in mongod's words where mongod has them
}

// Error renders the error as "path: $op: msg", leaving out empty parts and an operator the
// message already names.
func (e *CompileError) Error() string {
	var b strings.Builder
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	if e.Operator != "" && !strings.Contains(e.Msg, e.Operator) {
		b.WriteString(e.Operator)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

func errorf(path, op, msg string) error {
	return &CompileError{Path: path, Operator: op, Msg: msg}
}

// maxDepth bounds the nesting of a filter, as mongod does.
const maxDepth = 100

// Compile parses a filter document into a Matcher.
func Compile(filter bson.Raw, opts Options) (m Matcher, err error) {
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, errorf("", "", fmt.Sprintf("filter is not a valid BSON document: %v", r))
		}
	}()
	if err := filter.Validate(); err != nil {
		return nil, errorf("", "", "filter is not a valid BSON document: "+err.Error())
	}
	c := &compiler{opts: opts}
	n, err := c.filter(filter, 0)
	if err != nil {
		return nil, err
	}
	return matcher{n}, nil
}

type matcher struct{ root node }

// ErrMalformed reports a document whose bytes are not valid BSON where the matcher looked.
var ErrMalformed = errors.New("match: malformed BSON document")

func (m matcher) Match(doc bson.Raw, ctx any) (ok bool, err error) {
	// The driver's accessors panic on some malformed values that bson.Raw.Validate lets through
	// (a string with a zero length prefix); one bad document must not take the stream down.
	defer func() {
		if r := recover(); r != nil {
			if lp, isLimit := r.(limitPanic); isLimit {
				ok, err = false, lp.err
				return
			}
			ok, err = false, fmt.Errorf("%w: %v", ErrMalformed, r)
		}
	}()
	return m.root.match(doc, ctx)
}

// compiler carries the options and the context a sub-filter is compiled in.
type compiler struct {
	opts Options
	// elemMatch is set inside an $elemMatch object: $expr and $jsonSchema only apply to the
	// top-level document there, as in mongod.
	elemMatch bool
}

// filter compiles a query document: an implicit $and of its clauses.
func (c *compiler) filter(doc bson.Raw, depth int) (node, error) {
	if depth > maxDepth {
		return nil, errorf("", "", "exceeded depth limit of 100 when parsing match expression")
	}
	var nodes []node
	it := value.NewIter(doc)
	for it.Next() {
		key, v := string(it.Key()), it.Val()
		var (
			n   node
			err error
		)
		if strings.HasPrefix(key, "$") {
			n, err = c.topLevel(key, v, depth)
		} else {
			n, err = c.field(key, v, depth)
		}
		if err != nil {
			return nil, err
		}
		if n != nil {
			nodes = append(nodes, n)
		}
	}
	return andOf(nodes), nil
}

// topLevel compiles one top-level operator clause; a nil node (for $comment) matches everything.
func (c *compiler) topLevel(op string, v bson.RawValue, depth int) (node, error) {
	switch op {
	case "$and", "$or", "$nor":
		return c.logical(op, v, depth)
	case "$expr":
		return c.expr(v)
	case "$jsonSchema":
		if c.elemMatch {
			return nil, errorf("", op, "$jsonSchema can only be applied to the top-level document")
		}
		return compileJSONSchema(v)
	case "$comment":
		return nil, nil
	case "$alwaysTrue", "$alwaysFalse":
		if n, ok := asNumber(v); !ok || n != 1 {
			return nil, errorf("", op, op+" must be an integer value of 1")
		}
		return constNode(op == "$alwaysTrue"), nil
	case "$where", "$text":
		return nil, errorf("", op, op+" is not supported in stream processing")
	}
	return nil, errorf("", op, "unknown top level operator: "+op)
}

// field compiles {path: value}: an operator document or a literal to compare with.
func (c *compiler) field(path string, v bson.RawValue, depth int) (node, error) {
	p := splitPath(path)
	if v.Type == bson.TypeEmbeddedDocument && isOperatorDoc(bson.Raw(v.Value)) {
		return c.operatorDoc(path, p, bson.Raw(v.Value), depth)
	}
	if v.Type == bson.TypeRegex {
		r, err := regexFromValue(path, "", v)
		if err != nil {
			return nil, err
		}
		return &pathNode{path: p, pred: r, expand: true}, nil
	}
	pr, err := eqPred(path, "", v)
	if err != nil {
		return nil, err
	}
	return &pathNode{path: p, pred: pr, expand: true}, nil
}

// isOperatorDoc reports whether a field's value is a document of operators ({$gt: 1}) rather
// than a literal document; mongod decides on the first field name. DBRef documents ($ref, $id,
// $db) are literals.
func isOperatorDoc(doc bson.Raw) bool {
	it := value.NewIter(doc)
	if !it.Next() {
		return false
	}
	k := string(it.Key())
	if !strings.HasPrefix(k, "$") {
		return false
	}
	switch k {
	case "$ref", "$id", "$db":
		return false
	}
	return true
}

// splitPath splits a dotted field path into its components.
func splitPath(path string) []string { return strings.Split(path, ".") }
