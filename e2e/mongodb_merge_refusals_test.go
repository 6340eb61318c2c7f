package e2e

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// What the deployment refuses reaches the dead-letter queue, exactly, and never stalls the
// processor (trial bugs 1 and 2), against embedded FerretDB 1.x:
//   - a unique index on email refuses 2 of 4 documents; FerretDB stops the unordered bulk write
//     at its first error and reports it at index 0, yet stats count out 2 and dlq 2, only _id 2
//     and 4 are dead letters (with the deployment's E11000 reason), and 1 and 3 are written;
//   - a dynamic target whose name MongoDB refuses (bad$x) is a dead letter before any write, and
//     one that passes MongoDB's rules but the deployment refuses (_ferretdb_x: FerretDB answers
//     InvalidNamespace, 73) is a dead letter with the deployment's reason, not a retryable 421:
//     the processor stays STARTED and the good targets are written;
//   - a static target, time series collection or lookup source MongoDB refuses is a 420 at create
//     naming the field.
func TestMergeRefusalsBecomeDeadLetters(t *testing.T) {
	t.Parallel()
	uri := startFerretDB(t)
	fc := connectFerret(t, uri)
	s := startSpid(t, "--checkpoint-interval", "300ms", "--processor-retry-timeout", "3s")
	a := newAPI(t, s.Creds(t))
	a.ok("POST", "/streams/default/connections", map[string]any{"name": "ferret", "type": "Cluster", "clusterName": "ferret",
		"connectionString": uri, "dbRoleToExecute": map[string]any{"role": "readWriteAnyDatabase", "type": "BUILT_IN"}})
	c := connectGo(t, s.Admin(t, "", ""))
	dlqOpt := func(coll string) bson.D {
		return bson.D{{Key: "dlq", Value: bson.D{{Key: "connectionName", Value: "ferret"}, {Key: "db", Value: "t"}, {Key: "coll", Value: coll}}}}
	}
	merge := func(coll any) bson.D {
		return bson.D{{Key: "$merge", Value: bson.D{{Key: "into", Value: bson.D{{Key: "connectionName", Value: "ferret"}, {Key: "db", Value: "t"}, {Key: "coll", Value: coll}}}}}}
	}
	deadLetters := func(coll string) map[string]string { // the doc's k, or else its _id → errInfo.reason
		t.Helper()
		cur, err := fc.Database("t").Collection(coll).Find(t.Context(), bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for cur.Next(t.Context()) {
			doc, _ := cur.Current.Lookup("doc").DocumentOK()
			key, ok := doc.Lookup("k").StringValueOK()
			if !ok {
				key = fmt.Sprint(doc.Lookup("_id").AsInt64())
			}
			out[key], _ = cur.Current.Lookup("errInfo", "reason").StringValueOK()
		}
		if err := cur.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}

	// Bug 2: the trial's case.
	uq := fc.Database("t").Collection("uq")
	if _, err := uq.Indexes().CreateOne(t.Context(), mongo.IndexModel{Keys: bson.D{{Key: "email", Value: 1}}, Options: options.Index().SetUnique(true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := uq.InsertOne(t.Context(), bson.D{{Key: "_id", Value: 100}, {Key: "email", Value: "a@x"}}); err != nil {
		t.Fatal(err)
	}
	input := bson.A{}
	for i, e := range []string{"b@x", "a@x", "c@x", "b@x"} {
		input = append(input, bson.D{{Key: "_id", Value: i + 1}, {Key: "email", Value: e}})
	}
	src := func(docs bson.A) bson.D {
		return bson.D{{Key: "$source", Value: bson.D{{Key: "documents", Value: docs}}}}
	}
	mustAdmin(t, c, bson.D{{Key: "createStreamProcessor", Value: "uq"}, {Key: "pipeline", Value: bson.A{src(input), merge("uq")}}, {Key: "options", Value: dlqOpt("dlq_uq")}})
	mustAdmin(t, c, bson.D{{Key: "startStreamProcessor", Value: "uq"}})

	// Bug 1: dynamic targets.
	dyn := bson.A{bson.D{{Key: "k", Value: "ok1"}}, bson.D{{Key: "k", Value: "bad$x"}}, bson.D{{Key: "k", Value: "_ferretdb_x"}}, bson.D{{Key: "k", Value: "ok2"}}}
	mustAdmin(t, c, bson.D{{Key: "createStreamProcessor", Value: "dyn"}, {Key: "pipeline", Value: bson.A{src(dyn), merge("$k")}}, {Key: "options", Value: dlqOpt("dlq_dyn")}})
	mustAdmin(t, c, bson.D{{Key: "startStreamProcessor", Value: "dyn"}})

	waitOutputs(t, c, "uq", 2, 2)
	if got, want := strings.Join(collection(t, fc, "t", "uq"), " "), `{"_id":1,"email":"b@x"} {"_id":3,"email":"c@x"} {"_id":100,"email":"a@x"}`; got != want {
		t.Errorf("t.uq: %s, want %s", got, want)
	}
	dl := deadLetters("dlq_uq")
	if len(dl) != 2 {
		t.Errorf("dlq_uq: %v, want _id 2 and 4", dl)
	}
	for _, id := range []string{"2", "4"} {
		if r := dl[id]; !strings.Contains(r, "$merge into t.uq: write refused by the deployment") || !strings.Contains(r, "E11000") {
			t.Errorf("dlq_uq: _id %s: reason %q, want the deployment's E11000", id, r)
		}
	}

	waitOutputs(t, c, "dyn", 2, 2)
	for _, coll := range []string{"ok1", "ok2"} {
		if got := collection(t, fc, "t", coll); len(got) != 1 || !strings.Contains(got[0], `"k":"`+coll+`"`) {
			t.Errorf("t.%s: %v", coll, got)
		}
	}
	dl = deadLetters("dlq_dyn")
	for k, want := range map[string]string{
		"bad$x":       `$merge into t.bad$x: "bad$x" is not a valid collection name: MongoDB refuses $`,
		"_ferretdb_x": "$merge into t._ferretdb_x: the deployment refuses the target: Invalid collection name: _ferretdb_x (InvalidNamespace 73)",
	} {
		if r := dl[k]; !strings.Contains(r, want) {
			t.Errorf("dlq_dyn: %s: reason %q, want %q", k, r, want)
		}
	}
	if len(dl) != 2 {
		t.Errorf("dlq_dyn: %v, want bad$x and _ferretdb_x", dl)
	}
	if state, code, msg := processorState(t, c, "dyn"); state != "STARTED" {
		t.Errorf("dyn: %s %d %s, want STARTED", state, code, msg)
	}

	// Static names MongoDB refuses: 420 at create, naming the field and the reason.
	lookup := bson.D{{Key: "$lookup", Value: bson.D{{Key: "from", Value: bson.D{{Key: "connectionName", Value: "ferret"}, {Key: "db", Value: "t"}, {Key: "coll", Value: "system.x"}}},
		{Key: "localField", Value: "k"}, {Key: "foreignField", Value: "k"}, {Key: "as", Value: "m"}}}}
	emitTS := bson.D{{Key: "$emit", Value: bson.D{{Key: "connectionName", Value: "ferret"}, {Key: "db", Value: strings.Repeat("d", 64)}, {Key: "coll", Value: "ts"},
		{Key: "timeseries", Value: bson.D{{Key: "timeField", Value: "t"}}}}}}
	for _, tc := range []struct {
		name string
		pipe bson.A
		want []string
	}{
		{"static", bson.A{src(dyn), merge("c$d")}, []string{"$merge.into.coll", `"c$d" is not a valid collection name`}},
		{"staticdb", bson.A{src(dyn), bson.D{{Key: "$merge", Value: bson.D{{Key: "into", Value: bson.D{{Key: "connectionName", Value: "ferret"}, {Key: "db", Value: "a b"}, {Key: "coll", Value: "c"}}}}}}}, []string{"$merge.into.db", `"a b" is not a valid database name`}},
		{"lookup", bson.A{src(dyn), lookup, merge("out")}, []string{"$lookup.from.coll", "system. prefix is reserved"}},
		{"ts", bson.A{src(dyn), emitTS}, []string{"$emit.db", "longer than MongoDB's 63 bytes"}},
	} {
		_, err := runAdmin(t, c, bson.D{{Key: "createStreamProcessor", Value: tc.name}, {Key: "pipeline", Value: tc.pipe}})
		var ce mongo.CommandError
		if !errors.As(err, &ce) || ce.Code != 420 {
			t.Errorf("%s: %v, want 420", tc.name, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(ce.Message, w) {
				t.Errorf("%s: %q, want %q", tc.name, ce.Message, w)
			}
		}
	}
}
