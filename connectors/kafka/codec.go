package kafka

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// appendBSON parses one JSON or Extended JSON document and appends its BSON to dst.
func appendBSON(dst, src []byte) ([]byte, error) {
	var d bson.Raw
	if err := bson.UnmarshalExtJSON(src, false, &d); err != nil {
		return dst, err
	}
	return append(dst, d...), nil
}

// jsonValue parses a JSON value of any type (a key in keyFormat json).
func jsonValue(src []byte) (bson.RawValue, error) {
	wrapped := make([]byte, 0, len(src)+8)
	wrapped = append(append(append(wrapped, `{"v":`...), src...), '}')
	d, err := appendBSON(nil, wrapped)
	if err != nil {
		return bson.RawValue{}, err
	}
	return bson.Raw(d).Lookup("v"), nil
}

// stripConfluentHeader removes the Confluent wire format's header (magic byte 0, then a 4-byte
// big-endian schema id) from a JSON payload.
func stripConfluentHeader(b []byte) ([]byte, uint32, bool) {
	if len(b) < 5 || b[0] != 0 {
		return b, 0, false
	}
	return b[5:], binary.BigEndian.Uint32(b[1:5]), true
}

func utf8Valid(b []byte) bool { return utf8.Valid(b) }

// outputFormat is $emit's config.outputFormat and dateFormat.
type outputFormat struct {
	kind     formatKind
	isoDates bool
}

type formatKind int

const (
	relaxedJSON formatKind = iota
	canonicalJSON
	basicJSON
)

func (k formatKind) String() string {
	return [...]string{"relaxedJson", "canonicalJson", "basicJson"}[k]
}

func parseFormat(s string) (formatKind, error) {
	switch s {
	case "relaxedJson":
		return relaxedJSON, nil
	case "canonicalJson":
		return canonicalJSON, nil
	case "basicJson":
		return basicJSON, nil
	}
	return 0, fmt.Errorf("unknown output format %q", s)
}

// appendJSON appends the JSON text of doc in format f.
func appendJSON(dst []byte, doc bson.Raw, f outputFormat) ([]byte, error) {
	j, err := bson.MarshalExtJSON(doc, f.kind == canonicalJSON, false)
	if err != nil {
		return dst, err
	}
	return append(dst, j...), nil
}
