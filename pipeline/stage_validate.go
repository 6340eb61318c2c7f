package pipeline

import (
	"errors"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/match"
)

// validateStage is $validate: documents that fail the validator are dropped ("discard") or
// sent to the dead-letter queue ("dlq").
type validateStage struct {
	m   match.Matcher
	dlq bool
}

// errInvalid is the dead-letter reason of a document $validate rejects (Atlas's text).
var errInvalid = errors.New("Input document found to be invalid in $validate stage")

func parseValidate(spec bson.RawValue) (Stage, error) {
	doc, ok := spec.DocumentOK()
	if !ok {
		return nil, errf("$validate", "", "takes {validator: {...}, validationAction: \"discard\"|\"dlq\"}, not %s", typeName(spec))
	}
	if err := checkFields("$validate", "", doc, "validator", "validationAction"); err != nil {
		return nil, err
	}
	s := &validateStage{}
	v, err := doc.LookupErr("validator")
	if err != nil {
		return nil, errf("$validate", "validator", "is required")
	}
	filter, ok := v.DocumentOK()
	if !ok {
		return nil, errf("$validate", "validator", "must be a query filter document, not %s", typeName(v))
	}
	if s.m, err = compileFilter("$validate", "validator", filter); err != nil {
		return nil, err
	}
	if a, err := doc.LookupErr("validationAction"); err == nil {
		switch str, _ := a.StringValueOK(); str {
		case "discard":
		case "dlq":
			s.dlq = true
		default:
			return nil, errf("$validate", "validationAction", "must be \"discard\" or \"dlq\", not %s", a.String())
		}
	}
	return s, nil
}

func (s *validateStage) Name() string { return "$validate" }

func (s *validateStage) Process(d *Doc, _ *[]byte, emit func(*Doc)) error {
	ok, err := s.m.Match(d.Raw, d)
	if err != nil {
		return failed("$validate", err)
	}
	switch {
	case ok:
		emit(d)
	case s.dlq:
		return &evalErr{stage: "$validate", err: errInvalid}
	}
	return nil
}
