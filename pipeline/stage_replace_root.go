package pipeline

import (
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/expr"
	"github.com/spi-streams/spi/pipeline/value"
)

// replaceRootStage is $replaceRoot {newRoot: <expr>} and $replaceWith <expr>.
type replaceRootStage struct {
	name string
	e    expr.Expr
}

func parseReplaceRoot(spec bson.RawValue) (Stage, error) {
	doc, ok := spec.DocumentOK()
	if !ok {
		return nil, errf("$replaceRoot", "", "takes {newRoot: <expression>}, not %s", typeName(spec))
	}
	if err := checkFields("$replaceRoot", "", doc, "newRoot"); err != nil {
		return nil, err
	}
	nr, err := doc.LookupErr("newRoot")
	if err != nil {
		return nil, errf("$replaceRoot", "newRoot", "is required")
	}
	e, err := compileExpr("$replaceRoot", "newRoot", nr)
	if err != nil {
		return nil, err
	}
	return &replaceRootStage{name: "$replaceRoot", e: e}, nil
}

func parseReplaceWith(spec bson.RawValue) (Stage, error) {
	e, err := compileExpr("$replaceWith", "", spec)
	if err != nil {
		return nil, err
	}
	return &replaceRootStage{name: "$replaceWith", e: e}, nil
}

func (s *replaceRootStage) Name() string { return s.name }

func (s *replaceRootStage) Process(d *Doc, _ *[]byte, emit func(*Doc)) error {
	v, err := s.e.Eval(envFor(d.Raw, d))
	if err != nil {
		return failed(s.name, err)
	}
	doc, ok := v.DocumentOK()
	if !ok {
		return failed(s.name, fmt.Errorf("'newRoot' expression must evaluate to an object, but resulting value was of type %s", value.TypeName(v)))
	}
	d.Raw = doc
	emit(d)
	return nil
}
