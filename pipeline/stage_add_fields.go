package pipeline

import (
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// addFieldsStage is $addFields and its alias $set.
type addFieldsStage struct {
	name string
	root *projNode
}

func parseAddFields(name string) func(bson.RawValue) (Stage, error) {
	return func(spec bson.RawValue) (Stage, error) {
		doc, ok := spec.DocumentOK()
		if !ok {
			return nil, errf(name, "", "takes a document of fields to set, not %s", typeName(spec))
		}
		n := newNode()
		if err := parseSpec(name, doc, false, n, ""); err != nil {
			return nil, err
		}
		if len(n.fields) == 0 {
			return nil, errf(name, "", "requires at least one field")
		}
		return &addFieldsStage{name: name, root: n}, nil
	}
}

func (s *addFieldsStage) Name() string { return s.name }

func (s *addFieldsStage) Process(d *Doc, buf *[]byte, emit func(*Doc)) error {
	out, err := s.root.addFields(d.Raw, d.Raw, d, scratch(buf, len(d.Raw)+64))
	if err != nil {
		return failed(s.name, err)
	}
	keep(buf, out)
	d.keepMetaFree(out, s.root.sets)
	d.Raw = out
	emit(d)
	return nil
}

func splitPath(p string) []string { return strings.Split(p, ".") }
