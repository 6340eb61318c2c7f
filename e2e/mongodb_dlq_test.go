package e2e

import (
	"errors"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// options.dlq {connectionName, db, coll} through a Cluster connection (embedded FerretDB): the
// dead-letter collection gets one record per bad input, in spec §4.5's shape (processorName,
// dlqTime, operatorName, errInfo.reason, doc, _stream_meta), as many as stats' dlqMessageCount;
// a connection whose execute-as role may not insert there (readAnyDatabase) is refused with 420.
func TestDeadLetterCollection(t *testing.T) {
	t.Parallel()
	uri := startFerretDB(t)
	fc := connectFerret(t, uri)
	s := startSpid(t, "--checkpoint-interval", "300ms", "--processor-retry-timeout", "3s")
	a := newAPI(t, s.Creds(t))
	for _, c := range []struct{ name, role string }{{"fdb", "readWriteAnyDatabase"}, {"ro", "readAnyDatabase"}} {
		a.ok("POST", "/streams/default/connections", map[string]any{"name": c.name, "type": "Cluster", "clusterName": "ferret",
			"connectionString": uri, "dbRoleToExecute": map[string]any{"role": c.role, "type": "BUILT_IN"}})
	}
	c := connectGo(t, s.Admin(t, "", ""))

	// Bad inputs: i 2 and 4 divide by zero in $addFields; i 5 has a time field that is not a
	// date ($source's timeField). The others are merged into db.good.
	input := bson.A{
		bson.D{{Key: "_id", Value: 1}, {Key: "i", Value: 1}, {Key: "zero", Value: 1}, {Key: "t", Value: "2024-01-01T00:00:00Z"}},
		bson.D{{Key: "_id", Value: 2}, {Key: "i", Value: 2}, {Key: "zero", Value: 0}, {Key: "t", Value: "2024-01-01T00:00:01Z"}},
		bson.D{{Key: "_id", Value: 3}, {Key: "i", Value: 3}, {Key: "zero", Value: 2}, {Key: "t", Value: "2024-01-01T00:00:02Z"}},
		bson.D{{Key: "_id", Value: 4}, {Key: "i", Value: 4}, {Key: "zero", Value: 0}, {Key: "t", Value: "2024-01-01T00:00:03Z"}},
		bson.D{{Key: "_id", Value: 5}, {Key: "i", Value: 5}, {Key: "zero", Value: 1}, {Key: "t", Value: "not a date"}},
	}
	source := bson.D{{Key: "$source", Value: bson.D{{Key: "documents", Value: input},
		{Key: "timeField", Value: bson.D{{Key: "$toDate", Value: "$t"}}}}}}
	addFields := bson.D{{Key: "$addFields", Value: bson.D{{Key: "x", Value: bson.D{{Key: "$divide", Value: bson.A{1, "$zero"}}}}}}}
	dlqOpt := func(conn string) bson.D {
		return bson.D{{Key: "dlq", Value: bson.D{{Key: "connectionName", Value: conn}, {Key: "db", Value: "errors"}, {Key: "coll", Value: "dlq"}}}}
	}
	for _, tc := range []struct {
		name string
		sink bson.D
		out  int64
	}{
		{"merged", bson.D{{Key: "$merge", Value: bson.D{{Key: "into", Value: bson.D{{Key: "connectionName", Value: "fdb"}, {Key: "db", Value: "db"}, {Key: "coll", Value: "good"}}}}}}, 2},
		{"discarded", bson.D{{Key: "$emit", Value: bson.D{{Key: "connectionName", Value: "__discard"}}}}, 2},
	} {
		mustAdmin(t, c, bson.D{{Key: "createStreamProcessor", Value: tc.name}, {Key: "pipeline", Value: bson.A{source, addFields, tc.sink}}, {Key: "options", Value: dlqOpt("fdb")}})
		mustAdmin(t, c, bson.D{{Key: "startStreamProcessor", Value: tc.name}})
		waitOutputs(t, c, tc.name, tc.out, 3)

		cur, err := fc.Database("errors").Collection("dlq").Find(t.Context(), bson.D{{Key: "processorName", Value: tc.name}})
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
		if len(recs) != 3 {
			t.Fatalf("%s: %d dead-letter records, want 3: %v", tc.name, len(recs), recs)
		}
		byID := map[int32]bson.Raw{}
		for _, r := range recs {
			for _, f := range []string{"processorName", "dlqTime", "operatorName", "errInfo", "doc", "_stream_meta"} {
				if _, err := r.LookupErr(f); err != nil {
					t.Errorf("%s: record without %s: %s", tc.name, f, r)
				}
			}
			if v := r.Lookup("dlqTime"); v.Type != bson.TypeDateTime {
				t.Errorf("%s: dlqTime is %s: %s", tc.name, v.Type, r)
			}
			reason, ok := r.Lookup("errInfo", "reason").StringValueOK()
			if !ok || reason == "" {
				t.Errorf("%s: errInfo.reason missing: %s", tc.name, r)
			}
			id, _ := r.Lookup("doc", "_id").AsInt64OK()
			byID[int32(id)] = r
		}
		for id, op := range map[int32]string{2: "$addFields", 4: "$addFields", 5: "$source"} {
			r, ok := byID[id]
			if !ok {
				t.Errorf("%s: no dead-letter record for input %d: %v", tc.name, id, recs)
				continue
			}
			if got := r.Lookup("operatorName").StringValue(); got != op {
				t.Errorf("%s: input %d: operatorName %q, want %q", tc.name, id, got, op)
			}
			if got := r.Lookup("doc", "i"); got.AsInt64() != int64(id) {
				t.Errorf("%s: input %d: doc is %s", tc.name, id, r.Lookup("doc"))
			}
		}
		t.Logf("%s: a dead-letter record: %s", tc.name, byID[2])
	}
	if got := collection(t, fc, "db", "good"); len(got) != 2 {
		t.Errorf("db.good: %v, want inputs 1 and 3", got)
	}

	// A record the deployment refuses (here a unique index of the dead-letter collection on
	// doc.zero, which inputs 2 and 4 share) is dropped with a warning, never retried; the
	// others are written, only the refused one is reported, and the processor keeps running.
	idx := fc.Database("errors").Collection("dlqidx")
	if _, err := idx.Indexes().CreateOne(t.Context(), mongo.IndexModel{Keys: bson.D{{Key: "doc.zero", Value: 1}}, Options: options.Index().SetUnique(true)}); err != nil {
		t.Fatal(err)
	}
	idxOpt := bson.D{{Key: "dlq", Value: bson.D{{Key: "connectionName", Value: "fdb"}, {Key: "db", Value: "errors"}, {Key: "coll", Value: "dlqidx"}}}}
	mustAdmin(t, c, bson.D{{Key: "createStreamProcessor", Value: "refusing"}, {Key: "pipeline", Value: bson.A{source, addFields,
		bson.D{{Key: "$emit", Value: bson.D{{Key: "connectionName", Value: "__discard"}}}}}}, {Key: "options", Value: idxOpt}})
	mustAdmin(t, c, bson.D{{Key: "startStreamProcessor", Value: "refusing"}})
	waitOutputs(t, c, "refusing", 2, 3)
	waitUntil(t, "the refused record's warning", func() bool {
		return strings.Contains(s.Stdout.String()+s.Stderr.String(), "dead-letter record dropped")
	})
	if n, err := idx.CountDocuments(t.Context(), bson.D{}); err != nil || n != 2 {
		t.Errorf("errors.dlqidx: %d records (%v), want 2 (one of inputs 2 and 4 refused)", n, err)
	}
	// Exactly one record is reported refused, the one the collection lacks. (FerretDB reports a
	// partly failed insert batch's errors at their true indices, unlike its update batches, so
	// this does not exercise the writer's resending each record of such a batch alone.)
	if n := strings.Count(s.Stdout.String()+s.Stderr.String(), "dead-letter record dropped"); n != 1 {
		t.Errorf("%d records reported dropped, want 1", n)
	}
	if state, code, msg := processorState(t, c, "refusing"); state != "STARTED" {
		t.Errorf("refusing: %s %d %s", state, code, msg)
	}

	// A connection whose execute-as role may not insert into the dead-letter collection: 420
	// at create, and nothing is written.
	pipe := bson.A{source, addFields, bson.D{{Key: "$emit", Value: bson.D{{Key: "connectionName", Value: "__discard"}}}}}
	_, err := runAdmin(t, c, bson.D{{Key: "createStreamProcessor", Value: "ro"}, {Key: "pipeline", Value: pipe}, {Key: "options", Value: dlqOpt("ro")}})
	var ce mongo.CommandError
	if !errors.As(err, &ce) || ce.Code != 420 || !strings.Contains(ce.Message, "readAnyDatabase") || !strings.Contains(ce.Message, "errors.dlq") {
		t.Errorf("ro: %v, want 420 naming the role and errors.dlq", err)
	}
	if n, err := fc.Database("errors").Collection("dlq").CountDocuments(t.Context(), bson.D{{Key: "processorName", Value: "ro"}}); err != nil || n != 0 {
		t.Errorf("ro: %d records written (%v)", n, err)
	}
}
