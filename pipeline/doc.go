// Package pipeline turns a stream processor's pipeline into an executable plan and runs
// documents through it: placement rules and option checks, the stages of Atlas Stream
// Processing, event-time windows and dead-letter records. It knows nothing of the wire, Kafka
// or MongoDB: sources and sinks are parsed into descriptions that connectors implement.
package pipeline

import (
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/expr"
)

// Doc is one document on its way through the pipeline. Documents stay raw BSON; operators
// decode only what they need. A stage that transforms a document updates the Doc it was given
// and passes it on: nothing upstream keeps it (the engine copies documents a window shares
// before changing them).
type Doc struct {
	// Raw is the document.
	Raw bson.Raw
	// Meta is the stream metadata document ({source: {...}, window: {...}, and what
	// $setStreamMeta adds}); it is what {$meta: "stream..."} reads. May be nil.
	Meta bson.Raw
	// Time is the event time in milliseconds since the Unix epoch.
	Time int64

	// env is reused for every expression evaluated on this document.
	env expr.Env

	// metaField is the engine's stream metadata field (Options.StreamMetaField), and metaFree
	// the one document known to have no top-level field of that name: what emitOut would
	// otherwise look for in every output. The engine sets it at ingest; a stage that derives
	// its output from d.Raw without adding that name passes it on (keepMetaFree); any other
	// new d.Raw is no longer the same slice, and is looked at again.
	metaField string
	metaFree  []byte
}

// isMetaFree reports that d.Raw is known to have no top-level field named d.metaField.
func (d *Doc) isMetaFree() bool {
	return len(d.Raw) > 0 && len(d.metaFree) == len(d.Raw) && &d.metaFree[0] == &d.Raw[0]
}

// keepMetaFree records that out, derived from d.Raw without setting the top-level field
// d.metaField unless set says so, is as free of it as d.Raw was.
func (d *Doc) keepMetaFree(out []byte, set func(name string) bool) {
	if d.isMetaFree() && !set(d.metaField) {
		d.metaFree = out
		return
	}
	d.metaFree = nil
}

// Duration is a {size, unit} option such as interval, gap or allowedLateness.
type Duration struct {
	Size int64
	Unit string
}

// Millis is the duration in milliseconds.
func (d Duration) Millis() int64 { return d.Size * unitMillis[d.Unit] }

var unitMillis = map[string]int64{
	"ms": 1, "millisecond": 1, "second": 1000, "minute": 60_000, "hour": 3_600_000, "day": 86_400_000,
}

// parseDuration reads {size: <int>, unit: "ms|second|minute|hour|day"}; zero says whether 0
// (the number) is accepted as "disabled", as idleTimeout and allowedLateness accept it.
func parseDuration(stage, field string, v bson.RawValue, allowZero bool) (Duration, error) {
	if allowZero && isZero(v) {
		return Duration{}, nil
	}
	doc, ok := v.DocumentOK()
	if !ok {
		return Duration{}, errf(stage, field, "must be {size: <int>, unit: \"ms|second|minute|hour|day\"}, not %s", typeName(v))
	}
	var d Duration
	if err := checkFields(stage, field, doc, "size", "unit"); err != nil {
		return d, err
	}
	size, err := intField(stage, field+".size", doc.Lookup("size"))
	if err != nil {
		return d, err
	}
	if size < 0 || (size == 0 && !allowZero) {
		return d, errf(stage, field+".size", "must be a positive integer, not %d", size)
	}
	unit, ok := doc.Lookup("unit").StringValueOK()
	if !ok {
		return d, errf(stage, field+".unit", "is required and must be one of ms, second, minute, hour, day")
	}
	if _, known := unitMillis[unit]; !known {
		return d, errf(stage, field+".unit", "%q must be one of ms, second, minute, hour, day", unit)
	}
	d.Size, d.Unit = size, unit
	return d, nil
}

func isZero(v bson.RawValue) bool {
	switch v.Type {
	case bson.TypeInt32:
		return v.Int32() == 0
	case bson.TypeInt64:
		return v.Int64() == 0
	case bson.TypeDouble:
		return v.Double() == 0
	}
	return false
}

// intField reads an integral number (int32, int64 or a whole double).
func intField(stage, field string, v bson.RawValue) (int64, error) {
	switch v.Type {
	case bson.TypeInt32:
		return int64(v.Int32()), nil
	case bson.TypeInt64:
		return v.Int64(), nil
	case bson.TypeDouble:
		f := v.Double()
		if f == float64(int64(f)) {
			return int64(f), nil
		}
	case 0:
		return 0, errf(stage, field, "is required")
	}
	return 0, errf(stage, field, "must be an integer, not %s", typeName(v))
}

// checkFields rejects fields of doc that are not in allowed.
func checkFields(stage, prefix string, doc bson.Raw, allowed ...string) error {
	elems, err := doc.Elements()
	if err != nil {
		return errf(stage, prefix, "is not a valid document")
	}
	for _, e := range elems {
		known := false
		for _, a := range allowed {
			if e.Key() == a {
				known = true
				break
			}
		}
		if !known {
			return errf(stage, join(prefix, e.Key()), "is not a known option")
		}
	}
	return nil
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

func typeName(v bson.RawValue) string {
	if v.Type == 0 {
		return "missing"
	}
	switch v.Type {
	case bson.TypeEmbeddedDocument:
		return "object"
	case bson.TypeInt32:
		return "int"
	case bson.TypeInt64:
		return "long"
	case bson.TypeBoolean:
		return "bool"
	}
	return v.Type.String()
}

// ParseError is an invalid pipeline: it names the stage, the field and the reason.
type ParseError struct {
	// Index is the stage's position in its pipeline (-1 for the pipeline as a whole).
	Index int
	Stage string
	Field string
	Msg   string
}

func (e *ParseError) Error() string {
	switch {
	case e.Stage == "":
		return e.Msg
	case e.Field == "":
		return fmt.Sprintf("%s: %s", e.Stage, e.Msg)
	}
	return fmt.Sprintf("%s.%s %s", e.Stage, e.Field, e.Msg)
}

func errf(stage, field, format string, args ...any) *ParseError {
	return &ParseError{Index: -1, Stage: stage, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// msToTime converts event-time milliseconds to a UTC time.
func msToTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
