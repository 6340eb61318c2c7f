package processor_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.uber.org/goleak"

	"github.com/spi-streams/spi/processor"
	"github.com/spi-streams/spi/store"
)

// A change to a custom role applies to running processors at once (trial bug 4): RoleChanged
// checks again, as at start, every running processor whose Cluster connections run as the role
// (here through inheritance: crWriter inherits the changed crBase) and stops those it no longer
// allows FAILED with 420 naming the role, the namespace and the missing action. A processor the
// role still allows, one whose connection runs as another role, and one not running are left
// as they are; a change to a role no connection uses stops nothing. The store is the real one;
// the processors' $match lets no document through, so no sink connects to the (absent)
// deployment.
func TestRoleChangedStopsDeniedProcessors(t *testing.T) {
	defer goleak.VerifyNone(t)
	st := newStore(t)
	out := func(colls ...string) []store.Resource {
		var rs []store.Resource
		for _, c := range colls {
			rs = append(rs, store.Resource{DB: "out", Collection: c})
		}
		return rs
	}
	writes := func(rs []store.Resource) []store.RoleAction {
		return []store.RoleAction{{Action: "INSERT", Resources: rs}, {Action: "UPDATE", Resources: rs}, {Action: "FIND", Resources: rs}}
	}
	now := time.Now()
	err := st.Update(func(tx *store.Txn) error {
		for _, r := range []store.Role{
			{Name: "crBase", Actions: writes(out("cr", "keep")), Created: now},
			{Name: "crWriter", InheritedRoles: []store.InheritedRole{{DB: "admin", Role: "crBase"}}, Created: now},
			{Name: "other", Actions: writes(out("cr")), Created: now},
			{Name: "unused", Actions: writes(out("x")), Created: now},
		} {
			if err := tx.PutRole(r); err != nil {
				return err
			}
		}
		for name, role := range map[string]string{"ferret": "crWriter", "ferret2": "other"} {
			c := store.Connection{Workspace: "w", Name: name, Type: store.TypeCluster, Cluster: &store.Cluster{ClusterName: "c0",
				ConnectionString: "mongodb://127.0.0.1:1", DBRoleToExecute: store.RoleToExecute{Role: role, Type: "CUSTOM"}}}
			if err := tx.PutConnection(c); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	m := processor.NewManager(processor.Config{Store: st, CheckpointInterval: 50 * time.Millisecond})
	if err := m.Resume(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = m.Shutdown(context.Background()) }()
	none := bson.D{{Key: "$match", Value: bson.D{{Key: "obs.watts", Value: bson.D{{Key: "$lt", Value: -1}}}}}}
	merge := func(conn, coll string) bson.D {
		return bson.D{{Key: "$merge", Value: bson.D{{Key: "into", Value: bson.D{{Key: "connectionName", Value: conn}, {Key: "db", Value: "out"}, {Key: "coll", Value: coll}}}}}}
	}
	for _, p := range []struct {
		name  string
		sink  bson.D
		dlq   *store.DLQ
		start bool
	}{
		{"cr_ok", merge("ferret", "cr"), nil, true},
		{"keep_ok", merge("ferret", "keep"), nil, true},
		{"dlq_cr", emitDiscard, &store.DLQ{ConnectionName: "ferret", DB: "out", Coll: "cr"}, true},
		{"other_cr", merge("ferret2", "cr"), nil, true},
		{"idle_cr", merge("ferret", "cr"), nil, false},
	} {
		if _, err := m.Create(processor.CreateRequest{Workspace: "w", Name: p.name, Pipeline: pipe(t, sampleSource(200, 1), none, p.sink), DLQ: p.dlq}); err != nil {
			t.Fatalf("create %s: %v", p.name, err)
		}
		if p.start {
			if err := m.Start("w", p.name, processor.StartOptions{}); err != nil {
				t.Fatalf("start %s: %v", p.name, err)
			}
		}
	}

	// Each attempt builds its sinks (checking the role) after Start returns: wait until every
	// started processor reads, so that the change below meets them running.
	for _, name := range []string{"cr_ok", "keep_ok", "dlq_cr", "other_cr"} {
		waitFor(t, name+" to read", func() bool {
			in, err := m.Get("w", name)
			return err == nil && in.State == store.StateStarted && in.Stats.InputCount > 0
		})
	}
	if got := m.RoleChanged("unused"); len(got) != 0 {
		t.Fatalf("a change to a role no connection uses stopped %v", got)
	}
	if got := m.RoleChanged("crBase"); len(got) != 0 {
		t.Fatalf("a change that still allows every processor stopped %v", got)
	}

	// crBase loses out.cr: what writes there as crWriter is denied.
	if err := st.Update(func(tx *store.Txn) error {
		return tx.PutRole(store.Role{Name: "crBase", Actions: writes(out("keep")), Created: now, Updated: time.Now()})
	}); err != nil {
		t.Fatal(err)
	}
	if got, want := m.RoleChanged("crBase"), []string{"w/cr_ok", "w/dlq_cr"}; !slices.Equal(got, want) {
		t.Fatalf("RoleChanged stopped %v, want %v", got, want)
	}
	for name, want := range map[string]string{
		"cr_ok":  "stopped because custom role crBase changed: $merge into out.cr through connection \"ferret\": execute-as role crWriter may not insert into out.cr: it lacks the INSERT action there",
		"dlq_cr": "stopped because custom role crBase changed: ",
	} {
		in, err := m.Get("w", name)
		if err != nil {
			t.Fatal(err)
		}
		if in.State != store.StateFailed || in.ErrorCode != 420 || in.ErrorRetryable || !strings.Contains(in.ErrorMsg, want) ||
			!strings.Contains(in.ErrorMsg, "out.cr") || !strings.Contains(in.ErrorMsg, "INSERT") {
			t.Errorf("%s: %s %d retryable=%v %q, want FAILED 420 with %q", name, in.State, in.ErrorCode, in.ErrorRetryable, in.ErrorMsg, want)
		}
	}
	for name, state := range map[string]string{"keep_ok": store.StateStarted, "other_cr": store.StateStarted, "idle_cr": store.StateCreated} {
		if in, _ := m.Get("w", name); in.State != state || in.ErrorMsg != "" {
			t.Errorf("%s: %s %q, want %s", name, in.State, in.ErrorMsg, state)
		}
	}
	// The failure is stored: a restart of the runtime does not resume the processor.
	var rec store.Processor
	if err := st.View(func(tx *store.Txn) (err error) { rec, err = tx.Processor("w", "cr_ok"); return err }); err != nil {
		t.Fatal(err)
	}
	if rec.State != store.StateFailed || rec.ErrorCode != 420 {
		t.Errorf("stored cr_ok: %s %d", rec.State, rec.ErrorCode)
	}
	// A start checks the changed role too; a processor still allowed can be stopped as usual.
	if err := m.Start("w", "cr_ok", processor.StartOptions{}); processor.AsError(err).Code != processor.CodeStreamProcessorInvalidOption {
		t.Errorf("start cr_ok after the change: %v, want 420", err)
	}
	if err := m.Stop(context.Background(), "w", "keep_ok"); err != nil {
		t.Errorf("stop keep_ok: %v", err)
	}
	if got := m.RoleChanged("crBase"); len(got) != 0 {
		t.Errorf("a second RoleChanged stopped %v", got)
	}
}

var emitDiscard = bson.D{{Key: "$emit", Value: bson.D{{Key: "connectionName", Value: "__discard"}}}}
