package pipeline

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func mustPlan(t *testing.T, stages ...bson.D) *Plan {
	t.Helper()
	return mustPlanFrom(t, bson.D{{Key: "connectionName", Value: "k"}}, stages...)
}

// mustPlanFrom is mustPlan with the $source options src.
func mustPlanFrom(t *testing.T, src bson.D, stages ...bson.D) *Plan {
	t.Helper()
	arr := bson.A{bson.D{{Key: "$source", Value: src}}}
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

// The engine reuses the buffers documents pass through (the stamped input, each stage's
// output): every output and every document a window keeps must own its bytes, and the
// caller's input documents are never written. Each pipeline here runs over many batches; every
// output is compared, after the last batch, with a copy taken as soon as it was made.
func TestOutputsOwnTheirBytes(t *testing.T) {
	stateless := []bson.D{
		{{Key: "$addFields", Value: bson.D{{Key: "twice", Value: bson.D{{Key: "$multiply", Value: bson.A{"$n", 2}}}}}}},
		{{Key: "$unwind", Value: bson.D{{Key: "path", Value: "$tags"}, {Key: "includeArrayIndex", Value: "i"}}}},
		{{Key: "$project", Value: bson.D{{Key: "n", Value: 1}, {Key: "twice", Value: 1}, {Key: "tags", Value: 1}, {Key: "i", Value: 1},
			{Key: "label", Value: bson.D{{Key: "$concat", Value: bson.A{"$tags", "-", bson.D{{Key: "$toString", Value: "$n"}}}}}}}}},
		{{Key: "$unset", Value: "i"}},
	}
	window := bson.D{{Key: "$tumblingWindow", Value: bson.D{
		{Key: "interval", Value: bson.D{{Key: "size", Value: 1}, {Key: "unit", Value: "second"}}},
		{Key: "allowedLateness", Value: 0},
		{Key: "pipeline", Value: bson.A{bson.D{{Key: "$sort", Value: bson.D{{Key: "n", Value: -1}}}}}},
	}}}
	input := func(i int) Input {
		doc, _ := bson.Marshal(bson.D{{Key: "n", Value: int32(i)}, {Key: "tags", Value: bson.A{"a", "bb", "ccc"}[:1+i%3]}})
		return Input{Doc: doc, Time: 1_767_225_600_000 + int64(i)*100}
	}
	for _, tc := range []struct {
		name   string
		stages []bson.D
	}{
		{"stateless", stateless},
		{"window of stateless documents", append(append([]bson.D{}, stateless...), window)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := mustPlan(t, tc.stages...)
			eng := NewEngine(plan, Options{ProcessorName: "p"})
			var ins []Input
			var got []bson.Raw
			for b := range 20 {
				var batch []Input
				for j := range 7 {
					batch = append(batch, input(b*7+j))
				}
				ins = append(ins, batch...)
				got = append(got, eng.Push(batch).Out...)
			}
			got = append(got, eng.Flush().Out...)
			// The same documents one at a time, each output copied as soon as it is made.
			ref := NewEngine(plan, Options{ProcessorName: "p"})
			var want []bson.Raw
			keep := func(r Result) {
				for _, o := range r.Out {
					want = append(want, bytes.Clone(o))
				}
			}
			for _, in := range ins {
				keep(ref.Push([]Input{in}))
			}
			keep(ref.Flush())
			if len(got) != len(want) || len(got) < len(ins) {
				t.Fatalf("%d outputs, want %d (from %d inputs)", len(got), len(want), len(ins))
			}
			for i := range got {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("output %d was overwritten:\n got %s\nwant %s", i, got[i], want[i])
				}
			}
			for i, in := range ins {
				if again := input(i); !bytes.Equal(in.Doc, again.Doc) {
					t.Fatalf("input %d was modified", i)
				}
			}
		})
	}
}

