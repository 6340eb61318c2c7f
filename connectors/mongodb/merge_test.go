package mongodb

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/spi-streams/spi/authz"
	"github.com/spi-streams/spi/connectors"
	"github.com/spi-streams/spi/pipeline"
)

func dynamicSink(t *testing.T, role string, extra ...bson.E) *Sink {
	t.Helper()
	opts := bson.D{{Key: "into", Value: bson.D{{Key: "connectionName", Value: "c"}, {Key: "db", Value: "$d"}, {Key: "coll", Value: bson.D{{Key: "$concat", Value: bson.A{"c_", "$k"}}}}}}}
	s, err := NewSink(env(role, "BUILT_IN"), &pipeline.Sink{Stage: "$merge", ConnectionName: "c", Options: raw(t, append(opts, extra...))})
	if err != nil {
		t.Fatal(err)
	}
	return s.(*Sink)
}

// A dynamic target is checked against the execute-as role per namespace, not at create: a
// readAnyDatabase connection is accepted, and each document it would write is a dead letter
// whose reason names the namespace, the role and the missing action.
func TestDynamicTargetDenied(t *testing.T) {
	s := dynamicSink(t, "readAnyDatabase")
	for range 2 { // the second time from the cached decision
		_, _, reason := s.resolve(raw(t, bson.D{{Key: "_id", Value: 1}, {Key: "d", Value: "app"}, {Key: "k", Value: "x"}}))
		if want := "$merge into app.c_x: execute-as role readAnyDatabase may not insert into app.c_x: it lacks the INSERT action there"; !strings.Contains(reason, want) {
			t.Errorf("reason %q, want %q", reason, want)
		}
	}
	s = dynamicSink(t, "readWriteAnyDatabase")
	for _, tc := range []struct {
		doc  bson.D
		want string
	}{
		{bson.D{{Key: "d", Value: "app"}, {Key: "k", Value: 1}}, "$merge.into.coll: "},
		{bson.D{{Key: "d", Value: 7}, {Key: "k", Value: "x"}}, "$merge.into.db must evaluate to a non-empty string, not 32-bit integer"},
		{bson.D{{Key: "k", Value: "x"}}, "$merge.into.db must evaluate to a non-empty string, not missing"},
		{bson.D{{Key: "d", Value: ""}, {Key: "k", Value: "x"}}, "$merge.into.db must evaluate to a non-empty string"},
		{bson.D{{Key: "d", Value: "a.b"}, {Key: "k", Value: "x"}}, `$merge into a.b.c_x: "a.b" is not a valid database name`},
		{bson.D{{Key: "d", Value: "app"}, {Key: "k", Value: "bad$x"}}, `$merge into app.c_bad$x: "c_bad$x" is not a valid collection name: MongoDB refuses $`},
		{bson.D{{Key: "d", Value: "app"}, {Key: "k", Value: "a\x00b"}}, `is not a valid collection name: MongoDB refuses $ and the null character`},
		{bson.D{{Key: "d", Value: strings.Repeat("d", 64)}, {Key: "k", Value: "x"}}, "is longer than MongoDB's 63 bytes"},
		{bson.D{{Key: "d", Value: "app"}, {Key: "k", Value: strings.Repeat("x", 250)}}, "bytes, over MongoDB's 255"},
		{bson.D{{Key: "d", Value: "admin"}, {Key: "k", Value: "x"}}, ""},
		{bson.D{{Key: "d", Value: "local"}, {Key: "k", Value: "x"}}, "execute-as role readWriteAnyDatabase may not insert into local.c_x"},
	} {
		if _, _, reason := s.resolve(raw(t, tc.doc)); (tc.want == "" && reason != "") || !strings.Contains(reason, tc.want) {
			t.Errorf("%v: reason %q, want %q", tc.doc, reason, tc.want)
		}
	}
}

// At most 1,000 distinct targets (spec §9): the 1,001st namespace is a dead letter saying so;
// the namespaces already written keep working.
func TestDynamicTargetLimit(t *testing.T) {
	s := dynamicSink(t, "readWriteAnyDatabase")
	for i := range maxTargets {
		if _, _, reason := s.resolve(raw(t, bson.D{{Key: "_id", Value: i}, {Key: "d", Value: "app"}, {Key: "k", Value: fmt.Sprint(i)}})); reason != "" {
			t.Fatalf("target %d: %s", i, reason)
		}
	}
	_, _, reason := s.resolve(raw(t, bson.D{{Key: "_id", Value: 1}, {Key: "d", Value: "app"}, {Key: "k", Value: "one too many"}}))
	if !strings.Contains(reason, "already writes to 1000 distinct namespaces") {
		t.Errorf("reason %q", reason)
	}
	if _, _, reason := s.resolve(raw(t, bson.D{{Key: "_id", Value: 2}, {Key: "d", Value: "app"}, {Key: "k", Value: "7"}})); reason != "" {
		t.Errorf("a known target: %s", reason)
	}
}

