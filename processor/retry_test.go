package processor_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.uber.org/goleak"

	"github.com/spi-streams/spi/connectors"
	"github.com/spi-streams/spi/pipeline"
	"github.com/spi-streams/spi/processor"
	"github.com/spi-streams/spi/store"
)

// flaky is a fake source, acceptable here because no real peer in this repository fails on
// demand: its reads fail with the configured error while failures > 0, then it replays
// documents. Kafka and MongoDB connectors report the same kinds of errors.
type flaky struct {
	failures *atomic.Int64
	err      error
	replay
}

func (f *flaky) ReadBatch(ctx context.Context, n int, w time.Duration) (connectors.Batch, error) {
	if f.failures.Add(-1) >= 0 {
		return connectors.Batch{}, f.err
	}
	return f.replay.ReadBatch(ctx, min(n, 10), w)
}

var (
	flakyFailures atomic.Int64
	flakyErr      atomic.Value
)

func init() {
	connectors.Register(connectors.Type{Name: "Flaky", NewSource: func(connectors.Env, *pipeline.Source) (connectors.Source, error) {
		err, _ := flakyErr.Load().(error) // nil when the runtime builds it to check options
		return &flaky{failures: &flakyFailures, err: err}, nil
	}})
}

func TestRetriesAndFailures(t *testing.T) {
	defer goleak.VerifyNone(t)
	if benchDocs == nil {
		makeBenchDocs()
	}
	st := newStore(t)
	if err := st.Update(func(tx *store.Txn) error {
		return tx.PutConnection(store.Connection{Workspace: "w", Name: "flaky", Type: "Flaky"})
	}); err != nil {
		t.Fatal(err)
	}
	m := processor.NewManager(processor.Config{Store: st, RetryTimeout: 5 * time.Second})
	if err := m.Resume(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = m.Shutdown(context.Background()) }()
	p := pipe(t, bson.D{{Key: "$source", Value: bson.D{{Key: "connectionName", Value: "flaky"}}}},
		bson.D{{Key: "$emit", Value: bson.D{{Key: "connectionName", Value: "__discard"}}}})
	if _, err := m.Create(processor.CreateRequest{Workspace: "w", Name: "f", Pipeline: p}); err != nil {
		t.Fatal(err)
	}

	// Two transient failures: retried with backoff, then the processor runs.
	flakyErr.Store(connectors.Retryable(errors.New("broker not available")))
	flakyFailures.Store(2)
	if err := m.Start("w", "f", processor.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "input after retries", func() bool { i, _ := m.Get("w", "f"); return i.Stats.InputCount > 0 })
	if i, _ := m.Get("w", "f"); i.State != store.StateStarted {
		t.Fatalf("state %s after transient errors", i.State)
	}
	if err := m.Stop(context.Background(), "w", "f"); err != nil {
		t.Fatal(err)
	}

	// A permanent failure: FAILED at once, with errorMsg, errorCode and errorRetryable false.
	flakyErr.Store(&connectors.Error{Code: 420, Err: errors.New("authentication failed: the broker refused the credentials")})
	flakyFailures.Store(1)
	if err := m.Start("w", "f", processor.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "FAILED", func() bool { i, _ := m.Get("w", "f"); return i.State == store.StateFailed })
	i, _ := m.Get("w", "f")
	if i.ErrorCode != 420 || i.ErrorRetryable || i.ErrorMsg != "authentication failed: the broker refused the credentials" {
		t.Fatalf("failure recorded as %d %q retryable=%v", i.ErrorCode, i.ErrorMsg, i.ErrorRetryable)
	}

	// Transient failures beyond the retry window: FAILED, retryable, saying how long it tried.
	flakyErr.Store(connectors.Retryable(errors.New("connection refused")))
	flakyFailures.Store(1 << 30)
	if err := m.Start("w", "f", processor.StartOptions{}); err != nil {
		t.Fatalf("a FAILED processor starts again: %v", err)
	}
	// While the runtime retries, the processor is STARTED and says why in errorMsg (spec §4.5).
	waitFor(t, "the error while retrying", func() bool {
		i, _ := m.Get("w", "f")
		return i.State == store.StateStarted && i.ErrorMsg == "connection refused" && i.ErrorRetryable
	})
	waitFor(t, "FAILED after the retry window", func() bool { i, _ := m.Get("w", "f"); return i.State == store.StateFailed })
	i, _ = m.Get("w", "f")
	if !i.ErrorRetryable || i.ErrorMsg == "" {
		t.Fatalf("failure recorded as %d %q retryable=%v", i.ErrorCode, i.ErrorMsg, i.ErrorRetryable)
	}
	flakyFailures.Store(0)
}

