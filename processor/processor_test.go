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
