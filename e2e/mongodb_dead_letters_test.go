package e2e

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// The dead-letter collection on FerretDB (issue 11, acceptance 6) receives spec §4.5's shape —
// processorName, dlqTime (a date), operatorName, errInfo.reason, doc, _stream_meta — for each
// kind of per-document error in one processor: a $validate failure with validationAction
// "dlq", an expression error ($addFields dividing by zero), a late event (its tumbling window
// closed, allowedLateness 0), a dynamic $merge target outside the execute-as role, and a
// dynamic target that does not evaluate to a string. The others reach the target. The input is
// a Kafka topic (kfake), so that the late event arrives after its window has closed.
func TestMergeDeadLetterShapes(t *testing.T) {
	t.Parallel()
	uri := startFerretDB(t)
	fc := connectFerret(t, uri)
	s := startSpid(t, "--checkpoint-interval", "300ms", "--processor-retry-timeout", "3s")
	a := newAPI(t, s.Creds(t))
	appOnly := []any{map[string]any{"db": "app", "collection": ""}}
	var acts []any
	for _, n := range []string{"FIND", "INSERT", "UPDATE"} {
		acts = append(acts, map[string]any{"action": n, "resources": appOnly})
	}
	a.ok("POST", "/customDBRoles/roles", map[string]any{"roleName": "appOnly", "actions": acts})
	a.ok("POST", "/streams/default/connections", map[string]any{"name": "app", "type": "Cluster", "clusterName": "ferret", "connectionString": uri,
		"dbRoleToExecute": map[string]any{"role": "appOnly", "type": "CUSTOM"}})
	a.ok("POST", "/streams/default/connections", map[string]any{"name": "dlqconn", "type": "Cluster", "clusterName": "ferret", "connectionString": uri,
		"dbRoleToExecute": map[string]any{"role": "readWriteAnyDatabase", "type": "BUILT_IN"}})
	k := startKafka(t, 1, kfake.SeedTopics(1, "events"))
	a.ok("POST", "/streams/default/connections", kafkaConnection("kafka", k))
	c := connectGo(t, s.Admin(t, "", ""))

	input := []string{
		`{"_id": 1, "t": "2024-01-01T00:00:00Z", "kind": "a", "db": "app", "coll": "ok", "zero": 1}`,
		`{"_id": 2, "t": "2024-01-01T00:00:01Z", "db": "app", "coll": "ok", "zero": 1}`,
		`{"_id": 3, "t": "2024-01-01T00:00:02Z", "kind": "a", "db": "app", "coll": "ok", "zero": 0}`,
		`{"_id": 4, "t": "2024-01-01T00:00:03Z", "kind": "a", "db": "secret", "coll": "x", "zero": 1}`,
		`{"_id": 5, "t": "2024-01-01T00:00:04Z", "kind": "a", "db": "app", "coll": 5, "zero": 1}`,
		`{"_id": 6, "t": "2024-01-01T00:00:15Z", "kind": "a", "db": "app", "coll": "ok", "zero": 1}`,
	}
	msgs := func(vals ...string) []kafkaMsg {
		var out []kafkaMsg
		for _, v := range vals {
			out = append(out, kafkaMsg{Value: []byte(v)})
		}
		return out
	}
	pipe := bson.A{
		bson.D{{Key: "$source", Value: bson.D{{Key: "connectionName", Value: "kafka"}, {Key: "topic", Value: "events"},
			{Key: "config", Value: bson.D{{Key: "auto_offset_reset", Value: "earliest"}}}, {Key: "timeField", Value: bson.D{{Key: "$toDate", Value: "$t"}}}}}},
		ej(t, `{"$validate": {"validator": {"kind": {"$exists": true}}, "validationAction": "dlq"}}`),
		ej(t, `{"$addFields": {"x": {"$divide": [1, "$zero"]}}}`),
		ej(t, `{"$tumblingWindow": {"interval": {"size": 10, "unit": "second"}, "allowedLateness": 0, "pipeline": [
			{"$group": {"_id": {"db": "$db", "coll": "$coll"}, "n": {"$sum": 1}, "ids": {"$push": "$_id"}}}]}}`),
		ej(t, `{"$merge": {"into": {"connectionName": "app", "db": "$_id.db", "coll": "$_id.coll"}, "whenMatched": "replace"}}`),
	}
	mustAdmin(t, c, bson.D{{Key: "createStreamProcessor", Value: "shapes"}, {Key: "pipeline", Value: pipe},
		{Key: "options", Value: bson.D{{Key: "dlq", Value: bson.D{{Key: "connectionName", Value: "dlqconn"}, {Key: "db", Value: "errors"}, {Key: "coll", Value: "dlq"}}}}}})
	mustAdmin(t, c, bson.D{{Key: "startStreamProcessor", Value: "shapes"}})
	// Input 6 closes the window [0 s, 10 s): its group of app.ok is written; inputs 2
	// ($validate) and 3 ($addFields), and the groups of secret.x and of coll 5 ($merge) are
	// dead letters.
	produce(t, k, "events", msgs(input...), nil, nil)
	waitOutputs(t, c, "shapes", 1, 4)
	// Input 7 is late: its window has closed. Input 8 closes [10 s, 20 s), whose group of
	// app.ok (input 6) replaces the first.
	produce(t, k, "events", msgs(`{"_id": 7, "t": "2024-01-01T00:00:05Z", "kind": "a", "db": "app", "coll": "ok", "zero": 1}`,
		`{"_id": 8, "t": "2024-01-01T00:00:25Z", "kind": "a", "db": "app", "coll": "later", "zero": 1}`), nil, nil)
	waitOutputs(t, c, "shapes", 2, 5)

	cur, err := fc.Database("errors").Collection("dlq").Find(t.Context(), bson.D{{Key: "processorName", Value: "shapes"}})
	if err != nil {
		t.Fatal(err)
	}
	var recs []bson.Raw
	for cur.Next(t.Context()) {
		recs = append(recs, append(bson.Raw(nil), cur.Current...))
	}
	if err := cur.Err(); err != nil {
		t.Fatal(err)
	}
	type want struct {
		operator string
		reason   string
		docID    func(doc bson.Raw) bool
	}
	inputID := func(id int64) func(bson.Raw) bool {
		return func(d bson.Raw) bool { v, ok := d.Lookup("_id").AsInt64OK(); return ok && v == id }
	}
	groupOf := func(db string) func(bson.Raw) bool {
		return func(d bson.Raw) bool { v, ok := d.Lookup("_id", "db").StringValueOK(); return ok && v == db }
	}
	groupColl5 := func(d bson.Raw) bool { v, ok := d.Lookup("_id", "coll").AsInt64OK(); return ok && v == 5 }
	wants := map[string]want{
		"validate":   {"$validate", "", inputID(2)},
		"expression": {"$addFields", "$divide", inputID(3)},
		"late":       {"$tumblingWindow", "late", inputID(7)},
		"denied":     {"$merge", "execute-as role appOnly may not insert into secret.x: it lacks the INSERT action there", groupOf("secret")},
		"not string": {"$merge", "$merge.into.coll must evaluate to a non-empty string, not ", groupColl5},
	}
	if len(recs) != len(wants) {
		t.Errorf("%d dead-letter records, want %d: %v", len(recs), len(wants), recs)
	}
	for what, w := range wants {
		var found bson.Raw
		for _, r := range recs {
			if doc, ok := r.Lookup("doc").DocumentOK(); ok && w.docID(doc) {
				found = r
			}
		}
		if found == nil {
			t.Errorf("%s: no dead-letter record: %v", what, recs)
			continue
		}
		for _, f := range []string{"processorName", "dlqTime", "operatorName", "errInfo", "doc", "_stream_meta"} {
			if _, err := found.LookupErr(f); err != nil {
				t.Errorf("%s: record without %s: %s", what, f, found)
			}
		}
		if v := found.Lookup("dlqTime"); v.Type != bson.TypeDateTime {
			t.Errorf("%s: dlqTime is %s", what, v.Type)
		}
		reason, _ := found.Lookup("errInfo", "reason").StringValueOK()
		if op := found.Lookup("operatorName").StringValue(); op != w.operator || reason == "" || !strings.Contains(reason, w.reason) {
			t.Errorf("%s: operatorName %q, reason %q; want %q and a reason with %q", what, op, reason, w.operator, w.reason)
		}
		t.Logf("%s: %s", what, found)
	}
	if got := collection(t, fc, "app", "ok"); len(got) != 1 || !strings.Contains(got[0], `"ids":[6]`) {
		t.Errorf("app.ok: %v, want the last window's group (input 6)", got)
	}
	if n, _ := fc.Database("secret").Collection("x").CountDocuments(t.Context(), bson.D{}); n != 0 {
		t.Errorf("secret.x holds %d documents", n)
	}
}
