package pipeline

import (
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// projectStage is $project (and $unset, an exclusion projection).
type projectStage struct {
	name      string
	root      *projNode
	inclusion bool
	keepID    bool
}

// mode walks a specification: does it include, exclude, or compute fields?
func (n *projNode) mode(top bool) (includes, excludes, computes bool) {
	for _, k := range n.order {
		if f, ok := n.flags[k]; ok {
			if top && k == "_id" {
				continue
			}
			if f {
				includes = true
			} else {
				excludes = true
			}
		}
		if _, ok := n.exprs[k]; ok {
			computes = true
		}
		if c, ok := n.children[k]; ok {
			i, e, cc := c.mode(false)
			includes, excludes, computes = includes || i, excludes || e, computes || cc
		}
	}
	return
}

func parseProject(spec bson.RawValue) (Stage, error) {
	doc, ok := spec.DocumentOK()
	if !ok {
		return nil, errf("$project", "", "takes a specification document, not %s", typeName(spec))
	}
	n := newNode()
	if err := parseSpec("$project", doc, true, n, ""); err != nil {
		return nil, err
	}
	if len(n.order) == 0 {
		return nil, errf("$project", "", "requires at least one output field")
	}
	inc, exc, comp := n.mode(true)
	if exc && (inc || comp) {
		return nil, errf("$project", "", "cannot mix exclusion (0 or false) with inclusion or computed fields, except for _id")
	}
	s := &projectStage{name: "$project", root: n, inclusion: inc || comp, keepID: true}
	if f, ok := n.flags["_id"]; ok {
		s.keepID = f
		if !inc && !comp && !exc {
			// {_id: 0} alone is an exclusion; {_id: 1} alone an inclusion.
			s.inclusion = f
		}
	}
	return s, nil
}

func parseUnset(spec bson.RawValue) (Stage, error) {
	var fields []string
	switch spec.Type {
	case bson.TypeString:
		fields = []string{spec.StringValue()}
	case bson.TypeArray:
		vals, _ := spec.Array().Values()
		for i, v := range vals {
			s, ok := v.StringValueOK()
			if !ok {
				return nil, errf("$unset", itoa(i), "must be a field path string, not %s", typeName(v))
			}
			fields = append(fields, s)
		}
	default:
		return nil, errf("$unset", "", "takes a field path or an array of field paths, not %s", typeName(spec))
	}
	if len(fields) == 0 {
		return nil, errf("$unset", "", "requires at least one field")
	}
	n := newNode()
	for _, f := range fields {
		if err := validFieldName("$unset", f); err != nil {
			return nil, err
		}
		parent, last, err := n.node("$unset", splitPath(f), f)
		if err != nil {
			return nil, err
		}
		parent.flags[last] = false
		parent.order = append(parent.order, last)
	}
	return &projectStage{name: "$unset", root: n, keepID: true}, nil
}

func (s *projectStage) Name() string { return s.name }

func (s *projectStage) Process(d *Doc, emit func(*Doc)) error {
	var out []byte
	var err error
	if s.inclusion {
		out, err = s.root.include(d.Raw, d.Raw, d, nil, s.keepID, true)
	} else {
		out = s.root.exclude(d.Raw, nil)
	}
	if err != nil {
		return failed(s.name, err)
	}
	d.Raw = out
	emit(d)
	return nil
}

// hasComputed reports whether the subtree computes any field.
func (n *projNode) hasComputed() bool {
	if len(n.exprs) > 0 {
		return true
	}
	for _, c := range n.children {
		if c.hasComputed() {
			return true
		}
	}
	return false
}

// include applies an inclusion projection: included fields in the input's order, then the
// computed ones in the specification's order.
func (n *projNode) include(root, doc bson.Raw, d *Doc, dst []byte, keepID, top bool) ([]byte, error) {
	if dst == nil {
		dst = make([]byte, 0, len(doc))
	}
	idx, dst := bsoncore.AppendDocumentStart(dst)
	var seenBuf [8]string
	seen := seenBuf[:0]
	var err error
	eachElem(doc, func(e bsoncore.Element) bool {
		kb := e.KeyBytes()
		if top && string(kb) == "_id" {
			if _, computed := n.exprs["_id"]; !computed && keepID {
				if c, nested := n.children["_id"]; nested {
					dst, err = c.includeValue(root, "_id", rawValueOf(e), d, dst)
				} else {
					dst = append(dst, e...)
				}
			}
			seen = append(seen, "_id")
			return err == nil
		}
		if f, ok := n.flags[string(kb)]; ok && f {
			dst = append(dst, e...)
			return true
		}
		if c, ok := n.children[string(kb)]; ok {
			k := string(kb)
			seen = append(seen, k)
			dst, err = c.includeValue(root, k, rawValueOf(e), d, dst)
		}
		return err == nil
	})
	if err != nil {
		return nil, err
	}
	for _, k := range n.order {
		if ex, ok := n.exprs[k]; ok {
			v, err := ex.Eval(envFor(root, d))
			if err != nil {
				return nil, err
			}
			if v.Type != 0 {
				dst = bsoncore.AppendValueElement(dst, k, bsoncore.Value{Type: bsoncore.Type(v.Type), Data: v.Value})
			}
			continue
		}
		if c, ok := n.children[k]; ok && !contains(seen, k) && c.hasComputed() {
			dst = bsoncore.AppendHeader(dst, bsoncore.TypeEmbeddedDocument, k)
			var err error
			if dst, err = c.include(root, emptyDoc, d, dst, true, false); err != nil {
				return nil, err
			}
		}
	}
	dst, _ = bsoncore.AppendDocumentEnd(dst, idx)
	return dst, nil
}

// includeValue applies a nested inclusion to one field's value: documents are projected,
// arrays element by element (dropping non-documents), and scalars are dropped unless the
// nested specification computes fields.
func (n *projNode) includeValue(root bson.Raw, k string, v bson.RawValue, d *Doc, dst []byte) ([]byte, error) {
	switch v.Type {
	case bson.TypeEmbeddedDocument:
		dst = bsoncore.AppendHeader(dst, bsoncore.TypeEmbeddedDocument, k)
		return n.include(root, v.Document(), d, dst, true, false)
	case bson.TypeArray:
		vals, _ := v.Array().Values()
		aidx, out := bsoncore.AppendArrayElementStart(dst, k)
		i := 0
		for _, ev := range vals {
			if ev.Type != bson.TypeEmbeddedDocument && ev.Type != bson.TypeArray {
				continue
			}
			var err error
			if out, err = n.includeValue(root, arrayKey(i), ev, d, out); err != nil {
				return nil, err
			}
			i++
		}
		out, _ = bsoncore.AppendArrayEnd(out, aidx)
		return out, nil
	}
	if n.hasComputed() {
		dst = bsoncore.AppendHeader(dst, bsoncore.TypeEmbeddedDocument, k)
		return n.include(root, emptyDoc, d, dst, true, false)
	}
	return dst, nil
}

// exclude removes the specified fields, descending into documents and arrays of documents.
func (n *projNode) exclude(doc bson.Raw, dst []byte) []byte {
	if dst == nil {
		dst = make([]byte, 0, len(doc))
	}
	idx, dst := bsoncore.AppendDocumentStart(dst)
	eachElem(doc, func(e bsoncore.Element) bool {
		kb := e.KeyBytes()
		if f, ok := n.flags[string(kb)]; ok && !f {
			return true
		}
		c, ok := n.children[string(kb)]
		if !ok {
			dst = append(dst, e...)
			return true
		}
		dst = c.excludeValue(string(kb), rawValueOf(e), dst)
		return true
	})
	dst, _ = bsoncore.AppendDocumentEnd(dst, idx)
	return dst
}

// rawValueOf is an element's value as a bson.RawValue.
func rawValueOf(e bsoncore.Element) bson.RawValue {
	v := e.Value()
	return bson.RawValue{Type: bson.Type(v.Type), Value: v.Data}
}

func (n *projNode) excludeValue(k string, v bson.RawValue, dst []byte) []byte {
	switch v.Type {
	case bson.TypeEmbeddedDocument:
		dst = bsoncore.AppendHeader(dst, bsoncore.TypeEmbeddedDocument, k)
		return n.exclude(v.Document(), dst)
	case bson.TypeArray:
		vals, _ := v.Array().Values()
		aidx, out := bsoncore.AppendArrayElementStart(dst, k)
		for i, ev := range vals {
			if ev.Type == bson.TypeEmbeddedDocument || ev.Type == bson.TypeArray {
				out = n.excludeValue(arrayKey(i), ev, out)
			} else {
				out = bsoncore.AppendValueElement(out, arrayKey(i), bsoncore.Value{Type: bsoncore.Type(ev.Type), Data: ev.Value})
			}
		}
		out, _ = bsoncore.AppendArrayEnd(out, aidx)
		return out
	}
	return bsoncore.AppendValueElement(dst, k, bsoncore.Value{Type: bsoncore.Type(v.Type), Data: v.Value})
}
