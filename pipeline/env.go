package pipeline

import (
	"encoding/binary"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

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

// eachElem calls fn for each element of a valid document without allocating; fn returns
// false to stop.
func eachElem(doc []byte, fn func(e bsoncore.Element) bool) {
	if len(doc) < 5 {
		return
	}
	rest := doc[4 : len(doc)-1]
	for len(rest) > 0 {
		e, r, ok := bsoncore.ReadElement(rest)
		if !ok || !fn(e) {
			return
		}
		rest = r
	}
}

// appendField returns doc with key set to v: when the key is absent (the usual case for the
// time field) the element is appended in one copy; otherwise the field is replaced in place.
func appendField(doc bson.Raw, key string, v bson.RawValue) bson.Raw {
	present := false
	eachElem(doc, func(e bsoncore.Element) bool {
		if string(e.KeyBytes()) == key {
			present = true
			return false
		}
		return true
	})
	if present {
		return setPath(doc, []string{key}, &v, nil)
	}
	out := make([]byte, 0, len(doc)+len(key)+len(v.Value)+2)
	out = append(out, doc[:len(doc)-1]...)
	out = bsoncore.AppendValueElement(out, key, bsoncore.Value{Type: bsoncore.Type(v.Type), Data: v.Value})
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