// A document whose bytes are not a BSON document becomes a dead letter; the engine goes on.
func TestMalformedInputIsADeadLetter(t *testing.T) {
	plan := mustPlan(t, bson.D{{Key: "$addFields", Value: bson.D{{Key: "b", Value: 1}}}})
	eng := NewEngine(plan, Options{ProcessorName: "p"})
	good, _ := bson.Marshal(bson.D{{Key: "a", Value: 1}})
	long := append(bytes.Clone(good), 0)
	unterminated := bytes.Clone(good)
	unterminated[len(unterminated)-1] = 1
	// A nested document whose string lacks its NUL: the frame is right, the inside is not.
	nested, _ := bson.Marshal(bson.D{{Key: "o", Value: bson.D{{Key: "s", Value: "xy"}}}})
	nested[len(nested)-3] = 'z'
	r := eng.Push([]Input{{Doc: nil}, {Doc: good[:4]}, {Doc: long}, {Doc: unterminated}, {Doc: nested},
		{Doc: good, Meta: []byte{1, 2}}, {Doc: good}})
	if len(r.Out) != 1 || len(r.DLQ) != 6 {
		t.Fatalf("%d outputs and %d dead letters, want 1 and 6", len(r.Out), len(r.DLQ))
	}
	for _, d := range r.DLQ {
		if err := d.Validate(); err != nil {
			t.Fatalf("dead letter is not valid BSON: %v", err)
		}
		op, _ := d.Lookup("operatorName").StringValueOK()
		reason, _ := d.Lookup("errInfo", "reason").StringValueOK()
		if op != "$source" || !strings.Contains(reason, "not valid BSON") {
			t.Errorf("dead letter %s: %q", op, reason)
		}
	}
}

// An input marked Checked (built by the source, well-formed by construction) gives the same
// output as the same input checked by the engine, with or without the time field already in
// it; the engine's own check still catches a malformed document that is not marked.
func TestCheckedInputs(t *testing.T) {
	plan := mustPlan(t, bson.D{{Key: "$addFields", Value: bson.D{{Key: "b", Value: bson.D{{Key: "$add", Value: bson.A{"$a", 1}}}}}}})
	meta := mustDoc(bson.D{{Key: "source", Value: bson.D{{Key: "type", Value: "kafka"}, {Key: "offset", Value: int64(7)}}}})
	docs := []bson.Raw{mustDoc(bson.D{{Key: "a", Value: 1}}), mustDoc(bson.D{{Key: "a", Value: 2}, {Key: "_ts", Value: "replaced"}})}
	run := func(checked bool) []bson.Raw {
		eng := NewEngine(plan, Options{ProcessorName: "p"})
		var ins []Input
		for _, d := range docs {
			ins = append(ins, Input{Doc: d, Meta: meta, Time: 1_767_225_600_000, Checked: checked})
		}
		r := eng.Push(ins)
		if len(r.DLQ) != 0 {
			t.Fatalf("dead letters: %v", r.DLQ)
		}
		return r.Out
	}
	checked, unchecked := run(true), run(false)
	if len(checked) != 2 || len(unchecked) != 2 {
		t.Fatalf("%d and %d outputs", len(checked), len(unchecked))
	}
	for i := range checked {
		if !bytes.Equal(checked[i], unchecked[i]) {
			t.Fatalf("output %d: checked %s, unchecked %s", i, checked[i], unchecked[i])
		}
		if ts := checked[i].Lookup("_ts"); ts.Type != bson.TypeDateTime || ts.DateTime() != 1_767_225_600_000 {
			t.Fatalf("output %d: _ts %v", i, ts)
		}
	}
	bad := bytes.Clone(docs[0])
	bad[len(bad)-1] = 1
	if r := NewEngine(plan, Options{}).Push([]Input{{Doc: bad}}); len(r.DLQ) != 1 {
		t.Fatalf("an unchecked malformed document: %d dead letters", len(r.DLQ))
	}
}

// Announced partitions hold the watermark back until they send a record or go idle, so a
// backlog read one partition ahead of another leaves the other's records on time.
func TestAnnouncedPartitionsHoldTheWatermark(t *testing.T) {
	plan := mustPlan(t, countWindow(bson.E{Key: "allowedLateness", Value: 0}))
	eng := NewEngine(plan, Options{})
	eng.AddPartitions([]int32{0, 1})
	doc := mustDoc(bson.D{{Key: "a", Value: 1}})
	// Partition 0 runs 30 s ahead: nothing closes while partition 1 has sent nothing.
	if r := eng.Push([]Input{{Doc: doc, Time: 1_000, Partition: 0}, {Doc: doc, Time: 31_000, Partition: 0}}); len(r.Out)+len(r.DLQ) != 0 {
		t.Fatalf("closed while partition 1 was silent: %v %v", r.Out, r.DLQ)
	}
	// Partition 1's record at 2 s is on time, and the watermark is now 2 s.
	if r := eng.Push([]Input{{Doc: doc, Time: 2_000, Partition: 1}}); len(r.Out)+len(r.DLQ) != 0 {
		t.Fatalf("partition 1's record: %v %v", r.Out, r.DLQ)
	}
	// Partition 1 goes idle: the watermark follows partition 0 and [0, 10 s) closes with 2.
	r := eng.Idle(1)
	if len(r.Out) != 1 || r.Out[0].Lookup("n").Int32() != 2 {
		t.Fatalf("after idle: %v", r.Out)
	}
}

