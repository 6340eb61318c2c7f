package kafka

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/ejson"
)

// appendBSON parses one JSON or Extended JSON document and appends its BSON to dst.
func appendBSON(dst, src []byte) ([]byte, error) { return ejson.AppendBSON(dst, src) }

// jsonValue parses a JSON value of any type (a key in keyFormat json).
func jsonValue(src []byte) (bson.RawValue, error) {
	wrapped := make([]byte, 0, len(src)+8)
	wrapped = append(append(append(wrapped, `{"v":`...), src...), '}')
	d, err := ejson.AppendBSON(nil, wrapped)
	if err != nil {
		return bson.RawValue{}, err
	}
	return bson.Raw(d).Lookup("v"), nil
}

// stripConfluentHeader removes the Confluent wire format's header (magic byte 0, then a 4-byte
// big-endian schema id) from a JSON payload.
func stripConfluentHeader(b []byte) ([]byte, uint32, bool) { return ejson.StripConfluentHeader(b) }

// appendJSON appends the JSON text of doc in the output format.
func appendJSON(dst []byte, doc bson.Raw, o ejson.Options) ([]byte, error) {
	return ejson.AppendJSON(dst, doc, o)
}
