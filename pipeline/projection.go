package pipeline

import (
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/spi-streams/spi/pipeline/expr"
	"github.com/spi-streams/spi/pipeline/value"
)

// projNode is one level of a projection or $addFields specification. Dotted paths in the
// specification become nested nodes.
type projNode struct {
	// fields are in the specification's order.
	fields []*projField
	// index finds a field by name when there are too many for a linear scan to be faster.
	index map[string]*projField
	// computed says the subtree computes a field.
	computed bool
}

// projField is one field of a node: included, excluded, computed, or a nested node.
type projField struct {
	pos   int // index in the node's fields
	name  string
	kind  fieldKind
	ex    expr.Expr
	child *projNode
}

type fieldKind uint8

const (
	fieldInclude fieldKind = iota
	fieldExclude
	fieldExpr
	fieldChild
)

// indexAbove is the number of fields from which a node keeps a map: below it, comparing a key
// with each name is faster than hashing it.
const indexAbove = 8

func newNode() *projNode { return &projNode{} }

// add appends a field and keeps the index and the computed flag up to date.
func (n *projNode) add(f *projField) {
	f.pos = len(n.fields)
	n.fields = append(n.fields, f)
	if len(n.fields) > indexAbove {
		if n.index == nil {
			n.index = make(map[string]*projField, len(n.fields))
			for _, g := range n.fields {
				n.index[g.name] = g
			}
		}
		n.index[f.name] = f
	}
}

// find returns the field named k, or nil.
func (n *projNode) find(k string) *projField {
	if n.index != nil {
		return n.index[k]
	}
	for _, f := range n.fields {
		if f.name == k {
			return f
		}
	}
	return nil
}

// sets reports whether the node names the top-level field k (so $addFields may set it).
func (n *projNode) sets(k string) bool { return n.find(k) != nil }

// findBytes is find for a key given as bytes, without allocating.
func (n *projNode) findBytes(k []byte) *projField {
	if n.index != nil {
		return n.index[string(k)]
	}
	for _, f := range n.fields {
		if f.name == string(k) {
			return f
		}
	}
	return nil
}

// finish computes the computed flags of the tree once it is built.
func (n *projNode) finish() bool {
	n.computed = false
	for _, f := range n.fields {
		switch f.kind {
		case fieldExpr:
			n.computed = true
		case fieldChild:
			if f.child.finish() {
				n.computed = true
			}
		}
	}
	return n.computed
}

// node returns the node for a path's last component, creating the intermediate levels.
func (n *projNode) node(stage string, parts []string, full string) (*projNode, string, error) {
	for _, p := range parts[:len(parts)-1] {
		f := n.find(p)
		switch {
		case f == nil:
			f = &projField{name: p, kind: fieldChild, child: newNode()}
			n.add(f)
		case f.kind == fieldExpr:
			return nil, "", errf(stage, full, "collides with the computed field %q", p)
		case f.kind != fieldChild:
			return nil, "", errf(stage, full, "collides with the path %q", p)
		}
		n = f.child
	}
	last := parts[len(parts)-1]
	if n.find(last) != nil {
		return nil, "", errf(stage, full, "is specified twice (or collides with another path)")
	}
	return n, last, nil
}

func validFieldName(stage, path string) error {
	if path == "" {
		return errf(stage, "", "has an empty field name")
	}
	if strings.ContainsRune(path, 0) {
		return errf(stage, "", "has a field name with a null byte")
	}
	if strings.HasPrefix(path, "$") {
		return errf(stage, path, "is not a valid field name: it cannot start with '$'")
	}
	for _, p := range strings.Split(path, ".") {
		if p == "" {
			return errf(stage, path, "is not a valid field path: it has an empty component")
		}
	}
	return nil
}

func isOperatorDoc(v bson.RawValue) bool {
	doc, ok := v.DocumentOK()
	if !ok {
		return false
	}
	first, err := doc.IndexErr(0)
	return err == nil && strings.HasPrefix(first.Key(), "$")
}

