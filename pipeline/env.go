package pipeline

import (
	"encoding/binary"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/value"

	"github.com/spi-streams/spi/pipeline/expr"
)

// envFor is the expression environment of a document: $$ROOT is raw, {$meta: "stream..."}
// reads d's stream metadata.
func envFor(raw bson.Raw, d *Doc) *expr.Env {
	if d == nil {
		return &expr.Env{Root: raw}
	}
	d.env.Root, d.env.MetaDoc, d.env.Meta = raw, d.Meta, nil
	return &d.env
}

// scratch returns the buffer a stage builds its output document in: the stage's reused
// buffer when the engine gives it one, else a new buffer of capacity size.
func scratch(buf *[]byte, size int) []byte {
	if buf == nil {
		return make([]byte, 0, size)
	}
	return (*buf)[:0]
}

// keep stores a stage's output buffer for its next document.
func keep(buf *[]byte, out []byte) {
	if buf != nil {
		*buf = out
	}
}

// appendField returns doc with key set to v, built in dst: when the key is absent (the usual
// case for the time field) the element is appended to a copy; otherwise the field is replaced
// in place.
func appendField(dst []byte, doc bson.Raw, key string, v bson.RawValue) []byte {
	if value.Lookup(doc, key).Type != 0 {
		return setPath(doc, []string{key}, &v, dst)
	}
	return appendNew(dst, doc, key, v)
}

// appendNew returns doc with the element key: v appended, built in dst; doc has no field key.
func appendNew(dst []byte, doc bson.Raw, key string, v bson.RawValue) []byte {
	start := len(dst)
	dst = append(dst, doc[:len(doc)-1]...)
	dst = appendElem(dst, key, v)
	dst = append(dst, 0)
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(dst)-start))
	return dst
}

// appendInPlace returns doc with the element key: v appended in doc's own array, which has
// the room for it past its length (Input.Room); doc has no field key.
func appendInPlace(doc bson.Raw, key string, v bson.RawValue) []byte {
	out := appendElem(doc[:len(doc)-1], key, v)
	out = append(out, 0)
	binary.LittleEndian.PutUint32(out, uint32(len(out)))
	return out
}

// evalErr makes a per-document failure of a stage.
type evalErr struct {
	stage string
	err   error
}

func (e *evalErr) Error() string { return e.stage + ": " + e.err.Error() }

func failed(stage string, err error) error { return &evalErr{stage: stage, err: err} }
