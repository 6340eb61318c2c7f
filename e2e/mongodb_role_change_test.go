package e2e

import (
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// A change to a custom execute-as role applies to running processors at once (trial bug 4), as
// the data plane's "changes apply at once" rule has it for users. Three processors write to
// embedded FerretDB from the sample source as crWriter, which inherits crBase: cr_ok into out.cr
// (static), keep_ok into out.keep (static), dyn into out.cr through a target expression with a
// dead-letter collection. PATCH customDBRoles/roles/crBase takes out.cr away. When the PATCH
// returns, cr_ok is FAILED with 420 naming the role, the namespace and the missing action;
// keep_ok and dyn keep running, and dyn's documents for out.cr become dead-letter records (the
// changed role counts for its dynamic target, which it had already written to). From then on
// out.cr receives nothing while keep_ok goes on writing.
func TestCustomRoleChangeStopsRunningProcessors(t *testing.T) {
	t.Parallel()
	uri := startFerretDB(t)
	fc := connectFerret(t, uri)
	s := startSpid(t, "--checkpoint-interval", "300ms", "--processor-retry-timeout", "3s")
	a := newAPI(t, s.Creds(t))
	res := func(colls ...string) []any {
		var out []any
		for _, c := range colls {
			out = append(out, map[string]any{"db": "out", "collection": c})
		}
		return out
	}
	actions := func(colls ...string) []any {
		var out []any
		for _, n := range []string{"FIND", "INSERT", "UPDATE"} {
			out = append(out, map[string]any{"action": n, "resources": res(colls...)})
		}
		return append(out, map[string]any{"action": "INSERT", "resources": res("dlq")})
	}
	a.ok("POST", "/customDBRoles/roles", map[string]any{"roleName": "crBase", "actions": actions("cr", "keep")})
	a.ok("POST", "/customDBRoles/roles", map[string]any{"roleName": "crWriter", "inheritedRoles": []any{map[string]any{"db": "admin", "role": "crBase"}}})
	a.ok("POST", "/streams/default/connections", map[string]any{"name": "ferret", "type": "Cluster", "clusterName": "ferret", "connectionString": uri,
		"dbRoleToExecute": map[string]any{"role": "crWriter", "type": "CUSTOM"}})
	c := connectGo(t, s.Admin(t, "", ""))

	merge := func(by string, coll any) bson.A {
		return bson.A{solarSourceD(200, 3), bson.D{{Key: "$addFields", Value: bson.D{{Key: "by", Value: by}}}}, bson.D{{Key: "$merge", Value: bson.D{{Key: "into", Value: bson.D{
			{Key: "connectionName", Value: "ferret"}, {Key: "db", Value: "out"}, {Key: "coll", Value: coll}}}}}}}
	}
	dlq := bson.D{{Key: "dlq", Value: bson.D{{Key: "connectionName", Value: "ferret"}, {Key: "db", Value: "out"}, {Key: "coll", Value: "dlq"}}}}
	for _, p := range []struct {
		name string
		pipe bson.A
		opts bson.D
	}{
		{"cr_ok", merge("cr_ok", "cr"), nil},
		{"keep_ok", merge("keep_ok", "keep"), nil},
		{"dyn", merge("dyn", bson.D{{Key: "$concat", Value: bson.A{"c", "r"}}}), dlq},
	} {
		cmd := bson.D{{Key: "createStreamProcessor", Value: p.name}, {Key: "pipeline", Value: p.pipe}}
		if p.opts != nil {
			cmd = append(cmd, bson.E{Key: "options", Value: p.opts})
		}
		mustAdmin(t, c, cmd)
		mustAdmin(t, c, bson.D{{Key: "startStreamProcessor", Value: p.name}})
	}
	type counts struct{ out, dlq int64 }
	stats := func(name string) counts {
		var st struct {
			Stats struct{ OutputMessageCount, DlqMessageCount int64 }
		}
		if err := c.Database("admin").RunCommand(t.Context(), bson.D{{Key: "getStreamProcessorStats", Value: name}}).Decode(&st); err != nil {
			t.Fatal(err)
		}
		return counts{st.Stats.OutputMessageCount, st.Stats.DlqMessageCount}
	}
	count := func(coll string, filter bson.D) int64 {
		if filter == nil {
			filter = bson.D{}
		}
		n, err := fc.Database("out").Collection(coll).CountDocuments(t.Context(), filter)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	waitUntil(t, "the three processors to write", func() bool {
		for _, p := range []string{"cr_ok", "keep_ok", "dyn"} {
			if state, code, msg := processorState(t, c, p); state != "STARTED" || code != 0 {
				t.Fatalf("%s: %s %d %s", p, state, code, msg)
			}
			if stats(p).out < 50 {
				return false
			}
		}
		return count("cr", nil) > 0 && count("keep", nil) > 0
	})
	if got := stats("dyn").dlq; got != 0 {
		t.Fatalf("dyn has %d dead letters before the change", got)
	}

	a.ok("PATCH", "/customDBRoles/roles/crBase", map[string]any{"actions": actions("keep")})

	// When the PATCH has returned, cr_ok is FAILED (no waiting).
	state, code, msg := processorState(t, c, "cr_ok")
	for _, want := range []string{"custom role crBase changed", "execute-as role crWriter may not insert into out.cr", "it lacks the INSERT action there"} {
		if state != "FAILED" || code != 420 || !strings.Contains(msg, want) {
			t.Errorf("cr_ok after the PATCH: %s %d %q, want FAILED 420 with %q", state, code, msg, want)
		}
	}
	var reply bson.M
	err := c.Database("admin").RunCommand(t.Context(), bson.D{{Key: "startStreamProcessor", Value: "cr_ok"}}).Decode(&reply)
	if ce, ok := err.(mongo.CommandError); !ok || ce.Code != 420 || !strings.Contains(ce.Message, "may not insert into out.cr") {
		t.Errorf("start cr_ok after the PATCH: %v, want 420", err)
	}

	// dyn's documents for out.cr become dead letters; once one has, every batch dyn wrote
	// before the change is done, and from then on out.cr must receive nothing.
	waitUntil(t, "dyn's first dead letter after the change", func() bool { return stats("dyn").dlq > 0 })
	crAfter := count("cr", nil)
	keep0, dlq0 := stats("keep_ok").out, stats("dyn").dlq
	waitUntil(t, "keep_ok and dyn to go on", func() bool {
		return stats("keep_ok").out >= keep0+400 && stats("dyn").dlq >= dlq0+400
	})
	if got := count("cr", nil); got != crAfter {
		t.Errorf("out.cr went from %d to %d documents after the role lost it (cr_ok wrote %d, dyn %d)", crAfter, got,
			count("cr", bson.D{{Key: "by", Value: "cr_ok"}}), count("cr", bson.D{{Key: "by", Value: "dyn"}}))
	}
	for _, p := range []string{"keep_ok", "dyn"} {
		if state, code, msg := processorState(t, c, p); state != "STARTED" || code != 0 {
			t.Errorf("%s after the change: %s %d %q, want STARTED", p, state, code, msg)
		}
	}
	reason := "execute-as role crWriter may not insert into out.cr"
	if n := count("dlq", bson.D{{Key: "processorName", Value: "dyn"}, {Key: "errInfo.reason", Value: bson.D{{Key: "$regex", Value: reason}}}}); n == 0 {
		t.Errorf("out.dlq holds no record of dyn with reason %q", reason)
	}
	for _, p := range []string{"keep_ok", "dyn"} {
		mustAdmin(t, c, bson.D{{Key: "stopStreamProcessor", Value: p}})
	}
}
