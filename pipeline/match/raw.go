package match

import (
	"encoding/binary"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/value"
)

// isDocLike reports whether v is an embedded document or an array (mongod's isABSONObj).
func isDocLike(v bson.RawValue) bool {
	return v.Type == bson.TypeEmbeddedDocument || v.Type == bson.TypeArray
}

// count returns the number of elements of a document or array.
func count(doc []byte) int {
	n := 0
	it := value.NewIter(doc)
	for it.Next() {
		n++
	}
	return n
}

// strBytes returns the bytes of a string-like value without copying.
func strBytes(v bson.RawValue) ([]byte, bool) {
	d := v.Value
	if len(d) < 5 || int(binary.LittleEndian.Uint32(d)) != len(d)-4 {
		return nil, false
	}
	return d[4 : len(d)-1], true
}
