package pipeline

import (
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/expr"
)

// setStreamMetaStage is $setStreamMeta: it sets stream metadata fields that later stages read
// with {$meta: "stream.<field>"}.
type setStreamMetaStage struct {
	fields []metaField
}

type metaField struct {
	path []string // below "stream."
	e    expr.Expr
}

func parseSetStreamMeta(spec bson.RawValue) (Stage, error) {
	doc, ok := spec.DocumentOK()
	if !ok {
		return nil, errf("$setStreamMeta", "", "takes {\"stream.<field>\": <expression>}, not %s", typeName(spec))
	}
	elems, _ := doc.Elements()
	if len(elems) == 0 {
		return nil, errf("$setStreamMeta", "", "requires at least one field")
	}
	s := &setStreamMetaStage{}
	for _, e := range elems {
		rest, ok := strings.CutPrefix(e.Key(), "stream.")
		if !ok || rest == "" {
			return nil, errf("$setStreamMeta", e.Key(), "must start with \"stream.\"")
		}
		ex, err := compileExpr("$setStreamMeta", e.Key(), e.Value())
		if err != nil {
			return nil, err
		}
		s.fields = append(s.fields, metaField{path: strings.Split(rest, "."), e: ex})
	}
	return s, nil
}

func (s *setStreamMetaStage) Name() string { return "$setStreamMeta" }

func (s *setStreamMetaStage) Process(d *Doc, _ *[]byte, emit func(*Doc)) error {
	meta := d.Meta
	if meta == nil {
		meta = emptyDoc
	}
	for _, f := range s.fields {
		v, err := f.e.Eval(envFor(d.Raw, d))
		if err != nil {
			return failed("$setStreamMeta", err)
		}
		if v.Type == 0 {
			continue
		}
		meta = setPath(meta, f.path, &v, nil)
	}
	d.Meta = meta
	emit(d)
	return nil
}
