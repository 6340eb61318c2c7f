package pipeline

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/match"
)

// matchStage is $match: documents that match the filter pass.
type matchStage struct{ m match.Matcher }

func parseMatch(spec bson.RawValue) (Stage, error) {
	doc, ok := spec.DocumentOK()
	if !ok {
		return nil, errf("$match", "", "takes a filter document, not %s", typeName(spec))
	}
	m, err := compileFilter("$match", "", doc)
	if err != nil {
		return nil, err
	}
	return &matchStage{m: m}, nil
}

func (s *matchStage) Name() string { return "$match" }

func (s *matchStage) Process(d *Doc, _ *[]byte, emit func(*Doc)) error {
	ok, err := s.m.Match(d.Raw, d)
	if err != nil {
		return failed("$match", err)
	}
	if ok {
		emit(d)
	}
	return nil
}
