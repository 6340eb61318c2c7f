package e2e

import (
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// windowPipeline is a tumbling window of 100 ms over the seeded sample source at a high rate,
// grouped by group_id, to __testLog. allowedLateness 0 closes each window as soon as the event
// time passes its end, so the run produces ten windows per second of event time.
func windowPipeline(rate, seed int) bson.A {
	window := bson.D{{Key: "$tumblingWindow", Value: bson.D{
		{Key: "interval", Value: bson.D{{Key: "size", Value: 100}, {Key: "unit", Value: "ms"}}},
		{Key: "allowedLateness", Value: bson.D{{Key: "size", Value: 0}, {Key: "unit", Value: "second"}}},
		{Key: "pipeline", Value: bson.A{bson.D{{Key: "$group", Value: bson.D{
			{Key: "_id", Value: "$group_id"}, {Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}},
			{Key: "watts", Value: bson.D{{Key: "$sum", Value: "$obs.watts"}}}}}}}},
	}}}
	return bson.A{solarSourceD(rate, seed), window, emitD("__testLog")}
}

// windowSet is window results by (window start, group), each with its document.
type windowSet map[[2]string]string

func (w windowSet) add(t *testing.T, docs []logDoc) {
	t.Helper()
	for _, d := range docs {
		start, id := windowKey(t, d.Doc)
		k := [2]string{start, id}
		if prev, ok := w[k]; ok && prev != d.Doc {
			t.Errorf("window %v was output twice with different results:\n%s\n%s", k, prev, d.Doc)
		}
		w[k] = d.Doc
	}
}