// failingSink is a fake sink, acceptable for the same reason as flaky: its writes fail with a
// retryable error while *failures > 0; then each takes delay (so the engine runs ahead of it by
// the queue between them) and discards what it is given. FlakySink has no delay, SlowSink 5 ms.
type failingSink struct {
	failures *atomic.Int64
	delay    time.Duration
}

var flakySinkFailures, slowSinkFailures atomic.Int64

func (f failingSink) WriteBatch(ctx context.Context, _ []bson.Raw) ([]bson.Raw, error) {
	if f.failures.Add(-1) >= 0 {
		return nil, connectors.Retryable(errors.New("deployment unreachable"))
	}
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-ctx.Done():
		}
	}
	return nil, nil
}
func (failingSink) Flush(context.Context) error { return nil }
func (failingSink) Close() error                { return nil }

func init() {
	for name, sink := range map[string]failingSink{"FlakySink": {&flakySinkFailures, 0}, "SlowSink": {&slowSinkFailures, 5 * time.Millisecond}} {
		connectors.Register(connectors.Type{Name: name, NewSink: func(connectors.Env, *pipeline.Sink) (connectors.Sink, error) { return sink, nil }})
	}
}

// TestRetryBeforeFirstCheckpoint: attempts that fail before the first checkpoint read the
// input again from the start, and the counters go back with them: after two failed attempts
// and a good one, inputMessageCount counts each input once.
func TestRetryBeforeFirstCheckpoint(t *testing.T) {
	defer goleak.VerifyNone(t)
	st := newStore(t)
	if err := st.Update(func(tx *store.Txn) error {
		return tx.PutConnection(store.Connection{Workspace: "w", Name: "out", Type: "FlakySink"})
	}); err != nil {
		t.Fatal(err)
	}
	m := processor.NewManager(processor.Config{Store: st, RetryTimeout: time.Minute})
	if err := m.Resume(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = m.Shutdown(context.Background()) }()
	docs := bson.A{}
	for i := range 7 {
		docs = append(docs, bson.D{{Key: "i", Value: i}})
	}
	p := pipe(t, bson.D{{Key: "$source", Value: bson.D{{Key: "documents", Value: docs}}}},
		bson.D{{Key: "$emit", Value: bson.D{{Key: "connectionName", Value: "out"}, {Key: "topic", Value: "t"}}}})
	if _, err := m.Create(processor.CreateRequest{Workspace: "w", Name: "r", Pipeline: p}); err != nil {
		t.Fatal(err)
	}
	flakySinkFailures.Store(2)
	if err := m.Start("w", "r", processor.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the outputs after the retries", func() bool { i, _ := m.Get("w", "r"); return i.Stats.OutputCount == 7 })
	if i, _ := m.Get("w", "r"); i.Stats.InputCount != 7 || flakySinkFailures.Load() >= 0 {
		t.Fatalf("inputMessageCount %d for 7 inputs (failures left %d)", i.Stats.InputCount, flakySinkFailures.Load())
	}
}

// TestProcessFailsAtFirstError: an sp.process() run does not retry: the first error (here a
// retryable one, which a named processor would retry for minutes) ends it, and the client's
// next getMore returns it with its code.
func TestProcessFailsAtFirstError(t *testing.T) {
	defer goleak.VerifyNone(t)
	st := newStore(t)
	if err := st.Update(func(tx *store.Txn) error {
		return tx.PutConnection(store.Connection{Workspace: "w", Name: "flaky", Type: "Flaky"})
	}); err != nil {
		t.Fatal(err)
	}
	m := processor.NewManager(processor.Config{Store: st, RetryTimeout: time.Hour})
	if err := m.Resume(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = m.Shutdown(context.Background()) }()
	flakyErr.Store(connectors.Retryable(errors.New("Kafka broker 127.0.0.1:9 is unreachable")))
	flakyFailures.Store(1 << 30)
	defer flakyFailures.Store(0)
	p := pipe(t, bson.D{{Key: "$source", Value: bson.D{{Key: "connectionName", Value: "flaky"}}}})
	name, id, err := m.Process(processor.ProcessOptions{Workspace: "w", Pipeline: p, Owner: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer m.ReleaseOwner(7)
	var got error
	waitFor(t, "the error in the cursor", func() bool {
		_, _, got = m.GetMore(context.Background(), "w", name, id, 10)
		return got != nil
	})
	var pe *processor.Error
	if !errors.As(got, &pe) || pe.Code != processor.CodeStreamProcessorConnError || pe.Msg != "Kafka broker 127.0.0.1:9 is unreachable" {
		t.Fatalf("getMore: %v", got)
	}
}

// TestRetryWindowAfterRecovery: the retry window runs from the first failure of a series, not
// of the processor's life. A processor that failed, recovered and committed checkpoints for
// longer than the window is retried again at its next transient failure, rather than FAILED at
// once because its first failure lies further back than the window (spec §4.5).
func TestRetryWindowAfterRecovery(t *testing.T) {
	defer goleak.VerifyNone(t)
	if benchDocs == nil {
		makeBenchDocs()
	}
	st := newStore(t)
	if err := st.Update(func(tx *store.Txn) error {
		return tx.PutConnection(store.Connection{Workspace: "w", Name: "flaky", Type: "Flaky"})
	}); err != nil {
		t.Fatal(err)
	}
	const window = 1500 * time.Millisecond
	m := processor.NewManager(processor.Config{Store: st, RetryTimeout: window, CheckpointInterval: 50 * time.Millisecond})
	if err := m.Resume(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = m.Shutdown(context.Background()) }()
	p := pipe(t, bson.D{{Key: "$source", Value: bson.D{{Key: "connectionName", Value: "flaky"}}}},
		bson.D{{Key: "$emit", Value: bson.D{{Key: "connectionName", Value: "__discard"}}}})
	if _, err := m.Create(processor.CreateRequest{Workspace: "w", Name: "again", Pipeline: p}); err != nil {
		t.Fatal(err)
	}
	flakyErr.Store(connectors.Retryable(errors.New("connection refused")))
	defer flakyFailures.Store(0)
	notFailed := func() processor.Info {
		i, _ := m.Get("w", "again")
		if i.State == store.StateFailed {
			t.Fatalf("FAILED: %d %s", i.ErrorCode, i.ErrorMsg)
		}
		return i
	}
	for round := range 2 {
		flakyFailures.Store(1)
		if round == 0 {
			if err := m.Start("w", "again", processor.StartOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, "the error while retrying", func() bool { return notFailed().ErrorMsg == "connection refused" })
		waitFor(t, "a checkpoint after the retry", func() bool { i := notFailed(); return i.ErrorMsg == "" && i.Stats.InputCount > 0 })
		if round == 0 {
			// Run, committing checkpoints, past the window of the first failure.
			time.Sleep(window + 500*time.Millisecond)
		}
	}
	if err := m.Stop(context.Background(), "w", "again"); err != nil {
		t.Fatal(err)
	}
}

// TestRetryCountsEachInputOnce: a checkpoint records the inputs before its barrier, though
// the engine has counted more by the time the sink flushes it; so after a retry from that
// checkpoint, which reads those inputs again, inputMessageCount still counts each input once
// and equals outputMessageCount for a pipeline that outputs every input.
func TestRetryCountsEachInputOnce(t *testing.T) {
	defer goleak.VerifyNone(t)
	st := newStore(t)
	if err := st.Update(func(tx *store.Txn) error {
		return tx.PutConnection(store.Connection{Workspace: "w", Name: "slow", Type: "SlowSink"})
	}); err != nil {
		t.Fatal(err)
	}
	m := processor.NewManager(processor.Config{Store: st, RetryTimeout: time.Minute, CheckpointInterval: 20 * time.Millisecond})
	if err := m.Resume(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = m.Shutdown(context.Background()) }()
	p := pipe(t, bson.D{{Key: "$source", Value: bson.D{{Key: "connectionName", Value: "sample_stream_solar"},
		{Key: "config", Value: bson.D{{Key: "rate", Value: 20000}, {Key: "seed", Value: 3}}}}}},
		bson.D{{Key: "$emit", Value: bson.D{{Key: "connectionName", Value: "slow"}, {Key: "topic", Value: "t"}}}})
	if _, err := m.Create(processor.CreateRequest{Workspace: "w", Name: "once", Pipeline: p}); err != nil {
		t.Fatal(err)
	}
	defer slowSinkFailures.Store(0)
	if err := m.Start("w", "once", processor.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		before, _ := m.Get("w", "once")
		waitFor(t, "checkpoints", func() bool {
			i, _ := m.Get("w", "once")
			return i.ErrorMsg == "" && i.Stats.OutputCount > before.Stats.OutputCount+1000
		})
		slowSinkFailures.Store(1)
		waitFor(t, "the retry", func() bool { i, _ := m.Get("w", "once"); return i.ErrorMsg != "" })
	}
	waitFor(t, "a checkpoint after the last retry", func() bool { i, _ := m.Get("w", "once"); return i.ErrorMsg == "" })
	if err := m.Stop(context.Background(), "w", "once"); err != nil {
		t.Fatal(err)
	}
	i, _ := m.Get("w", "once")
	if i.Stats.InputCount != i.Stats.OutputCount {
		t.Fatalf("after three retries: inputMessageCount %d, outputMessageCount %d", i.Stats.InputCount, i.Stats.OutputCount)
	}
	t.Logf("%d inputs", i.Stats.InputCount)
}
