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
	order    []string
	children map[string]*projNode
	exprs    map[string]expr.Expr
	flags    map[string]bool // $project inclusion (true) and exclusion (false)
}

func newNode() *projNode {
	return &projNode{children: map[string]*projNode{}, exprs: map[string]expr.Expr{}, flags: map[string]bool{}}
}

func contains(list []string, k string) bool {
	for _, x := range list {
		if x == k {
			return true
		}
	}
	return false
}

// hasBytes is has for a key given as bytes, without allocating.
func (n *projNode) hasBytes(k []byte) bool {
	_, c := n.children[string(k)]
	_, e := n.exprs[string(k)]
	_, f := n.flags[string(k)]
	return c || e || f
}

func (n *projNode) has(k string) bool {
	_, c := n.children[k]
	_, e := n.exprs[k]
	_, f := n.flags[k]
	return c || e || f
}

// node returns the child node for a path, creating the intermediate levels.
func (n *projNode) node(stage string, parts []string, full string) (*projNode, string, error) {
	for _, p := range parts[:len(parts)-1] {
		if _, e := n.exprs[p]; e {
			return nil, "", errf(stage, full, "collides with the computed field %q", p)
		}
		if _, f := n.flags[p]; f {
			return nil, "", errf(stage, full, "collides with the path %q", p)
		}
		c, ok := n.children[p]
		if !ok {
			c = newNode()
			n.children[p] = c
			n.order = append(n.order, p)
		}
		n = c
	}
	last := parts[len(parts)-1]
	if n.has(last) {
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
			parent.flags[last] = value.Truthy(v)
			parent.order = append(parent.order, last)
		case v.Type == bson.TypeEmbeddedDocument && !isOperatorDoc(v):
			child := newNode()
			if err := parseSpec(stage, v.Document(), project, child, full); err != nil {
				return err
			}
			if len(child.order) == 0 {
				if project {
					return errf(stage, full, "is an empty object: an empty projection is not allowed")
				}
				// {$addFields: {a: {}}} sets a to an empty document.
				ex, err := expr.Compile(v)
				if err != nil {
					return errf(stage, full, "%v", err)
				}
				parent.exprs[last] = ex
				parent.order = append(parent.order, last)
				continue
			}
			parent.children[last] = child
			parent.order = append(parent.order, last)
		default:
			ex, err := expr.Compile(v)
			if err != nil {
				return errf(stage, full, "is not a valid expression: %v", err)
			}
			parent.exprs[last] = ex
			parent.order = append(parent.order, last)
		}
	}
	return nil
}

// addFields applies an $addFields node to doc: existing fields keep their place, specified
// ones are replaced (or merged into embedded documents), new ones are appended.
func (n *projNode) addFields(root bson.Raw, doc bson.Raw, d *Doc, dst []byte) ([]byte, error) {
	if dst == nil {
		dst = make([]byte, 0, len(doc)+64)
	}
	idx, dst := bsoncore.AppendDocumentStart(dst)
	var doneBuf [8]string
	done := doneBuf[:0]
	var err error
	eachElem(doc, func(e bsoncore.Element) bool {
		kb := e.KeyBytes()
		if !n.hasBytes(kb) {
			dst = append(dst, e...)
			return true
		}
		k := string(kb)
		done = append(done, k)
		ev := e.Value()
		dst, err = n.setField(root, k, bson.RawValue{Type: bson.Type(ev.Type), Value: ev.Data}, d, dst)
		return err == nil
	})
	if err != nil {
		return nil, err
	}
	for _, k := range n.order {
		if contains(done, k) {
			continue
		}
		var err error
		if dst, err = n.setField(root, k, value.Missing, d, dst); err != nil {
			return nil, err
		}
	}
	dst, _ = bsoncore.AppendDocumentEnd(dst, idx)
	return dst, nil
}

// setField writes field k: the expression's value, or the nested specification applied to the
// existing value (each element of an array of documents).
func (n *projNode) setField(root bson.Raw, k string, old bson.RawValue, d *Doc, dst []byte) ([]byte, error) {
	if ex, ok := n.exprs[k]; ok {
		v, err := ex.Eval(envFor(root, d))
		if err != nil {
			return nil, err
		}
		if value.IsMissing(v) {
			return dst, nil
		}
		return bsoncore.AppendValueElement(dst, k, bsoncore.Value{Type: bsoncore.Type(v.Type), Data: v.Value}), nil
	}
	child := n.children[k]
	switch old.Type {
	case bson.TypeArray:
		vals, _ := old.Array().Values()
		aidx, out := bsoncore.AppendArrayElementStart(dst, k)
		for i, v := range vals {
			sub := bson.Raw(nil)
			if v.Type == bson.TypeEmbeddedDocument {
				sub = v.Document()
			} else {
				sub = emptyDoc
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
		return child.addFields(root, old.Document(), d, dst)
	default:
		dst = bsoncore.AppendHeader(dst, bsoncore.TypeEmbeddedDocument, k)
		return child.addFields(root, emptyDoc, d, dst)
	}
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