// starts lists the distinct window starts, in order.
func (w windowSet) starts() []string {
	var out []string
	for k := range w {
		out = append(out, k[0])
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// kill -9 in the middle of a windowed processor (issue 9, acceptance 3). The processor is
// STARTED again after the restart and resumes from its last checkpoint: the combined output
// equals an uninterrupted run's, and the only repeats are windows output after the last
// checkpoint committed before the kill. After SIGTERM and a restart nothing repeats at all.
//
// The reference is a second spid running the same processor (same seed and rate, so the same
// documents with the same event times) without interruption, rather than the windows
// recomputed in the test: that would copy the generator into the test, and the point is to
// compare the runtime against itself with and without a crash. The checkpoints are spid's own
// log lines ("checkpoint committed"), written by the sink's goroutine after the outputs
// before the barrier, so their order in the log against the __testLog lines is exact.
func TestProcessorSurvivesKill9(t *testing.T) {
	t.Parallel()
	const name = "windows"
	args := []string{"--checkpoint-interval", "200ms", "--log-level", "debug"}
	dir := t.TempDir()
	s1 := startSpidIn(t, dir, args...)
	ref := startSpid(t, "--checkpoint-interval", "200ms")
	for _, s := range []*spid{s1, ref} {
		c := connectGo(t, s.Admin(t, "", ""))
		mustAdmin(t, c, bson.D{{Key: "createStreamProcessor", Value: name}, {Key: "pipeline", Value: windowPipeline(5000, 42)}})
		mustAdmin(t, c, bson.D{{Key: "startStreamProcessor", Value: name}})
	}
	outputs := func(s *spid) windowSet {
		w := windowSet{}
		w.add(t, testLogOutputs(t, s.Stderr.String(), name))
		return w
	}
	// Kill when windows have been output since the last checkpoint, so that the restart has
	// something to repeat (unless a checkpoint slips in before the signal).
	cpLine := `msg="checkpoint committed" workspace=default processor=` + name + " "
	waitUntil(t, "ten windows before the kill, some after a checkpoint", func() bool {
		log := s1.Stderr.String()
		cp := strings.LastIndex(log, cpLine)
		return len(outputs(s1).starts()) >= 10 && cp >= 0 && strings.Count(log[cp:], "msg=__testLog") >= 10
	})
	s1.Kill(t)

	// What the last checkpoint before the kill covers: every output logged before its line.
	log1 := s1.Stderr.String()
	before := testLogOutputs(t, log1, name)
	// The checkpoint is committed on its own goroutine while the sink goes on writing: what it
	// covers is what the sink logged before its barrier line ("checkpoint barrier flushed",
	// debug level), for the id of the last "checkpoint committed" line.
	lines := strings.Split(log1, "\n")
	lastID := ""
	for _, l := range lines {
		if strings.Contains(l, cpLine) {
			if i := strings.Index(l, " checkpoint="); i >= 0 {
				lastID = strings.Fields(l[i+1:])[0]
			}
		}
	}
	lastCP := -1
	barrierLine := `msg="checkpoint barrier flushed" workspace=default processor=` + name + " " + lastID
	for i, l := range lines {
		if lastID != "" && strings.Contains(l+" ", barrierLine+" ") {
			lastCP = i
		}
	}
	if lastCP < 0 {
		t.Fatalf("no barrier line for the last committed checkpoint (%q)", lastID)
	}
	covered := windowSet{}
	for _, d := range before {
		if d.Line < lastCP {
			covered.add(t, []logDoc{d})
		}
	}
	pre := windowSet{}
	pre.add(t, before)
	preStarts := pre.starts()

	s2 := startSpidIn(t, dir, args...)
	c2 := connectGo(t, s2.Admin(t, "", ""))
	if state, _, msg := processorState(t, c2, name); state != "STARTED" {
		t.Fatalf("after kill -9 and restart the processor is %s (%s), want STARTED", state, msg)
	}
	waitUntil(t, "spid to log resuming the processor", func() bool {
		return strings.Contains(s2.Stderr.String(), `msg="resuming processor from its last checkpoint" workspace=default processor=`+name)
	})
	lastPre := preStarts[len(preStarts)-1]
	waitUntil(t, "ten windows after the restart", func() bool {
		st := outputs(s2).starts()
		return len(st) > 0 && len(st) >= 10 && st[len(st)-10] > lastPre
	})
	mid := outputs(s2)
	repeats := 0
	for k, doc := range mid {
		if _, ok := covered[k]; ok {
			t.Errorf("window %v was checkpointed before the kill and output again after it", k)
		}
		if prev, ok := pre[k]; ok {
			repeats++
			if prev != doc {
				t.Errorf("window %v differs after the restart:\n%s\n%s", k, prev, doc)
			}
		}
	}
	midStarts := mid.starts()
	if midStarts[0] > lastPre {
		// The restart may begin at the next window only if every window before it was
		// complete before the kill, which the comparison with the reference checks.
		t.Logf("no window repeated: the restart began at %s after %s", midStarts[0], lastPre)
	}

	// SIGTERM takes a final checkpoint: the next run repeats nothing.
	s2.Stop(t)
	s3 := startSpidIn(t, dir, args...)
	c3 := connectGo(t, s3.Admin(t, "", ""))
	if state, _, msg := processorState(t, c3, name); state != "STARTED" {
		t.Fatalf("after SIGTERM and restart the processor is %s (%s), want STARTED", state, msg)
	}
	lastMid := midStarts[len(midStarts)-1]
	waitUntil(t, "five windows after the second restart", func() bool {
		st := outputs(s3).starts()
		return len(st) >= 5 && st[len(st)-5] > lastMid
	})
	mid = outputs(s2) // everything s2 wrote before it exited
	post := outputs(s3)
	for k := range post {
		if _, ok := mid[k]; ok {
			t.Errorf("window %v was output before SIGTERM and again after the restart", k)
		}
	}

	// The union of the three runs equals the uninterrupted reference, window by window, up to
	// the last window the crash runs completed: no gap, nothing extra.
	all := windowSet{}
	for _, w := range []windowSet{pre, mid, post} {
		for k, v := range w {
			all[k] = v
		}
	}
	allStarts := all.starts()
	last := allStarts[len(allStarts)-1] // possibly incomplete in the log: not compared
	waitUntil(t, "the reference to pass the crash runs", func() bool {
		st := outputs(ref).starts()
		return len(st) > 0 && st[len(st)-1] > last
	})
	want := outputs(ref)
	if allStarts[0] != "2024-01-01T00:00:00.000Z" || want.starts()[0] != "2024-01-01T00:00:00.000Z" {
		t.Errorf("first windows: crash runs %s, reference %s", allStarts[0], want.starts()[0])
	}
	compared := 0
	for k, doc := range want {
		if k[0] >= last {
			continue
		}
		compared++
		if got, ok := all[k]; !ok {
			t.Errorf("window %v of the reference is missing from the crash runs", k)
		} else if got != doc {
			t.Errorf("window %v: crash runs %s, reference %s", k, got, doc)
		}
	}
	for k := range all {
		if _, ok := want[k]; !ok && k[0] < last {
			t.Errorf("window %v of the crash runs is not in the reference", k)
		}
	}
	t.Logf("%d window results over %d windows compared; %d repeated after kill -9; %d windows before the kill, %d checkpointed",
		compared, len(allStarts)-1, repeats, len(preStarts), len(covered.starts()))
}
