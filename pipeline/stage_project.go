package pipeline

import (
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/spi-streams/spi/pipeline/value"
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
	for _, f := range n.fields {
		switch f.kind {
		case fieldInclude:
			includes = includes || !top || f.name != "_id"
		case fieldExclude:
			excludes = excludes || !top || f.name != "_id"
		case fieldExpr:
			computes = true
		case fieldChild:
			i, e, c := f.child.mode(false)
			includes, excludes, computes = includes || i, excludes || e, computes || c
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
	if len(n.fields) == 0 {
		return nil, errf("$project", "", "requires at least one output field")
	}
	inc, exc, comp := n.mode(true)
	if exc && (inc || comp) {
		return nil, errf("$project", "", "cannot mix exclusion (0 or false) with inclusion or computed fields, except for _id")
	}
	n.finish()
	s := &projectStage{name: "$project", root: n, inclusion: inc || comp, keepID: true}
	if f := n.find("_id"); f != nil && (f.kind == fieldInclude || f.kind == fieldExclude) {
		s.keepID = f.kind == fieldInclude
		if !inc && !comp && !exc {
			// {_id: 0} alone is an exclusion; {_id: 1} alone an inclusion.
			s.inclusion = s.keepID
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
		parent.add(&projField{name: last, kind: fieldExclude})
	}
	return &projectStage{name: "$unset", root: n, keepID: true}, nil
}

func (s *projectStage) Name() string { return s.name }

func (s *projectStage) Process(d *Doc, buf *[]byte, emit func(*Doc)) error {
	dst := scratch(buf, len(d.Raw))
	var err error
	if s.inclusion {
		dst, err = s.root.include(d.Raw, d.Raw, d, dst, s.keepID, true)
	} else {
		dst = s.root.exclude(d.Raw, dst)
	}
	if err != nil {
		return failed(s.name, err)
	}
	keep(buf, dst)
	d.Raw = dst
	emit(d)
	return nil
}

// include applies an inclusion projection, appending the result to dst: included fields in
// the input's order, then the computed ones in the specification's order.
func (n *projNode) include(root, doc bson.Raw, d *Doc, dst []byte, keepID, top bool) ([]byte, error) {
	idx, dst := bsoncore.AppendDocumentStart(dst)
	seen := newFieldSet(len(n.fields))
	var err error
	it := value.NewIter(doc)
	for it.Next() {
		f := n.findBytes(it.Key())
		if top && string(it.Key()) == "_id" {
			switch {
			case !keepID || (f != nil && f.kind == fieldExpr):
			case f != nil && f.kind == fieldChild:
				dst, err = f.child.includeValue(root, "_id", it.Val(), d, dst)
			default:
				dst = append(dst, it.Elem()...)
			}
			if f != nil {
				seen.add(f.pos)
			}
			if err != nil {
				return nil, err
			}
			continue
		}
		if f == nil {
			continue
		}
		switch f.kind {
		case fieldInclude:
			dst = append(dst, it.Elem()...)
		case fieldChild:
			seen.add(f.pos)
			if dst, err = f.child.includeValue(root, f.name, it.Val(), d, dst); err != nil {
				return nil, err
			}
		}
	}
	if !n.computed {
		dst, _ = bsoncore.AppendDocumentEnd(dst, idx)
		return dst, nil
	}
	for _, f := range n.fields {
		switch {
		case f.kind == fieldExpr:
			v, err := f.ex.Eval(envFor(root, d))
			if err != nil {
				return nil, err
			}
			if v.Type != 0 {
				dst = appendElem(dst, f.name, v)
			}
		case f.kind == fieldChild && !seen.has(f.pos) && f.child.computed:
			dst = bsoncore.AppendHeader(dst, bsoncore.TypeEmbeddedDocument, f.name)
			if dst, err = f.child.include(root, emptyDoc, d, dst, true, false); err != nil {
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
		return n.include(root, v.Value, d, dst, true, false)
	case bson.TypeArray:
		aidx, out := bsoncore.AppendArrayElementStart(dst, k)
		i := 0
		it := value.NewIter(v.Value)
		for it.Next() {
			if it.Val().Type != bson.TypeEmbeddedDocument && it.Val().Type != bson.TypeArray {
				continue
			}
			var err error
			if out, err = n.includeValue(root, arrayKey(i), it.Val(), d, out); err != nil {
				return nil, err
			}
			i++
		}
		out, _ = bsoncore.AppendArrayEnd(out, aidx)
		return out, nil
	}
	if n.computed {
		dst = bsoncore.AppendHeader(dst, bsoncore.TypeEmbeddedDocument, k)
		return n.include(root, emptyDoc, d, dst, true, false)
	}
	return dst, nil
}

// exclude removes the specified fields, descending into documents and arrays of documents,
// and appends the result to dst.
func (n *projNode) exclude(doc bson.Raw, dst []byte) []byte {
	idx, dst := bsoncore.AppendDocumentStart(dst)
	it := value.NewIter(doc)
	for it.Next() {
		f := n.findBytes(it.Key())
		switch {
		case f == nil || f.kind == fieldInclude || f.kind == fieldExpr:
			dst = append(dst, it.Elem()...)
		case f.kind == fieldChild:
			dst = f.child.excludeValue(f.name, it.Val(), dst)
		}
	}
	dst, _ = bsoncore.AppendDocumentEnd(dst, idx)
	return dst
}

func (n *projNode) excludeValue(k string, v bson.RawValue, dst []byte) []byte {
	switch v.Type {
	case bson.TypeEmbeddedDocument:
		dst = bsoncore.AppendHeader(dst, bsoncore.TypeEmbeddedDocument, k)
		return n.exclude(v.Value, dst)
	case bson.TypeArray:
		aidx, out := bsoncore.AppendArrayElementStart(dst, k)
		it := value.NewIter(v.Value)
		for i := 0; it.Next(); i++ {
			if it.Val().Type == bson.TypeEmbeddedDocument || it.Val().Type == bson.TypeArray {
				out = n.excludeValue(arrayKey(i), it.Val(), out)
			} else {
				out = appendElem(out, arrayKey(i), it.Val())
			}
		}
		out, _ = bsoncore.AppendArrayEnd(out, aidx)
		return out
	}
	return appendElem(dst, k, v)
}