// parseSpec builds the node tree of an $addFields ($set) or $project specification.
// project is false for $addFields, where every value is an expression.
func parseSpec(stage string, spec bson.Raw, project bool, n *projNode, prefix string) error {
	elems, err := spec.Elements()
	if err != nil {
		return errf(stage, prefix, "is not a valid document")
	}
	for _, e := range elems {
		full := join(prefix, e.Key())
		if err := validFieldName(stage, e.Key()); err != nil {
			return errf(stage, full, "%s", err.(*ParseError).Msg)
		}
		parent, last, err := n.node(stage, strings.Split(e.Key(), "."), full)
		if err != nil {
			return err
		}
		v := e.Value()
		switch {
		case project && (value.IsNumber(v) || v.Type == bson.TypeBoolean):
			kind := fieldExclude
			if value.Truthy(v) {
				kind = fieldInclude
			}
			parent.add(&projField{name: last, kind: kind})
		case v.Type == bson.TypeEmbeddedDocument && !isOperatorDoc(v):
			child := newNode()
			if err := parseSpec(stage, v.Document(), project, child, full); err != nil {
				return err
			}
			if len(child.fields) == 0 {
				if project {
					return errf(stage, full, "is an empty object: an empty projection is not allowed")
				}
				// {$addFields: {a: {}}} sets a to an empty document.
				ex, err := expr.Compile(v)
				if err != nil {
					return errf(stage, full, "%v", err)
				}
				parent.add(&projField{name: last, kind: fieldExpr, ex: ex})
				continue
			}
			parent.add(&projField{name: last, kind: fieldChild, child: child})
		default:
			ex, err := expr.Compile(v)
			if err != nil {
				return errf(stage, full, "is not a valid expression: %v", err)
			}
			parent.add(&projField{name: last, kind: fieldExpr, ex: ex})
		}
	}
	return nil
}

// fieldSet records which fields of a node a walk has met, without allocating for up to 64.
type fieldSet struct {
	small uint64
	big   []bool
}

func newFieldSet(n int) fieldSet {
	if n > 64 {
		return fieldSet{big: make([]bool, n)}
	}
	return fieldSet{}
}

func (s *fieldSet) add(i int) {
	if s.big != nil {
		s.big[i] = true
		return
	}
	s.small |= 1 << uint(i)
}

func (s *fieldSet) has(i int) bool {
	if s.big != nil {
		return s.big[i]
	}
	return s.small&(1<<uint(i)) != 0
}

// addFields applies an $addFields node to doc, appending the result to dst: existing fields
// keep their place, specified ones are replaced (or merged into embedded documents), new ones
// are appended.
func (n *projNode) addFields(root bson.Raw, doc bson.Raw, d *Doc, dst []byte) ([]byte, error) {
	idx, dst := bsoncore.AppendDocumentStart(dst)
	done := newFieldSet(len(n.fields))
	var err error
	it := value.NewIter(doc)
	run := 0 // the start of the elements kept as they are and not yet copied
	for it.Next() {
		f := n.findBytes(it.Key())
		if f == nil {
			continue
		}
		dst = append(dst, it.From(run)...)
		run = it.End()
		done.add(f.pos)
		if dst, err = f.set(root, it.Val(), d, dst); err != nil {
			return nil, err
		}
	}
	dst = append(dst, it.From(run)...)
	for _, f := range n.fields {
		if done.has(f.pos) {
			continue
		}
		if dst, err = f.set(root, value.Missing, d, dst); err != nil {
			return nil, err
		}
	}
	dst, _ = bsoncore.AppendDocumentEnd(dst, idx)
	return dst, nil
}

// set writes the field: the expression's value, or the nested specification applied to the
// existing value old (each element of an array of documents).
func (f *projField) set(root bson.Raw, old bson.RawValue, d *Doc, dst []byte) ([]byte, error) {
	k := f.name
	if f.kind == fieldExpr {
		v, err := f.ex.Eval(envFor(root, d))
		if err != nil {
			return nil, err
		}
		if value.IsMissing(v) {
			return dst, nil
		}
		return appendElem(dst, k, v), nil
	}
	child := f.child
	switch old.Type {
	case bson.TypeArray:
		aidx, out := bsoncore.AppendArrayElementStart(dst, k)
		it := value.NewIter(old.Value)
		for i := 0; it.Next(); i++ {
			sub := emptyDoc
			if it.Val().Type == bson.TypeEmbeddedDocument {
				sub = it.Val().Value
			}
			var err error
			out = bsoncore.AppendHeader(out, bsoncore.TypeEmbeddedDocument, arrayKey(i))
			if out, err = child.addFields(root, sub, d, out); err != nil {
				return nil, err
			}
		}
		out, _ = bsoncore.AppendArrayEnd(out, aidx)
		return out, nil
	case bson.TypeEmbeddedDocument:
		dst = bsoncore.AppendHeader(dst, bsoncore.TypeEmbeddedDocument, k)
		return child.addFields(root, old.Value, d, dst)
	default:
		dst = bsoncore.AppendHeader(dst, bsoncore.TypeEmbeddedDocument, k)
		return child.addFields(root, emptyDoc, d, dst)
	}
}

// appendElem appends the element k: v.
func appendElem(dst []byte, k string, v bson.RawValue) []byte {
	dst = append(dst, byte(v.Type))
	dst = append(dst, k...)
	dst = append(dst, 0)
	return append(dst, v.Value...)
}

var emptyDoc = bson.Raw{5, 0, 0, 0, 0}

func arrayKey(i int) string { return itoa(i) }

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	var b [20]byte
	p := len(b)
	for i > 0 {
		p--
		b[p] = byte('0' + i%10)
		i /= 10
	}
	return string(b[p:])
}