// $$new and let variables are written into the pipeline as literals, and paths into them
// follow; $literal documents are left alone; a missing path is $$REMOVE.
func TestSubstituteVars(t *testing.T) {
	pipe := raw(t, bson.D{{Key: "p", Value: bson.A{
		bson.D{{Key: "$set", Value: bson.D{{Key: "a", Value: "$$new.a"}, {Key: "t", Value: "$$tag"}, {Key: "m", Value: "$$new.nope"},
			{Key: "l", Value: bson.D{{Key: "$literal", Value: "$$new"}}}, {Key: "f", Value: "$a"}, {Key: "r", Value: "$$ROOT.x"}}}},
	}}}).Lookup("p")
	vars := raw(t, bson.D{{Key: "new", Value: bson.D{{Key: "a", Value: 5}}}, {Key: "tag", Value: "v"}})
	out, used := substituteVars(pipe, vars)
	want := `[{"$set": {"a": {"$literal": {"$numberInt":"5"}},"t": {"$literal": "v"},"m": "$$REMOVE","l": {"$literal": "$$new"},"f": "$a","r": "$$ROOT.x"}}]`
	if !used || bson.RawArray(out.Value).String() != want {
		t.Errorf("got %s (used %v)\nwant %s", bson.RawArray(out.Value), used, want)
	}
	stages, err := pipeline.ParseUpdateStages(out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pipeline.ApplyStages(stages, raw(t, bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: 1}, {Key: "x", Value: 2}}))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"_id": {"$numberInt":"1"},"a": {"$numberInt":"5"},"x": {"$numberInt":"2"},"t": "v","l": "$$new","f": {"$numberInt":"1"},"r": {"$numberInt":"2"}}`; got.String() != want {
		t.Errorf("applied: %s\nwant %s", got, want)
	}
}

// The writes of the modes that depend on a match, with and without one.
func TestProbedModels(t *testing.T) {
	doc := raw(t, bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: 2}})
	existing := raw(t, bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: 1}, {Key: "b", Value: 1}})
	for _, tc := range []struct {
		wm, wnm string
		matched bool
		want    string // model type, or the reason's start
	}{
		{"fail", "insert", true, "a document matches"},
		{"fail", "insert", false, "*mongo.ReplaceOneModel"},
		{"replace", "fail", false, "no document matches"},
		{"replace", "fail", true, "*mongo.ReplaceOneModel"},
		{"merge", "fail", true, "*mongo.UpdateOneModel"},
		{"delete", "insert", true, "*mongo.DeleteOneModel"},
		{"delete", "insert", false, "*mongo.ReplaceOneModel"},
		{"delete", "fail", false, "no document matches"},
		{"pipeline", "insert", true, "*mongo.ReplaceOneModel"},
		{"pipeline", "insert", false, "*mongo.ReplaceOneModel"},
		{"pipeline", "discard", false, "<nil>"},
		{"pipeline", "fail", false, "no document matches"},
	} {
		var extra []bson.E
		if tc.wm == "pipeline" {
			extra = append(extra, bson.E{Key: "whenMatched", Value: bson.A{bson.D{{Key: "$set", Value: bson.D{{Key: "x", Value: "$$new.a"}}}}}})
		} else {
			extra = append(extra, bson.E{Key: "whenMatched", Value: tc.wm})
		}
		extra = append(extra, bson.E{Key: "whenNotMatched", Value: tc.wnm})
		s := newSink(t, extra...)
		tg, it, reason := s.resolve(doc)
		if reason != "" {
			t.Fatal(reason)
		}
		matched := map[string]bson.Raw{}
		if tc.matched {
			matched[it.key] = existing
		}
		m, reason := s.model(tg, it, matched)
		got := fmt.Sprintf("%T", m)
		if m == nil {
			got = "<nil>"
		}
		if reason != "" {
			got = reason
		}
		if !strings.Contains(got, tc.want) {
			t.Errorf("%s/%s matched %v: %s, want %s", tc.wm, tc.wnm, tc.matched, got, tc.want)
		}
		if r, ok := m.(*mongo.ReplaceOneModel); ok && tc.wm == "pipeline" && tc.matched {
			if got := r.Replacement.(bson.Raw).String(); got != `{"_id": {"$numberInt":"1"},"a": {"$numberInt":"1"},"b": {"$numberInt":"1"},"x": {"$numberInt":"2"}}` {
				t.Errorf("pipeline replacement %s", got)
			}
		}
	}
}

// MongoDB's naming restrictions (MongoDB manual, "Naming Restrictions"), shared by $merge, the
// time series $emit, options.dlq and $lookup's from: each rule refuses, naming the field.
func TestNamespaceNames(t *testing.T) {
	for _, tc := range []struct {
		db, coll, field, want string
	}{
		{"db", "coll", "", ""},
		{"d-b_1", "c.d-e", "", ""},
		{strings.Repeat("d", 63), "c", "", ""},
		{"", "c", "db", "the database name is empty"},
		{strings.Repeat("d", 64), "c", "db", "longer than MongoDB's 63 bytes"},
		{"a/b", "c", "db", "not a valid database name"},
		{"a\\b", "c", "db", "not a valid database name"},
		{"a.b", "c", "db", "not a valid database name"},
		{"a b", "c", "db", "not a valid database name"},
		{"a\"b", "c", "db", "not a valid database name"},
		{"a$b", "c", "db", "not a valid database name"},
		{"a\x00b", "c", "db", "not a valid database name"},
		{"db", "", "coll", "the collection name is empty"},
		{"db", "c$d", "coll", "MongoDB refuses $"},
		{"db", "$c", "coll", "MongoDB refuses $"},
		{"db", "c\x00d", "coll", "MongoDB refuses $ and the null character"},
		{"db", "system.x", "coll", "the system. prefix is reserved"},
		{"db", strings.Repeat("c", 252), "", ""},
		{"db", strings.Repeat("c", 253), "coll", "256 bytes, over MongoDB's 255"},
	} {
		field, reason := nsNameError(tc.db, tc.coll)
		if field != tc.field || !strings.Contains(reason, tc.want) || (tc.want == "") != (reason == "") {
			t.Errorf("%q.%q: %s %q, want %s %q", tc.db, tc.coll, field, reason, tc.field, tc.want)
		}
	}
}

// The deployment's answers to a bulk write, classified (the e2e test shows InvalidNamespace from
// FerretDB; the other codes need a genuine MongoDB): a command error of a target MongoDB refuses
// is a *refusedTarget carrying every document of the write, never retryable; one of the
// connection or the moment (ShutdownInProgress, 91) and Unauthorized (13) stay a retryable 421;
// write errors become dead letters with the deployment's reason.
func TestOutcome(t *testing.T) {
	s := dynamicSink(t, "readWriteAnyDatabase")
	tg := &target{ns: authz.Namespace{DB: "db", Coll: "c"}}
	origs := []bson.Raw{raw(t, bson.D{{Key: "_id", Value: 1}}), raw(t, bson.D{{Key: "_id", Value: 2}})}
	for _, code := range []int32{20, 73, 166} {
		_, err := s.outcome(tg, mongo.CommandError{Code: code, Name: "X", Message: "no"}, origs)
		var rt *refusedTarget
		if !errors.As(err, &rt) || len(rt.unwritten) != 2 || !strings.Contains(rt.reason, "$merge into db.c: the deployment refuses the target: no (X "+fmt.Sprint(code)+")") {
			t.Errorf("code %d: %v", code, err)
		}
	}
	for _, err := range []error{
		mongo.CommandError{Code: 91, Name: "ShutdownInProgress"},
		mongo.BulkWriteException{WriteErrors: []mongo.BulkWriteError{{WriteError: mongo.WriteError{Index: 0, Code: 13, Message: "not authorized"}}}},
		mongo.BulkWriteException{WriteErrors: []mongo.BulkWriteError{{WriteError: mongo.WriteError{Index: 2, Code: 11000}}}},
	} {
		_, got := s.outcome(tg, err, origs)
		var ce *connectors.Error
		if !errors.As(got, &ce) || !ce.Retryable || ce.Code != connectors.CodeAtlasConnection {
			t.Errorf("%v: %v, want a retryable 421", err, got)
		}
	}
	dead, err := s.outcome(tg, mongo.BulkWriteException{WriteErrors: []mongo.BulkWriteError{{WriteError: mongo.WriteError{Index: 1, Code: 11000, Message: "E11000 duplicate key"}}}}, origs)
	if err != nil || len(dead) != 1 || !strings.Contains(dead[0].String(), "write refused by the deployment: E11000 duplicate key (code 11000)") || dead[0].Lookup("doc", "_id").AsInt64() != 2 {
		t.Errorf("write error: %v %v", dead, err)
	}
}