// Nothing the engine keeps refers to its inputs' bytes, documents or metadata: a source may
// reuse them once Push returns (connectors.Batch.Release). Here every batch's bytes are
// overwritten right after Push, and the results must equal those of untouched inputs.
func TestInputsMayBeReusedAfterPush(t *testing.T) {
	stages := []bson.D{
		{{Key: "$addFields", Value: bson.D{{Key: "topic", Value: bson.D{{Key: "$meta", Value: "stream.source.topic"}}}}}},
		{{Key: "$tumblingWindow", Value: bson.D{
			{Key: "interval", Value: bson.D{{Key: "size", Value: 1}, {Key: "unit", Value: "second"}}},
			{Key: "allowedLateness", Value: 0},
			{Key: "pipeline", Value: bson.A{
				bson.D{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$k"}, {Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}},
					{Key: "topics", Value: bson.D{{Key: "$addToSet", Value: "$topic"}}}, {Key: "first", Value: bson.D{{Key: "$first", Value: "$$ROOT"}}}}}},
				bson.D{{Key: "$sort", Value: bson.D{{Key: "_id", Value: 1}}}},
			}},
		}}},
	}
	// A window that keeps whole documents ($sort) and reads their metadata after the batch.
	sorted := []bson.D{
		{{Key: "$tumblingWindow", Value: bson.D{
			{Key: "interval", Value: bson.D{{Key: "size", Value: 1}, {Key: "unit", Value: "second"}}},
			{Key: "allowedLateness", Value: 0},
			{Key: "pipeline", Value: bson.A{
				bson.D{{Key: "$sort", Value: bson.D{{Key: "v", Value: 1}}}},
				bson.D{{Key: "$addFields", Value: bson.D{{Key: "topic", Value: bson.D{{Key: "$meta", Value: "stream.source.topic"}}}}}},
			}},
		}}},
	}
	batch := func(b int) ([]Input, []byte) {
		buf := make([]byte, 0, 1<<14) // one array for the batch, so overwriting it reaches every input
		var ins []Input
		for j := range 9 {
			i := b*9 + j
			start := len(buf)
			d, _ := bson.Marshal(bson.D{{Key: "k", Value: int32(i % 4)}, {Key: "v", Value: fmt.Sprint("value-", i)}})
			buf = append(buf, d...)
			mid := len(buf)
			m, _ := bson.Marshal(bson.D{{Key: "source", Value: bson.D{{Key: "type", Value: "kafka"}, {Key: "topic", Value: fmt.Sprint("t", i%3)}}}})
			buf = append(buf, m...)
			ins = append(ins, Input{Doc: buf[start:mid:mid], Meta: buf[mid:len(buf):len(buf)], Time: 1_767_225_600_000 + int64(i)*150, Partition: int32(i % 2)})
		}
		return ins, buf
	}
	run := func(stages []bson.D, overwrite bool) []bson.Raw {
		eng := NewEngine(mustPlan(t, stages...), Options{ProcessorName: "p", Now: func() time.Time { return time.Unix(0, 0) }})
		var out []bson.Raw
		keep := func(r Result) {
			for _, o := range r.Out {
				out = append(out, bytes.Clone(o))
			}
		}
		for b := range 11 { // the last window stays open
			ins, buf := batch(b)
			keep(eng.Push(ins))
			if overwrite {
				for i := range buf {
					buf[i] = 0xEE
				}
			}
		}
		// A checkpoint taken now holds the open windows' documents, metadata included.
		snap, err := eng.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, snap)
		keep(eng.Flush())
		return out
	}
	for _, st := range [][]bson.D{stages, sorted} {
		got, want := run(st, true), run(st, false)
		if len(got) != len(want) || len(want) == 0 {
			t.Fatalf("%d results, want %d", len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("result %d depends on a reused input:\n got %s\nwant %s", i, got[i], want[i])
			}
		}
	}
}

