package processor_test

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.uber.org/goleak"

	_ "github.com/spi-streams/spi/connectors/all"
	"github.com/spi-streams/spi/processor"
	"github.com/spi-streams/spi/store"
	"github.com/spi-streams/spi/store/storetest"
)

func newStore(t *testing.T) *store.Store {
	st := storetest.Open(t)
	now := time.Now()
	err := st.Update(func(tx *store.Txn) error {
		if err := tx.PutWorkspace(store.Workspace{Name: "w", Tier: "SP10", MaxTierSize: "SP30", Created: now}); err != nil {
			return err
		}
		if err := tx.PutConnection(store.Connection{Workspace: "w", Name: "sample_stream_solar", Type: store.TypeSample}); err != nil {
			return err
		}
		return tx.PutConnection(store.Connection{Workspace: "w", Name: "cluster", Type: store.TypeCluster, Cluster: &store.Cluster{ConnectionString: "mongodb://x"}})
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func pipe(t *testing.T, stages ...bson.D) bson.Raw {
	t.Helper()
	a := bson.A{}
	for _, s := range stages {
		a = append(a, s)
	}
	_, b, err := bson.MarshalValue(a)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLifecycle(t *testing.T) {
	defer goleak.VerifyNone(t)
	st := newStore(t)
	m := processor.NewManager(processor.Config{Store: st, CheckpointInterval: 50 * time.Millisecond})
	if err := m.Resume(); err != nil {
		t.Fatal(err)
	}
	p := pipe(t,
		bson.D{{Key: "$source", Value: bson.D{{Key: "connectionName", Value: "sample_stream_solar"}, {Key: "config", Value: bson.D{{Key: "rate", Value: 2000}, {Key: "seed", Value: 7}}}}}},
		bson.D{{Key: "$tumblingWindow", Value: bson.D{{Key: "interval", Value: bson.D{{Key: "size", Value: 100}, {Key: "unit", Value: "ms"}}},
			{Key: "allowedLateness", Value: 0},
			{Key: "pipeline", Value: bson.A{bson.D{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$device_id"}, {Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}}}}}}}}}},
		bson.D{{Key: "$emit", Value: bson.D{{Key: "connectionName", Value: "__discard"}}}},
	)
	if _, err := m.Create(processor.CreateRequest{Workspace: "w", Name: "p1", Pipeline: p}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create(processor.CreateRequest{Workspace: "w", Name: "p1", Pipeline: p}); processor.AsError(err).Code != processor.CodeStreamProcessorAlreadyExists {
		t.Fatalf("duplicate create: %v", err)
	}
	if err := m.Start("w", "p1", processor.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := m.Start("w", "p1", processor.StartOptions{}); processor.AsError(err).Code != processor.CodeIllegalOperation {
		t.Fatalf("second start: %v", err)
	}
	waitFor(t, "output", func() bool {
		info, _ := m.Get("w", "p1")
		return info.Stats.OutputCount > 20
	})
	id, err := m.StartSample("w", "p1", 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	var got int
	for cur := id; cur != 0; {
		docs, next, err := m.GetMore(context.Background(), "w", "p1", cur, 2)
		if err != nil {
			t.Fatal(err)
		}
		got += len(docs)
		cur = next
	}
	if got != 3 {
		t.Fatalf("sample returned %d documents, want the limit 3", got)
	}
	if err := m.Stop(context.Background(), "w", "p1"); err != nil {
		t.Fatal(err)
	}
	info, _ := m.Get("w", "p1")
	if info.State != store.StateStopped {
		t.Fatalf("state %s", info.State)
	}
	var cp store.Checkpoint
	if err := st.View(func(tx *store.Txn) (err error) { cp, err = tx.Checkpoint(info.ID); return err }); err != nil {
		t.Fatalf("no checkpoint after stop: %v", err)
	}
	if cp.Counters.InputCount != info.Stats.InputCount || cp.Counters.OutputCount != info.Stats.OutputCount {
		t.Fatalf("final checkpoint counters %+v, stats %+v", cp.Counters, info.Stats.Counters)
	}
	if err := m.Drop(context.Background(), "w", "p1"); err != nil {
		t.Fatal(err)
	}
	if err := m.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func tumbling(ms int) bson.D {
	return bson.D{{Key: "$tumblingWindow", Value: bson.D{{Key: "interval", Value: bson.D{{Key: "size", Value: ms}, {Key: "unit", Value: "ms"}}},
		{Key: "allowedLateness", Value: 0},
		{Key: "pipeline", Value: bson.A{bson.D{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$device_id"}, {Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}}}}}}}}}}
}

func sampleSource(rate, seed int) bson.D {
	return bson.D{{Key: "$source", Value: bson.D{{Key: "connectionName", Value: "sample_stream_solar"}, {Key: "config", Value: bson.D{{Key: "rate", Value: rate}, {Key: "seed", Value: seed}}}}}}
}

// TestProcessInline runs sp.process() over inline documents with a window: the window results
// and a dead letter reach the cursor, and dropping the run frees it.
func TestProcessInline(t *testing.T) {
	defer goleak.VerifyNone(t)
	st := newStore(t)
	m := processor.NewManager(processor.Config{Store: st})
	if err := m.Resume(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = m.Shutdown(context.Background()) }()
	docs := bson.A{}
	for i := range 10 {
		docs = append(docs, bson.D{{Key: "k", Value: i % 2}, {Key: "t", Value: bson.DateTime(1_700_000_000_000 + int64(i)*100)}})
	}
	docs = append(docs, bson.D{{Key: "k", Value: "bad"}, {Key: "t", Value: "not a date"}})
	p := pipe(t,
		bson.D{{Key: "$source", Value: bson.D{{Key: "documents", Value: docs}, {Key: "timeField", Value: bson.D{{Key: "$toDate", Value: "$t"}}}}}},
		bson.D{{Key: "$tumblingWindow", Value: bson.D{{Key: "interval", Value: bson.D{{Key: "size", Value: 1}, {Key: "unit", Value: "second"}}},
			{Key: "pipeline", Value: bson.A{bson.D{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$k"}, {Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}}}}}}}}}},
	)
	name, id, err := m.Process(processor.ProcessOptions{Workspace: "w", Pipeline: p, Owner: 9})
	if err != nil {
		t.Fatal(err)
	}
	var outs, dead int
	waitFor(t, "window results and the dead letter", func() bool {
		docs, next, err := m.GetMore(context.Background(), "w", name, id, 100)
		if err != nil || next == 0 {
			t.Fatalf("getMore: %v, next %d", err, next)
		}
		for _, d := range docs {
			if _, err := d.LookupErr("_dlqMessage"); err == nil {
				dead++
			} else if _, err := d.LookupErr("_stream_meta", "window", "start"); err == nil {
				outs++
			}
		}
		return outs == 2 && dead == 1
	})
	if len(m.List("w")) != 0 {
		t.Fatal("sp.process() runs must not be listed")
	}
	m.ReleaseOwner(9)
	if m.CursorCount() != 0 || m.ProcessorCount() != 0 {
		t.Fatalf("after the connection closed: %d cursors, %d processors", m.CursorCount(), m.ProcessorCount())
	}
}

// TestResumeAfterShutdown stops spid's manager (SIGTERM) and opens a new one on the same store:
// the STARTED processor resumes from its final checkpoint without repeating input.
func TestResumeAfterShutdown(t *testing.T) {
	defer goleak.VerifyNone(t)
	st := newStore(t)
	m := processor.NewManager(processor.Config{Store: st, CheckpointInterval: 50 * time.Millisecond})
	if err := m.Resume(); err != nil {
		t.Fatal(err)
	}
	p := pipe(t, sampleSource(5000, 3), tumbling(50), bson.D{{Key: "$emit", Value: bson.D{{Key: "connectionName", Value: "__discard"}}}})
	if _, err := m.Create(processor.CreateRequest{Workspace: "w", Name: "r", Pipeline: p}); err != nil {
		t.Fatal(err)
	}
	if err := m.Start("w", "r", processor.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "input", func() bool { i, _ := m.Get("w", "r"); return i.Stats.InputCount > 1000 })
	if err := m.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	before, _ := m.Get("w", "r")
	if before.State != store.StateStarted {
		t.Fatalf("state after shutdown %s, want STARTED", before.State)
	}
	var cp store.Checkpoint
	_ = st.View(func(tx *store.Txn) (err error) { cp, err = tx.Checkpoint(before.ID); return err })
	if cp.Counters.InputCount != before.Stats.InputCount {
		t.Fatalf("final checkpoint holds %d inputs, stats %d: shutdown lost or repeated input", cp.Counters.InputCount, before.Stats.InputCount)
	}
	m2 := processor.NewManager(processor.Config{Store: st, CheckpointInterval: 50 * time.Millisecond})
	if err := m2.Resume(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = m2.Shutdown(context.Background()) }()
	waitFor(t, "resumed input", func() bool { i, _ := m2.Get("w", "r"); return i.Stats.InputCount > before.Stats.InputCount+500 })
}

// TestOutOfMemory fails a processor whose window state passes the memory limit; the manager
// and other processors go on, and the processor can be started again.
func TestOutOfMemory(t *testing.T) {
	defer goleak.VerifyNone(t)
	st := newStore(t)
	m := processor.NewManager(processor.Config{Store: st, MemoryLimit: 64 << 10})
	if err := m.Resume(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = m.Shutdown(context.Background()) }()
	keep := bson.D{{Key: "$tumblingWindow", Value: bson.D{{Key: "interval", Value: bson.D{{Key: "size", Value: 1}, {Key: "unit", Value: "hour"}}},
		{Key: "pipeline", Value: bson.A{bson.D{{Key: "$group", Value: bson.D{{Key: "_id", Value: nil}, {Key: "all", Value: bson.D{{Key: "$push", Value: "$$ROOT"}}}}}}}}}}}
	p := pipe(t, sampleSource(20000, 1), keep, bson.D{{Key: "$emit", Value: bson.D{{Key: "connectionName", Value: "__discard"}}}})
	if _, err := m.Create(processor.CreateRequest{Workspace: "w", Name: "big", Pipeline: p}); err != nil {
		t.Fatal(err)
	}
	if err := m.Start("w", "big", processor.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "FAILED", func() bool { i, _ := m.Get("w", "big"); return i.State == store.StateFailed })
	i, _ := m.Get("w", "big")
	if i.ErrorCode != int32(processor.CodeStreamProcessorOutOfMemory) || i.ErrorRetryable {
		t.Fatalf("error %d %q retryable=%v", i.ErrorCode, i.ErrorMsg, i.ErrorRetryable)
	}
	if err := m.Start("w", "big", processor.StartOptions{ClearCheckpoints: true}); err != nil {
		t.Fatalf("a FAILED processor starts again: %v", err)
	}
}

// TestModifyRules applies spec §4.3.
func TestModifyRules(t *testing.T) {
	defer goleak.VerifyNone(t)
	st := newStore(t)
	m := processor.NewManager(processor.Config{Store: st, CheckpointInterval: 20 * time.Millisecond})
	if err := m.Resume(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = m.Shutdown(context.Background()) }()
	sink := bson.D{{Key: "$emit", Value: bson.D{{Key: "connectionName", Value: "__discard"}}}}
	p := pipe(t, sampleSource(1000, 1), tumbling(100), sink)
	if _, err := m.Create(processor.CreateRequest{Workspace: "w", Name: "mod", Pipeline: p}); err != nil {
		t.Fatal(err)
	}
	if err := m.Start("w", "mod", processor.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := m.Modify("w", "mod", processor.ModifyRequest{NewName: "x", ResumeFromCheckpoint: true}); processor.AsError(err).Code != processor.CodeIllegalOperation {
		t.Fatalf("modify while running: %v", err)
	}
	if err := m.Stop(context.Background(), "w", "mod"); err != nil {
		t.Fatal(err)
	}
	for name, np := range map[string]bson.Raw{
		"new source":     pipe(t, sampleSource(1000, 2), tumbling(100), sink),
		"new interval":   pipe(t, sampleSource(1000, 1), tumbling(200), sink),
		"window removed": pipe(t, sampleSource(1000, 1), sink),
	} {
		err := m.Modify("w", "mod", processor.ModifyRequest{Pipeline: np, ResumeFromCheckpoint: true})
		if processor.AsError(err).Code != processor.CodeStreamProcessorInvalidOption {
			t.Errorf("%s with resumeFromCheckpoint: %v", name, err)
		}
		if err := m.Modify("w", "mod", processor.ModifyRequest{Pipeline: np}); err != nil {
			t.Errorf("%s without resumeFromCheckpoint: %v", name, err)
		}
	}
	if err := m.Modify("w", "mod", processor.ModifyRequest{NewName: "renamed", ResumeFromCheckpoint: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get("w", "renamed"); err != nil {
		t.Fatal(err)
	}
	if err := m.Start("w", "renamed", processor.StartOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestLimitsAndNames(t *testing.T) {
	st := newStore(t)
	m := processor.NewManager(processor.Config{Store: st, MaxProcessors: 2})
	p := pipe(t, sampleSource(10, 1), bson.D{{Key: "$emit", Value: bson.D{{Key: "connectionName", Value: "__discard"}}}})
	for _, n := range []string{"a", "b"} {
		if _, err := m.Create(processor.CreateRequest{Workspace: "w", Name: n, Pipeline: p}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Create(processor.CreateRequest{Workspace: "w", Name: "c", Pipeline: p}); processor.AsError(err).Code != processor.CodeStreamProcessorLimit {
		t.Fatalf("third processor: %v", err)
	}
	long := string(make([]byte, processor.MaxNameLength+1))
	for _, n := range []string{"", "..", "a b", long} {
		if processor.CheckName("name", n) == nil {
			t.Errorf("name %q accepted", n)
		}
	}
	bad := pipe(t, bson.D{{Key: "$source", Value: bson.D{{Key: "connectionName", Value: "nope"}}}}, bson.D{{Key: "$emit", Value: bson.D{{Key: "connectionName", Value: "__discard"}}}})
	if _, err := m.Create(processor.CreateRequest{Workspace: "w", Name: "x", Pipeline: bad}); processor.AsError(err).Code != processor.CodeStreamProcessorInvalidOption {
		t.Fatalf("unknown connection: %v", err)
	}
	if _, err := m.Create(processor.CreateRequest{Workspace: "w", Name: "y", Pipeline: p, DLQ: &store.DLQ{ConnectionName: "sample_stream_solar", DB: "d", Coll: "c"}}); processor.AsError(err).Code != processor.CodeStreamProcessorInvalidOption {
		t.Fatalf("dlq on a Sample connection: %v", err)
	}
}

// TestIdleGetMore polls a cursor that has nothing to return: each getMore comes back empty
// after its wait, and the manager keeps answering (a getMore that timed out once left the
// cursor locked and froze every processor command).
func TestIdleGetMore(t *testing.T) {
	defer goleak.VerifyNone(t)
	st := newStore(t)
	m := processor.NewManager(processor.Config{Store: st, CursorIdleTimeout: 300 * time.Millisecond})
	if err := m.Resume(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = m.Shutdown(context.Background()) }()
	p := pipe(t, sampleSource(1, 1), tumbling(3_600_000), bson.D{{Key: "$emit", Value: bson.D{{Key: "connectionName", Value: "__discard"}}}})
	if _, err := m.Create(processor.CreateRequest{Workspace: "w", Name: "quiet", Pipeline: p}); err != nil {
		t.Fatal(err)
	}
	if err := m.Start("w", "quiet", processor.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	id, err := m.StartSample("w", "quiet", 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		docs, next, err := m.GetMore(context.Background(), "w", "quiet", id, 5)
		if err != nil || next != id || len(docs) != 0 {
			t.Fatalf("idle getMore: %d docs, next %d, err %v", len(docs), next, err)
		}
		if len(m.List("w")) != 1 {
			t.Fatal("the listing stopped answering")
		}
	}
	// Left alone, the cursor is freed by the janitor.
	waitFor(t, "the idle cursor freed", func() bool { return m.CursorCount() == 0 })
	if err := m.Stop(context.Background(), "w", "quiet"); err != nil {
		t.Fatal(err)
	}
}
