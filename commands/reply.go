package commands

import (
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// Reply builds a reply document in place, as raw BSON, straight into the connection's output
// buffer. Handlers append their fields; the dispatcher adds ok and closes the document.
type Reply struct {
	b     []byte
	start int32
	open  []int32 // starts of nested documents and arrays not yet closed
}

func startReply(dst []byte) *Reply {
	r := &Reply{}
	r.start, r.b = bsoncore.AppendDocumentStart(dst)
	return r
}

func (r *Reply) end() []byte {
	for len(r.open) > 0 {
		r.EndDoc()
	}
	r.b, _ = bsoncore.AppendDocumentEnd(r.b, r.start)
	return r.b
}

// String appends a string field.
func (r *Reply) String(key, v string) { r.b = bsoncore.AppendStringElement(r.b, key, v) }

// Int32 appends an int32 field.
func (r *Reply) Int32(key string, v int32) { r.b = bsoncore.AppendInt32Element(r.b, key, v) }

// Int64 appends an int64 field.
func (r *Reply) Int64(key string, v int64) { r.b = bsoncore.AppendInt64Element(r.b, key, v) }

// Double appends a double field.
func (r *Reply) Double(key string, v float64) { r.b = bsoncore.AppendDoubleElement(r.b, key, v) }

// Bool appends a boolean field.
func (r *Reply) Bool(key string, v bool) { r.b = bsoncore.AppendBooleanElement(r.b, key, v) }

// Time appends a UTC datetime field with millisecond precision.
func (r *Reply) Time(key string, t time.Time) {
	r.b = bsoncore.AppendDateTimeElement(r.b, key, t.UnixMilli())
}

// Document appends an embedded document given as raw BSON.
func (r *Reply) Document(key string, doc []byte) {
	r.b = bsoncore.AppendDocumentElement(r.b, key, doc)
}

// RawArray appends an array given as raw BSON.
func (r *Reply) RawArray(key string, arr []byte) {
	r.b = bsoncore.AppendArrayElement(r.b, key, arr)
}

// Value appends any BSON value.
func (r *Reply) Value(key string, v bson.RawValue) {
	r.b = bsoncore.AppendValueElement(r.b, key, bsoncore.Value{Type: bsoncore.Type(v.Type), Data: v.Value})
}

// Binary appends a generic (subtype 0) binary field.
func (r *Reply) Binary(key string, data []byte) {
	r.b = bsoncore.AppendBinaryElement(r.b, key, 0, data)
}

// ObjectID appends an ObjectId field.
func (r *Reply) ObjectID(key string, id bson.ObjectID) {
	r.b = bsoncore.AppendObjectIDElement(r.b, key, id)
}

// Strings appends an array of strings.
func (r *Reply) Strings(key string, vs []string) {
	r.Array(key)
	for i, v := range vs {
		r.String(arrayKey(i), v)
	}
	r.EndDoc()
}

// Doc opens an embedded document; close it with EndDoc.
func (r *Reply) Doc(key string) {
	var idx int32
	idx, r.b = bsoncore.AppendDocumentElementStart(r.b, key)
	r.open = append(r.open, idx)
}

// Array opens an array; its elements' keys are "0", "1", ... (see arrayKey). Close it with EndDoc.
func (r *Reply) Array(key string) {
	var idx int32
	idx, r.b = bsoncore.AppendArrayElementStart(r.b, key)
	r.open = append(r.open, idx)
}

// EndDoc closes the innermost open document or array.
func (r *Reply) EndDoc() {
	idx := r.open[len(r.open)-1]
	r.open = r.open[:len(r.open)-1]
	r.b, _ = bsoncore.AppendDocumentEnd(r.b, idx)
}

// arrayKey is the key of the i-th array element.
func arrayKey(i int) string { return strconv.Itoa(i) }