// TestStreamMetaFieldOnce: outputs carry the stream metadata field exactly once, holding the
// source's metadata, whether the input, a stage or the time field already had that name. A
// checked input lets the engine skip looking for the field in outputs (Doc.metaFree); an
// unchecked one is always looked at, and both must give the same bytes.
func TestStreamMetaFieldOnce(t *testing.T) {
	meta := mustDoc(bson.D{{Key: "source", Value: bson.D{{Key: "type", Value: "kafka"}, {Key: "offset", Value: int64(7)}}}})
	plan := func(tsFieldName string, stages ...bson.D) *Plan {
		src := bson.D{{Key: "connectionName", Value: "k"}}
		if tsFieldName != "" {
			src = append(src, bson.E{Key: "tsFieldName", Value: tsFieldName})
		}
		return mustPlanFrom(t, src, stages...)
	}
	cases := []struct {
		name      string
		plan      *Plan
		metaField string
	}{
		{"addFields", plan("", bson.D{{Key: "$addFields", Value: bson.D{{Key: "b", Value: 1}}}}), ""},
		{"addFields sets it", plan("", bson.D{{Key: "$addFields", Value: bson.D{{Key: "_stream_meta", Value: "user"}}}}), ""},
		{"addFields sets it nested", plan("", bson.D{{Key: "$match", Value: bson.D{}}}, bson.D{{Key: "$addFields", Value: bson.D{{Key: "_stream_meta.x", Value: 1}}}}), ""},
		{"renamed", plan("", bson.D{{Key: "$addFields", Value: bson.D{{Key: "m", Value: "x"}}}}), "m"},
		{"renamed, other name set", plan("", bson.D{{Key: "$addFields", Value: bson.D{{Key: "_stream_meta", Value: "x"}}}}), "m"},
		{"time field of that name", plan("_stream_meta", bson.D{{Key: "$match", Value: bson.D{}}}), ""},
		{"replaceRoot", plan("", bson.D{{Key: "$replaceRoot", Value: bson.D{{Key: "newRoot", Value: bson.D{{Key: "a", Value: 1}, {Key: "_stream_meta", Value: 2}}}}}}), ""},
		{"no stages", plan(""), ""},
	}
	inputs := []bson.Raw{
		mustDoc(bson.D{{Key: "a", Value: 1}}),
		mustDoc(bson.D{{Key: "_stream_meta", Value: "in"}, {Key: "a", Value: 1}}),
		mustDoc(bson.D{{Key: "a", Value: 1}, {Key: "m", Value: "in"}, {Key: "_stream_meta", Value: bson.D{{Key: "z", Value: 1}}}}),
	}
	for _, c := range cases {
		field := c.metaField
		if field == "" {
			field = "_stream_meta"
		}
		run := func(checked bool) []bson.Raw {
			eng := NewEngine(c.plan, Options{ProcessorName: "p", StreamMetaField: c.metaField})
			var ins []Input
			for _, d := range inputs {
				ins = append(ins, Input{Doc: d, Meta: meta, Time: 1_767_225_600_000, Checked: checked})
			}
			r := eng.Push(ins)
			if len(r.DLQ) != 0 || len(r.Out) != len(inputs) {
				t.Fatalf("%s: %d outputs, dead letters %v", c.name, len(r.Out), r.DLQ)
			}
			return r.Out
		}
		checked, unchecked := run(true), run(false)
		for i, out := range checked {
			if !bytes.Equal(out, unchecked[i]) {
				t.Fatalf("%s, input %d: checked %s, unchecked %s", c.name, i, out, unchecked[i])
			}
			n := 0
			elems, _ := out.Elements()
			for _, e := range elems {
				if e.Key() == field {
					n++
					if v, ok := e.Value().DocumentOK(); !ok || !bytes.Equal(v, meta) {
						t.Fatalf("%s, input %d: %s is %v, not the source's metadata", c.name, i, field, e.Value())
					}
				}
			}
			if n != 1 {
				t.Fatalf("%s, input %d: %d fields %s in %s", c.name, i, n, field, out)
			}
		}
	}
}

