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
