package pipeline

import (
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func mustPlan(t *testing.T, stages ...bson.D) *Plan {
	t.Helper()
	arr := bson.A{bson.D{{Key: "$source", Value: bson.D{{Key: "connectionName", Value: "k"}}}}}
	for _, s := range stages {
		arr = append(arr, s)
	}
	_, b, err := bson.MarshalValue(arr)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(b, ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var countWindow = func(extra ...bson.E) bson.D {
	opts := bson.D{{Key: "interval", Value: bson.D{{Key: "size", Value: 10}, {Key: "unit", Value: "second"}}}}
	opts = append(opts, extra...)
	opts = append(opts, bson.E{Key: "pipeline", Value: bson.A{bson.D{{Key: "$group", Value: bson.D{{Key: "_id", Value: nil}, {Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}}}}}}})
	return bson.D{{Key: "$tumblingWindow", Value: opts}}
}

// After idleTimeout of processing time without input, the watermark moves on and the open
// window closes without a new document.
func TestIdleTimeoutClosesWindows(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	plan := mustPlan(t, countWindow(
		bson.E{Key: "allowedLateness", Value: 0},
		bson.E{Key: "idleTimeout", Value: bson.D{{Key: "size", Value: 5}, {Key: "unit", Value: "second"}}}))
	eng := NewEngine(plan, Options{Now: func() time.Time { return now }})
	if r := eng.Push([]Input{{Doc: mustDoc(bson.D{{Key: "a", Value: 1}}), Time: 1000}}); len(r.Out) != 0 {
		t.Fatalf("window closed early: %v", r.Out)
	}
	now = now.Add(3 * time.Second)
	if r := eng.Tick(); len(r.Out) != 0 {
		t.Fatalf("closed before the idle timeout: %v", r.Out)
	}
	now = now.Add(20 * time.Second)
	r := eng.Tick()
	if len(r.Out) != 1 {
		t.Fatalf("the idle window did not close: %v", r.Out)
	}
}

// Processing-time windows close on the clock, not on event time.
func TestProcessingTimeWindowsFollowTheClock(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 1, 0, time.UTC)
	plan := mustPlan(t, countWindow(bson.E{Key: "boundary", Value: "processingTime"}))
	eng := NewEngine(plan, Options{Now: func() time.Time { return now }})
	eng.Push([]Input{{Doc: mustDoc(bson.D{{Key: "a", Value: 1}}), Time: 0}, {Doc: mustDoc(bson.D{{Key: "a", Value: 2}}), Time: 999999999}})
	if r := eng.Tick(); len(r.Out) != 0 {
		t.Fatalf("closed before its end: %v", r.Out)
	}
	now = now.Add(10 * time.Second)
	r := eng.Tick()
	if len(r.Out) != 1 {
		t.Fatalf("want one window of two documents, got %v", r.Out)
	}
	if n := r.Out[0].Lookup("n").Int32(); n != 2 {
		t.Errorf("n = %d", n)
	}
}

// A snapshot that does not belong to the pipeline is refused.
func TestRestoreRejectsGarbage(t *testing.T) {
	eng := NewEngine(mustPlan(t, countWindow()), Options{})
	for _, bad := range [][]byte{nil, {1, 2, 3}, mustDoc(bson.D{{Key: "v", Value: int32(99)}})} {
		if err := eng.Restore(bad); err == nil {
			t.Errorf("restored %x", bad)
		}
	}
}
