package pipeline

import (
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/expr"
	"github.com/spi-streams/spi/pipeline/value"
)

// envFor is the expression environment of a document: $$ROOT is raw, {$meta: "stream..."}
// reads d's stream metadata.
func envFor(raw bson.Raw, d *Doc) *expr.Env {
	env := &expr.Env{Root: raw}
	if d != nil && d.Meta != nil {
		meta := d.Meta
		env.Meta = func(path string) bson.RawValue { return metaLookup(meta, path) }
	}
	return env
}

// metaLookup resolves "stream" or "stream.a.b" in a metadata document.
func metaLookup(meta bson.Raw, path string) bson.RawValue {
	if path == "stream" {
		return bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: meta}
	}
	rest, ok := strings.CutPrefix(path, "stream.")
	if !ok || meta == nil {
		return value.Missing
	}
	v, err := meta.LookupErr(strings.Split(rest, ".")...)
	if err != nil {
		return value.Missing
	}
	return v
}

// evalErr makes a per-document failure of a stage.
type evalErr struct {
	stage string
	err   error
}

func (e *evalErr) Error() string { return e.stage + ": " + e.err.Error() }

func failed(stage string, err error) error { return &evalErr{stage: stage, err: err} }
