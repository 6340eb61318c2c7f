package pipeline

import "go.mongodb.org/mongo-driver/v2/bson"

// ThrottleStage is $throttle. The engine passes documents through; the processor runtime
// reads the limits and applies backpressure with token buckets.
type ThrottleStage struct {
	BytesPerSec    int64
	MessagesPerSec int64
}

func parseThrottle(spec bson.RawValue) (Stage, error) {
	doc, ok := spec.DocumentOK()
	if !ok {
		return nil, errf("$throttle", "", "takes {bytesPerSec, messagesPerSec}, not %s", typeName(spec))
	}
	if err := checkFields("$throttle", "", doc, "bytesPerSec", "messagesPerSec"); err != nil {
		return nil, err
	}
	s := &ThrottleStage{}
	for _, f := range []struct {
		name string
		dst  *int64
	}{{"bytesPerSec", &s.BytesPerSec}, {"messagesPerSec", &s.MessagesPerSec}} {
		v, err := doc.LookupErr(f.name)
		if err != nil {
			continue
		}
		n, err2 := intField("$throttle", f.name, v)
		if err2 != nil {
			return nil, err2
		}
		if n < 1 {
			return nil, errf("$throttle", f.name, "must be at least 1, not %d", n)
		}
		*f.dst = n
	}
	if s.BytesPerSec == 0 && s.MessagesPerSec == 0 {
		return nil, errf("$throttle", "", "requires at least one of 'bytesPerSec' or 'messagesPerSec'")
	}
	return s, nil
}

// Name implements Stage.
func (s *ThrottleStage) Name() string { return "$throttle" }

// Process implements Stage: documents pass unchanged.
func (s *ThrottleStage) Process(d *Doc, _ *[]byte, emit func(*Doc)) error {
	emit(d)
	return nil
}
