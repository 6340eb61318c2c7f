package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// $merge into a MongoDB deployment (embedded FerretDB) through a Cluster connection: each
// supported whenMatched × whenNotMatched mode leaves the collection MongoDB's $merge manual
// says, with the same _id repeated across the input; a document without its on field is a
// dead letter; an execute-as role that may not write, and a mode pair MongoDB refuses, are
// refused at create with 420; no credential reaches a reply or spid's log.
func TestMergeIntoFerretDB(t *testing.T) {
	t.Parallel()
	uri := startFerretDB(t)
	fc := connectFerret(t, uri)
	s := startSpid(t, "--checkpoint-interval", "300ms", "--processor-retry-timeout", "3s")
	a := newAPI(t, s.Creds(t))
	conn := func(name, role string, auth map[string]any) map[string]any {
		m := map[string]any{"name": name, "type": "Cluster", "clusterName": "ferret", "connectionString": uri,
			"dbRoleToExecute": map[string]any{"role": role, "type": "BUILT_IN"}}
		if auth != nil {
			m["authentication"] = auth
		}
		return m
	}
	const password = "merge-Secret-4711"
	a.ok("POST", "/streams/default/connections", conn("fdb", "readWriteAnyDatabase", nil))
	a.ok("POST", "/streams/default/connections", conn("ro", "readAnyDatabase", map[string]any{"username": "spiro", "password": password}))
	a.ok("POST", "/streams/default/connections", conn("authed", "readWriteAnyDatabase", map[string]any{"username": "spiwriter", "password": password}))
	a.ok("POST", "/streams/default/connections", conn("plain", "readWriteAnyDatabase", map[string]any{"mechanism": "PLAIN", "username": "spiplain", "password": password}))
	c := connectGo(t, s.Admin(t, "", ""))

	// The input repeats _id 1 and 3; the collection holds _id 1 and 2 before.
	input := bson.A{
		bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: "new1"}, {Key: "b", Value: 1}},
		bson.D{{Key: "_id", Value: 3}, {Key: "a", Value: "new3"}},
		bson.D{{Key: "_id", Value: 1}, {Key: "c", Value: 2}},
		bson.D{{Key: "_id", Value: 3}, {Key: "b", Value: 3}},
	}
	before := []any{bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: "old"}, {Key: "keep", Value: "x"}}, bson.D{{Key: "_id", Value: 2}, {Key: "a", Value: "old"}}}
	two := `{"_id":2,"a":"old"}`
	for _, tc := range []struct {
		matched, notMatched string
		want                []string
	}{
		{"merge", "insert", []string{`{"_id":1,"a":"new1","b":1,"c":2,"keep":"x"}`, two, `{"_id":3,"a":"new3","b":3}`}},
		{"merge", "discard", []string{`{"_id":1,"a":"new1","b":1,"c":2,"keep":"x"}`, two}},
		{"replace", "insert", []string{`{"_id":1,"c":2}`, two, `{"_id":3,"b":3}`}},
		{"replace", "discard", []string{`{"_id":1,"c":2}`, two}},
		{"keepExisting", "insert", []string{`{"_id":1,"a":"old","keep":"x"}`, two, `{"_id":3,"a":"new3"}`}},
	} {
		name := tc.matched + "_" + tc.notMatched
		if _, err := fc.Database("db").Collection(name).InsertMany(t.Context(), before); err != nil {
			t.Fatal(err)
		}
		pipe := bson.A{
			bson.D{{Key: "$source", Value: bson.D{{Key: "documents", Value: input}}}},
			bson.D{{Key: "$merge", Value: bson.D{{Key: "into", Value: bson.D{{Key: "connectionName", Value: "fdb"}, {Key: "db", Value: "db"}, {Key: "coll", Value: name}}},
				{Key: "whenMatched", Value: tc.matched}, {Key: "whenNotMatched", Value: tc.notMatched}}}},
		}
		mustAdmin(t, c, bson.D{{Key: "createStreamProcessor", Value: name}, {Key: "pipeline", Value: pipe}})
		mustAdmin(t, c, bson.D{{Key: "startStreamProcessor", Value: name}})
		waitOutputs(t, c, name, int64(len(input)), 0)
		if got := collection(t, fc, "db", name); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: collection\n%v\nwant\n%v", name, got, tc.want)
		}
		// Replaying the same input (as after a crash before a checkpoint) leaves the same
		// collection: the writes are idempotent.
		mustAdmin(t, c, bson.D{{Key: "createStreamProcessor", Value: name + "_replay"}, {Key: "pipeline", Value: pipe}})
		mustAdmin(t, c, bson.D{{Key: "startStreamProcessor", Value: name + "_replay"}})
		waitOutputs(t, c, name+"_replay", int64(len(input)), 0)
		if got := collection(t, fc, "db", name); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s replayed: collection\n%v\nwant\n%v", name, got, tc.want)
		}
	}

	// A write the deployment refuses for the document's own sake (a duplicate key in a unique
	// index) is a dead letter; the other writes of the batch go through. (FerretDB 1.24 stops
	// an unordered update batch at its first error and reports that error at index 0 whichever
	// write failed, so the refused write comes first here; the sink sends the others again.)
	dup := fc.Database("db").Collection("dup")
	if _, err := dup.Indexes().CreateOne(t.Context(), mongo.IndexModel{Keys: bson.D{{Key: "u", Value: 1}}, Options: options.Index().SetUnique(true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := dup.InsertOne(t.Context(), bson.D{{Key: "_id", Value: 9}, {Key: "u", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	dupPipe := bson.A{
		bson.D{{Key: "$source", Value: bson.D{{Key: "documents", Value: bson.A{
			bson.D{{Key: "_id", Value: 1}, {Key: "u", Value: 1}},
			bson.D{{Key: "_id", Value: 3}, {Key: "u", Value: 3}},
			bson.D{{Key: "_id", Value: 4}, {Key: "u", Value: 4}},
		}}}}},
		bson.D{{Key: "$merge", Value: bson.D{{Key: "into", Value: bson.D{{Key: "connectionName", Value: "fdb"}, {Key: "db", Value: "db"}, {Key: "coll", Value: "dup"}}}}}},
	}
	mustAdmin(t, c, bson.D{{Key: "createStreamProcessor", Value: "dup"}, {Key: "pipeline", Value: dupPipe}})
	mustAdmin(t, c, bson.D{{Key: "startStreamProcessor", Value: "dup"}})
	waitOutputs(t, c, "dup", 2, 1)
	if got, want := collection(t, fc, "db", "dup"), []string{`{"_id":3,"u":3}`, `{"_id":4,"u":4}`, `{"_id":9,"u":1}`}; !reflect.DeepEqual(got, want) {
		t.Errorf("dup: %v, want %v", got, want)
	}

	// on a field other than _id, compound: a document without one of them is a dead letter;
	// the others are upserted by their keys.
	pipe := bson.A{
		bson.D{{Key: "$source", Value: bson.D{{Key: "documents", Value: bson.A{
			bson.D{{Key: "k", Value: "x"}, {Key: "r", Value: 1}, {Key: "n", Value: 1}},
			bson.D{{Key: "k", Value: "x"}, {Key: "n", Value: 2}},
			bson.D{{Key: "k", Value: "x"}, {Key: "r", Value: 1}, {Key: "n", Value: 3}},
			bson.D{{Key: "k", Value: "y"}, {Key: "r", Value: 1}, {Key: "n", Value: 4}},
		}}}}},
		bson.D{{Key: "$merge", Value: bson.D{{Key: "into", Value: bson.D{{Key: "connectionName", Value: "fdb"}, {Key: "db", Value: "db"}, {Key: "coll", Value: "keyed"}}},
			{Key: "on", Value: bson.A{"k", "r"}}}}},
	}
	mustAdmin(t, c, bson.D{{Key: "createStreamProcessor", Value: "keyed"}, {Key: "pipeline", Value: pipe}})
	mustAdmin(t, c, bson.D{{Key: "startStreamProcessor", Value: "keyed"}})
	waitOutputs(t, c, "keyed", 3, 1)
	var keyed []string
	for _, d := range collection(t, fc, "db", "keyed") {
		var m map[string]any
		_ = json.Unmarshal([]byte(d), &m)
		delete(m, "_id") // generated by the deployment
		b, _ := json.Marshal(m)
		keyed = append(keyed, string(b))
	}
	if want := []string{`{"k":"x","n":3,"r":1}`, `{"k":"y","n":4,"r":1}`}; !reflect.DeepEqual(slices.Sorted(slices.Values(keyed)), want) {
		t.Errorf("keyed: %v, want %v", keyed, want)
	}

	// Refused at create with 420: an execute-as role that may not write, and a mode pair
	// MongoDB refuses.
	for _, tc := range []struct {
		conn string
		opts bson.D
		want string
	}{
		{"ro", nil, "execute-as role readAnyDatabase may not"},
		{"fdb", bson.D{{Key: "whenMatched", Value: "fail"}, {Key: "whenNotMatched", Value: "discard"}}, "not a supported combination"},
		{"fdb", bson.D{{Key: "whenMatched", Value: "keepExisting"}, {Key: "whenNotMatched", Value: "discard"}}, "not a supported combination"},
	} {
		merge := append(bson.D{{Key: "into", Value: bson.D{{Key: "connectionName", Value: tc.conn}, {Key: "db", Value: "db"}, {Key: "coll", Value: "refused"}}}}, tc.opts...)
		_, err := runAdmin(t, c, bson.D{{Key: "createStreamProcessor", Value: "refused"}, {Key: "pipeline", Value: bson.A{
			bson.D{{Key: "$source", Value: bson.D{{Key: "documents", Value: input}}}}, bson.D{{Key: "$merge", Value: merge}}}}})
		var ce mongo.CommandError
		if !errors.As(err, &ce) || ce.Code != 420 || !strings.Contains(ce.Message, tc.want) {
			t.Errorf("%s %v: %v, want 420 with %q", tc.conn, tc.opts, err, tc.want)
		}
	}

	// Connections with credentials: the processor runs or fails without the password appearing
	// in any reply, stats, log or audit record. FerretDB refuses SCRAM-SHA-256 logins (its v1
	// authenticates through its backend): that failure names the deployment and namespace, with
	// code 421. It accepts PLAIN (without checking the password on its SQLite backend), so the
	// PLAIN connection's processor logs in and writes.
	var replies []string
	for _, name := range []string{"authed", "plain"} {
		pipe = bson.A{
			bson.D{{Key: "$source", Value: bson.D{{Key: "documents", Value: input}}}},
			bson.D{{Key: "$merge", Value: bson.D{{Key: "into", Value: bson.D{{Key: "connectionName", Value: name}, {Key: "db", Value: "db"}, {Key: "coll", Value: name}}}}}},
		}
		mustAdmin(t, c, bson.D{{Key: "createStreamProcessor", Value: name}, {Key: "pipeline", Value: pipe}})
		mustAdmin(t, c, bson.D{{Key: "startStreamProcessor", Value: name}})
		var failMsg string
		waitUntil(t, "the "+name+" processor to write or fail", func() bool {
			state, code, msg := processorState(t, c, name)
			if msg != "" {
				if code != 421 || !strings.Contains(msg, "db."+name) || !strings.Contains(msg, strings.TrimSuffix(strings.TrimPrefix(uri, "mongodb://"), "/")) {
					t.Errorf("%s processor: %s %d %q", name, state, code, msg)
				}
				failMsg = msg
				return true
			}
			n, _ := fc.Database("db").Collection(name).CountDocuments(t.Context(), bson.D{})
			return n == 2
		})
		switch {
		case name == "authed" && failMsg == "":
			t.Error("FerretDB accepted a SCRAM-SHA-256 login: the authed case no longer shows a refused login")
		case name == "plain" && failMsg != "":
			t.Errorf("the PLAIN connection's processor failed: %q", failMsg)
		}
		for _, cmd := range []bson.D{{{Key: "getStreamProcessor", Value: name}}, {{Key: "getStreamProcessorStats", Value: name}, {Key: "options", Value: bson.D{{Key: "verbose", Value: true}}}}} {
			m, err := runAdmin(t, c, cmd)
			if err != nil {
				t.Fatalf("%v: %v", cmd, err)
			}
			replies = append(replies, fmt.Sprint(m))
		}
		_, body := a.call("GET", "/streams/default/connections/"+name, nil)
		replies = append(replies, string(body))
		_, body = a.call("GET", "/streams/default/processor/"+name, nil)
		replies = append(replies, string(body))
		mustAdmin(t, c, bson.D{{Key: "stopStreamProcessor", Value: name}})
	}
	for _, cmd := range []bson.D{{{Key: "listStreamProcessors", Value: 1}}, {{Key: "listStreamConnections", Value: 1}}} {
		m, err := runAdmin(t, c, cmd)
		if err != nil {
			t.Fatalf("%v: %v", cmd, err)
		}
		replies = append(replies, fmt.Sprint(m))
	}
	_, body := a.call("GET", "/streams/default/connections", nil)
	replies = append(replies, string(body))
	audit, _ := filepath.Glob(filepath.Join(s.DataDir, "audit", "*"))
	for _, f := range audit {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		replies = append(replies, string(b))
	}
	if len(audit) == 0 {
		t.Error("no audit files to check")
	}
	for i, r := range append(replies, s.Stdout.String(), s.Stderr.String()) {
		if strings.Contains(r, password) {
			t.Errorf("reply, stats, audit record or log %d carries the password: %s", i, r)
		}
	}
	listed := replies[len(replies)-2-len(audit)]
	if !strings.Contains(listed, `"fdb"`) || !strings.Contains(listed, `"plain"`) || strings.Contains(listed, "spiplain") {
		t.Errorf("listStreamConnections: %s", listed)
	}
}

// waitOutputs waits until a processor's stats count n outputs and dlq dead letters.
func waitOutputs(t *testing.T, c *mongo.Client, name string, n, dlq int64) {
	t.Helper()
	waitUntil(t, fmt.Sprintf("%s: %d outputs and %d dead letters", name, n, dlq), func() bool {
		var st struct {
			Stats struct {
				OutputMessageCount, DlqMessageCount int64
			}
		}
		if err := c.Database("admin").RunCommand(t.Context(), bson.D{{Key: "getStreamProcessorStats", Value: name}}).Decode(&st); err != nil {
			t.Fatal(err)
		}
		if state, code, msg := processorState(t, c, name); state == "FAILED" {
			t.Fatalf("%s failed: %d %s", name, code, msg)
		}
		return st.Stats.OutputMessageCount == n && st.Stats.DlqMessageCount == dlq
	})
}

// collection returns a collection's documents as relaxed Extended JSON with sorted keys, by
// _id, without the stream metadata.
func collection(t *testing.T, c *mongo.Client, db, coll string) []string {
	t.Helper()
	cur, err := c.Database(db).Collection(coll).Find(t.Context(), bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for cur.Next(t.Context()) {
		var m map[string]any
		b, err := bson.MarshalExtJSON(cur.Current, false, false)
		if err == nil {
			err = json.Unmarshal(b, &m)
		}
		if err != nil {
			t.Fatal(err)
		}
		delete(m, "_stream_meta")
		delete(m, "_ts")        // the event time spid gives each document
		j, _ := json.Marshal(m) // encoding/json sorts map keys
		out = append(out, string(j))
	}
	if err := cur.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
