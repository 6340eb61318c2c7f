package pipeline

import (
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/spi-streams/spi/pipeline/expr"
)

// redactStage is $redact: the expression decides, level by level, whether to keep ($$KEEP),
// drop ($$PRUNE) or look inside ($$DESCEND) each (sub)document.
type redactStage struct{ e expr.Expr }

func parseRedact(spec bson.RawValue) (Stage, error) {
	e, err := compileExpr("$redact", "", spec)
	if err != nil {
		return nil, err
	}
	return &redactStage{e: e}, nil
}

func (s *redactStage) Name() string { return "$redact" }

func (s *redactStage) Process(d *Doc, _ *[]byte, emit func(*Doc)) error {
	out, keep, err := s.redact(d.Raw, d)
	if err != nil {
		return failed("$redact", err)
	}
	if keep {
		d.Raw = out
		emit(d)
	}
	return nil
}

func (s *redactStage) decide(doc bson.Raw, d *Doc) (string, error) {
	v, err := s.e.Eval(envFor(doc, d))
	if err != nil {
		return "", err
	}
	str, ok := v.StringValueOK()
	if !ok || (str != expr.RedactKeep && str != expr.RedactPrune && str != expr.RedactDescend) {
		return "", fmt.Errorf("$redact's expression should not return anything aside from the variables $$KEEP, $$DESCEND, and $$PRUNE, but returned %s", v.String())
	}
	return str, nil
}

func (s *redactStage) redact(doc bson.Raw, d *Doc) (bson.Raw, bool, error) {
	what, err := s.decide(doc, d)
	if err != nil || what == expr.RedactPrune {
		return nil, false, err
	}
	if what == expr.RedactKeep {
		return doc, true, nil
	}
	idx, out := bsoncore.AppendDocumentStart(nil)
	elems, _ := doc.Elements()
	for _, e := range elems {
		v := e.Value()
		switch v.Type {
		case bson.TypeEmbeddedDocument:
			sub, keep, err := s.redact(v.Document(), d)
			if err != nil {
				return nil, false, err
			}
			if keep {
				out = bsoncore.AppendDocumentElement(out, e.Key(), sub)
			}
		case bson.TypeArray:
			aidx, o := bsoncore.AppendArrayElementStart(out, e.Key())
			vals, _ := v.Array().Values()
			i := 0
			for _, av := range vals {
				if av.Type == bson.TypeEmbeddedDocument {
					sub, keep, err := s.redact(av.Document(), d)
					if err != nil {
						return nil, false, err
					}
					if keep {
						o = bsoncore.AppendDocumentElement(o, itoa(i), sub)
						i++
					}
					continue
				}
				o = bsoncore.AppendValueElement(o, itoa(i), bsoncore.Value{Type: bsoncore.Type(av.Type), Data: av.Value})
				i++
			}
			out, _ = bsoncore.AppendArrayEnd(o, aidx)
		default:
			out = append(out, e...)
		}
	}
	out, _ = bsoncore.AppendDocumentEnd(out, idx)
	return out, true, nil
}