// TestStampInPlace: a source that leaves room after its documents (Input.Room) gets the time
// field stamped there, with the same outputs as a copy, and nothing written past the room;
// with too little room, or a time field already in the document, the engine copies.
func TestStampInPlace(t *testing.T) {
	plan := mustPlan(t, bson.D{{Key: "$addFields", Value: bson.D{{Key: "b", Value: bson.D{{Key: "$add", Value: bson.A{"$a", 1}}}}}}})
	meta := mustDoc(bson.D{{Key: "source", Value: bson.D{{Key: "type", Value: "kafka"}}}})
	docs := []bson.Raw{mustDoc(bson.D{{Key: "a", Value: 1}}), mustDoc(bson.D{{Key: "a", Value: 2}, {Key: "_ts", Value: "replaced"}})}
	const guard = 16
	for _, room := range []int{0, 12, 13, 32} {
		run := func(inPlace bool) ([]bson.Raw, [][]byte) {
			eng := NewEngine(plan, Options{ProcessorName: "p"})
			var ins []Input
			var arrays [][]byte
			for _, d := range docs {
				arr := append(append([]byte(nil), d...), bytes.Repeat([]byte{0xee}, room+guard)...)
				arrays = append(arrays, arr)
				ins = append(ins, Input{Doc: arr[: len(d) : len(d)+room], Meta: meta, Time: 1_767_225_600_000, Checked: true, Room: inPlace})
			}
			r := eng.Push(ins)
			if len(r.DLQ) != 0 || len(r.Out) != len(docs) {
				t.Fatalf("room %d: %d outputs, dead letters %v", room, len(r.Out), r.DLQ)
			}
			return r.Out, arrays
		}
		copied, _ := run(false)
		stamped, arrays := run(true)
		for i := range docs {
			if !bytes.Equal(copied[i], stamped[i]) {
				t.Fatalf("room %d, input %d: in place %s, copied %s", room, i, stamped[i], copied[i])
			}
			if g := arrays[i][len(docs[i])+room:]; !bytes.Equal(g, bytes.Repeat([]byte{0xee}, guard)) {
				t.Fatalf("room %d, input %d: bytes past the room were written: %x", room, i, g)
			}
		}
		// 13 more bytes hold "_ts" as a date: type, key, NUL and eight bytes, and the document's NUL
		// moves to the end.
		if written := !bytes.Equal(arrays[0][len(docs[0]):len(docs[0])+room], bytes.Repeat([]byte{0xee}, room)); written != (room >= 13) {
			t.Fatalf("room %d: stamped in place %v", room, written)
		}
	}
}

// TestResultRecycle: a result's outputs live in chunks no other result shares, so one result's
// outputs stay as they were while later calls write theirs; once recycled, its memory serves
// later outputs, which are as they would have been in fresh memory.
func TestResultRecycle(t *testing.T) {
	plan := mustPlan(t, bson.D{{Key: "$addFields", Value: bson.D{{Key: "b", Value: bson.D{{Key: "$add", Value: bson.A{"$a", 1}}}}}}})
	meta := mustDoc(bson.D{{Key: "source", Value: bson.D{{Key: "type", Value: "kafka"}}}})
	batch := func(from int) []Input {
		var ins []Input
		for i := from; i < from+200; i++ {
			ins = append(ins, Input{Doc: mustDoc(bson.D{{Key: "a", Value: i}, {Key: "pad", Value: strings.Repeat("x", 300)}}), Meta: meta, Time: 1_767_225_600_000})
		}
		return ins
	}
	clone := func(out []bson.Raw) (c []bson.Raw) {
		for _, d := range out {
			c = append(c, bytes.Clone(d))
		}
		return c
	}
	eng, ref := NewEngine(plan, Options{}), NewEngine(plan, Options{})
	r1 := eng.Push(batch(0))
	want1 := clone(r1.Out)
	r2 := eng.Push(batch(200))
	want2 := clone(r2.Out)
	for i := range want1 {
		if !bytes.Equal(r1.Out[i], want1[i]) {
			t.Fatalf("output %d of the first result changed under the second", i)
		}
	}
	if len(r1.chunks) == 0 || len(r2.chunks) == 0 {
		t.Fatalf("outputs carved from %d and %d chunks", len(r1.chunks), len(r2.chunks))
	}
	first := &r1.chunks[0][0]
	r1.Recycle()
	if r1.Out != nil {
		t.Fatal("a recycled result keeps its outputs")
	}
	var merged Result
	merged.Merge(eng.Push(batch(400)))
	merged.Merge(eng.Idle(0))
	ref.Push(batch(0))
	ref.Push(batch(200))
	want3 := ref.Push(batch(400)).Out
	if len(merged.Out) != len(want3) {
		t.Fatalf("%d outputs, want %d", len(merged.Out), len(want3))
	}
	for i := range want3 {
		if !bytes.Equal(merged.Out[i], want3[i]) {
			t.Fatalf("output %d in recycled memory: %s, want %s", i, merged.Out[i], want3[i])
		}
	}
	for i := range want2 {
		if !bytes.Equal(r2.Out[i], want2[i]) {
			t.Fatalf("output %d of the second result changed when the first was recycled", i)
		}
	}
	reused := false
	for _, c := range merged.chunks {
		reused = reused || &c[0] == first
	}
	if !reused {
		t.Fatal("the recycled chunks were not used again")
	}
}
