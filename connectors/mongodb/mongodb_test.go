package mongodb

import (
	"errors"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/spi-streams/spi/connectors"
	"github.com/spi-streams/spi/pipeline"
	"github.com/spi-streams/spi/store"
)

func raw(t *testing.T, d bson.D) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func env(role string, typ string) connectors.Env {
	return connectors.Env{Processor: "p", Connection: &store.Connection{Name: "c", Type: store.TypeCluster, Cluster: &store.Cluster{
		ConnectionString: "mongodb://db1.example:27017,db2.example:27018/?replicaSet=rs0",
		DBRoleToExecute:  store.RoleToExecute{Role: role, Type: typ},
		Username:         "spuser", Password: "s3cr3t-pw",
	}}}
}

func mergeStage(t *testing.T, extra ...bson.E) *pipeline.Sink {
	opts := bson.D{{Key: "into", Value: bson.D{{Key: "connectionName", Value: "c"}, {Key: "db", Value: "db"}, {Key: "coll", Value: "coll"}}}}
	opts = append(opts, extra...)
	return &pipeline.Sink{Stage: "$merge", ConnectionName: "c", Options: raw(t, opts)}
}

func newSink(t *testing.T, extra ...bson.E) *Sink {
	t.Helper()
	s, err := NewSink(env("readWriteAnyDatabase", "BUILT_IN"), mergeStage(t, extra...))
	if err != nil {
		t.Fatal(err)
	}
	return s.(*Sink)
}

func ext(t *testing.T, v any) string {
	t.Helper()
	var r bson.Raw
	switch x := v.(type) {
	case bson.Raw:
		r = x
	default:
		t.Fatalf("not raw BSON: %T", v)
	}
	return r.String()
}

// The write model of each supported mode, as MongoDB's $merge manual describes it.
func TestWriteModels(t *testing.T) {
	doc := bson.D{{Key: "_id", Value: 1}, {Key: "k", Value: "a"}, {Key: "n", Value: 2}}
	for _, tc := range []struct {
		wm, wnm      string
		on           any
		kind, filter string
		update       string
		upsert       bool
	}{
		{"", "", nil, "update", `{"_id": {"$numberInt":"1"}}`, `{"$set": {"k": "a","n": {"$numberInt":"2"}}}`, true},
		{"merge", "discard", nil, "update", `{"_id": {"$numberInt":"1"}}`, `{"$set": {"k": "a","n": {"$numberInt":"2"}}}`, false},
		{"replace", "insert", nil, "replace", `{"_id": {"$numberInt":"1"}}`, `{"_id": {"$numberInt":"1"},"k": "a","n": {"$numberInt":"2"}}`, true},
		{"replace", "discard", "k", "replace", `{"k": "a"}`, `{"_id": {"$numberInt":"1"},"k": "a","n": {"$numberInt":"2"}}`, false},
		{"keepExisting", "insert", bson.A{"k", "_id"}, "update", `{"k": "a","_id": {"$numberInt":"1"}}`, `{"$setOnInsert": {"k": "a","n": {"$numberInt":"2"}}}`, true},
		{"merge", "insert", "k", "update", `{"k": "a"}`, `{"$set": {"_id": {"$numberInt":"1"},"k": "a","n": {"$numberInt":"2"}}}`, true},
	} {
		var extra []bson.E
		if tc.wm != "" {
			extra = append(extra, bson.E{Key: "whenMatched", Value: tc.wm}, bson.E{Key: "whenNotMatched", Value: tc.wnm})
		}
		if tc.on != nil {
			extra = append(extra, bson.E{Key: "on", Value: tc.on})
		}
		s := newSink(t, extra...)
		m, key, reason := s.testModel(raw(t, doc))
		if reason != "" || key == "" {
			t.Fatalf("%s/%s: reason %q key %q", tc.wm, tc.wnm, reason, key)
		}
		var filter, update string
		var upsert *bool
		switch x := m.(type) {
		case *mongo.UpdateOneModel:
			if tc.kind != "update" {
				t.Errorf("%s/%s: an update, want %s", tc.wm, tc.wnm, tc.kind)
			}
			filter, update, upsert = ext(t, x.Filter), ext(t, x.Update), x.Upsert
		case *mongo.ReplaceOneModel:
			if tc.kind != "replace" {
				t.Errorf("%s/%s: a replacement, want %s", tc.wm, tc.wnm, tc.kind)
			}
			filter, update, upsert = ext(t, x.Filter), ext(t, x.Replacement), x.Upsert
		default:
			t.Fatalf("model %T", m)
		}
		if filter != tc.filter || update != tc.update || upsert == nil || *upsert != tc.upsert {
			t.Errorf("%s/%s on %v: filter %s update %s upsert %v; want %s %s %v", tc.wm, tc.wnm, tc.on, filter, update, *upsert, tc.filter, tc.update, tc.upsert)
		}
	}
}

// A document holding only its _id still makes a valid update (an empty $set is refused by mongod).
func TestOnlyIDDocument(t *testing.T) {
	s := newSink(t)
	m, _, _ := s.testModel(raw(t, bson.D{{Key: "_id", Value: 7}}))
	if got := ext(t, m.(*mongo.UpdateOneModel).Update); got != `{"$set": {"_id": {"$numberInt":"7"}}}` {
		t.Errorf("update %s", got)
	}
}

// A document without _id gets a new ObjectId when on holds _id, as mongod's $merge does.
func TestGeneratedID(t *testing.T) {
	s := newSink(t, bson.E{Key: "whenMatched", Value: "replace"})
	m, _, reason := s.testModel(raw(t, bson.D{{Key: "n", Value: 1}}))
	if reason != "" {
		t.Fatal(reason)
	}
	r := m.(*mongo.ReplaceOneModel)
	id, ok := r.Filter.(bson.Raw).Lookup("_id").ObjectIDOK()
	if !ok || r.Replacement.(bson.Raw).Lookup("_id").ObjectID() != id || r.Replacement.(bson.Raw).Lookup("n").Int32() != 1 {
		t.Errorf("filter %v replacement %v", r.Filter, r.Replacement)
	}
}

// A document without an on field, or with a null or array one, is a dead-letter record, as
// mongod refuses it; writes to a repeated key go to successive rounds, in the batch's order.
func TestPlanDeadLettersAndRounds(t *testing.T) {
	s := newSink(t, bson.E{Key: "on", Value: bson.A{"k", "a.b"}})
	docs := []bson.Raw{
		raw(t, bson.D{{Key: "k", Value: 1}, {Key: "a", Value: bson.D{{Key: "b", Value: 1}}}, {Key: "v", Value: "first"}}),
		raw(t, bson.D{{Key: "k", Value: 2}, {Key: "a", Value: bson.D{{Key: "b", Value: 1}}}}),
		raw(t, bson.D{{Key: "k", Value: 1}, {Key: "a", Value: bson.D{{Key: "b", Value: 1}}}, {Key: "v", Value: "second"}}),
		raw(t, bson.D{{Key: "k", Value: 3}}),
		raw(t, bson.D{{Key: "k", Value: nil}, {Key: "a", Value: bson.D{{Key: "b", Value: 1}}}}),
		raw(t, bson.D{{Key: "k", Value: bson.A{1}}, {Key: "a", Value: bson.D{{Key: "b", Value: 1}}}}),
		raw(t, bson.D{{Key: "k", Value: 1}, {Key: "a", Value: bson.D{{Key: "b", Value: 1}}}, {Key: "v", Value: "third"}}),
		raw(t, bson.D{{Key: "k", Value: int64(1)}, {Key: "a", Value: bson.D{{Key: "b", Value: 1}}}}),
	}
	var items []item
	var rejected []bson.Raw
	for _, d := range docs {
		_, it, reason := s.resolve(d)
		if reason != "" {
			rejected = append(rejected, s.deadLetter(d, reason))
			continue
		}
		items = append(items, it)
	}
	rounds := rounds(items)
	if len(rejected) != 3 {
		t.Fatalf("%d dead letters, want 3", len(rejected))
	}
	for _, r := range rejected {
		reason, _ := r.Lookup("errInfo", "reason").StringValueOK()
		if !strings.Contains(reason, "on field") || r.Lookup("operatorName").StringValue() != "$merge" || r.Lookup("processorName").StringValue() != "p" {
			t.Errorf("dead letter %s", r)
		}
	}
	var sizes []int
	for _, r := range rounds {
		sizes = append(sizes, len(r))
	}
	// k=1 three times: rounds 0, 1, 2; k=2 and k=1 as int64 (another key) in round 0.
	if len(rounds) != 3 || sizes[0] != 3 || sizes[1] != 1 || sizes[2] != 1 {
		t.Fatalf("round sizes %v", sizes)
	}
	if v := rounds[1][0].doc.Lookup("v").StringValue(); v != "second" {
		t.Errorf("round 1 writes %q", v)
	}
	if v := rounds[2][0].doc.Lookup("v").StringValue(); v != "third" {
		t.Errorf("round 2 writes %q", v)
	}
}

// Options $merge cannot run are refused at create with 420 naming the field ($merge.<field>);
// nothing is accepted that would silently misbehave.
func TestRefusedOptions(t *testing.T) {
	setX := bson.A{bson.D{{Key: "$set", Value: bson.D{{Key: "x", Value: 1}}}}}
	for _, tc := range []struct {
		extra []bson.E
		into  bson.D
		want  string
	}{
		{extra: []bson.E{{Key: "whenMatched", Value: "fail"}, {Key: "whenNotMatched", Value: "discard"}}, want: "$merge.whenMatched: whenMatched fail with whenNotMatched discard is not a supported combination"},
		{extra: []bson.E{{Key: "whenMatched", Value: "fail"}, {Key: "whenNotMatched", Value: "fail"}}, want: "code 51181"},
		{extra: []bson.E{{Key: "whenMatched", Value: "keepExisting"}, {Key: "whenNotMatched", Value: "fail"}}, want: "not a supported combination"},
		{extra: []bson.E{{Key: "whenMatched", Value: "keepExisting"}, {Key: "whenNotMatched", Value: "discard"}}, want: "not a supported combination"},
		{extra: []bson.E{{Key: "whenMatched", Value: "upsert"}}, want: `$merge.whenMatched: "upsert" is not a mode`},
		{extra: []bson.E{{Key: "whenNotMatched", Value: "skip"}}, want: `$merge.whenNotMatched: "skip" is not a mode`},
		{extra: []bson.E{{Key: "whenMatched", Value: bson.A{bson.D{{Key: "$match", Value: bson.D{}}}}}}, want: "$merge.whenMatched: stage 0: $match is not allowed in an update pipeline"},
		{extra: []bson.E{{Key: "whenMatched", Value: bson.A{bson.D{{Key: "$set", Value: bson.D{{Key: "x", Value: "$$nope"}}}}}}}, want: "$merge.whenMatched: stage 0: "},
		{extra: []bson.E{{Key: "whenMatched", Value: bson.A{}}}, want: "$merge.whenMatched: must hold at least one stage"},
		{extra: []bson.E{{Key: "whenMatched", Value: bson.D{{Key: "$nope", Value: 1}}}}, want: "$merge.whenMatched: "},
		{extra: []bson.E{{Key: "let", Value: bson.D{{Key: "x", Value: 1}}}}, want: "$merge.let: is only used by a whenMatched pipeline"},
		{extra: []bson.E{{Key: "whenMatched", Value: setX}, {Key: "let", Value: bson.D{{Key: "new", Value: 1}}}}, want: "$merge.let.new: new is reserved"},
		{extra: []bson.E{{Key: "whenMatched", Value: setX}, {Key: "let", Value: bson.D{{Key: "Bad", Value: 1}}}}, want: "$merge.let: "},
		{extra: []bson.E{{Key: "whenMatched", Value: setX}, {Key: "let", Value: 3}}, want: "$merge.let: must be a document"},
		{extra: []bson.E{{Key: "parallelism", Value: 0}}, want: "$merge.parallelism: must be an integer from 1 to 16"},
		{extra: []bson.E{{Key: "batchSize", Value: 0}}, want: "$merge.batchSize: must be an integer from 1 to 100000"},
		{extra: []bson.E{{Key: "batchSize", Value: "many"}}, want: "$merge.batchSize"},
		{into: bson.D{{Key: "connectionName", Value: "c"}, {Key: "db", Value: "$"}, {Key: "coll", Value: "coll"}}, want: "$merge.into.db: "},
		{into: bson.D{{Key: "connectionName", Value: "c"}, {Key: "db", Value: "a.b"}, {Key: "coll", Value: "$c"}}, want: "$merge.into.db: \"a.b\" is not a valid database name"},
		{into: bson.D{{Key: "connectionName", Value: "c"}, {Key: "db", Value: "db"}, {Key: "coll", Value: "c$d"}}, want: "$merge.into.coll: \"c$d\" is not a valid collection name: MongoDB refuses $"},
		{into: bson.D{{Key: "connectionName", Value: "c"}, {Key: "db", Value: "a b"}, {Key: "coll", Value: "c"}}, want: "$merge.into.db: \"a b\" is not a valid database name"},
		{into: bson.D{{Key: "connectionName", Value: "c"}, {Key: "db", Value: "$d"}, {Key: "coll", Value: "system.x"}}, want: "$merge.into.coll: \"system.x\" is not a valid collection name: the system. prefix"},
		{into: bson.D{{Key: "connectionName", Value: "c"}, {Key: "db", Value: "db"}, {Key: "coll", Value: bson.D{{Key: "$nope", Value: bson.A{"a", "b"}}}}}, want: "$merge.into.coll: "},
		{into: bson.D{{Key: "connectionName", Value: "c"}, {Key: "db", Value: "db"}, {Key: "coll", Value: 3}}, want: "$merge.into.coll: is required"},
	} {
		st := mergeStage(t, tc.extra...)
		if tc.into != nil {
			st.Options = raw(t, append(bson.D{{Key: "into", Value: tc.into}}, tc.extra...))
		}
		_, err := NewSink(env("readWriteAnyDatabase", "BUILT_IN"), st)
		var ce *connectors.Error
		if !errors.As(err, &ce) || ce.Code != connectors.CodeInvalidOptions || ce.Retryable || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: %v, want 420 with %q", tc.extra, tc.into, err, tc.want)
		}
	}
	if _, err := NewSink(env("readWriteAnyDatabase", "BUILT_IN"), &pipeline.Sink{Stage: "$https", Options: raw(t, bson.D{})}); err == nil || !strings.Contains(err.Error(), "$https to a Cluster connection is not supported") {
		t.Errorf("$https: %v", err)
	}
}

// The execute-as role is checked before anything is built: readAnyDatabase may not write.
func TestExecuteAsDenied(t *testing.T) {
	_, err := NewSink(env("readAnyDatabase", "BUILT_IN"), mergeStage(t))
	var ce *connectors.Error
	if !errors.As(err, &ce) || ce.Code != connectors.CodeInvalidOptions || !strings.Contains(err.Error(), "execute-as role readAnyDatabase may not") || !strings.Contains(err.Error(), "db.coll") {
		t.Fatalf("%v", err)
	}
	if _, err := NewSink(env("readWriteAnyDatabase", "BUILT_IN"), mergeStage(t, bson.E{Key: "whenMatched", Value: "replace"}, bson.E{Key: "whenNotMatched", Value: "discard"})); err != nil {
		t.Fatal(err)
	}
	// System collections are outside readWriteAnyDatabase (and refused as targets).
	st := mergeStage(t)
	st.Options = raw(t, bson.D{{Key: "into", Value: bson.D{{Key: "connectionName", Value: "c"}, {Key: "db", Value: "admin"}, {Key: "coll", Value: "system.users"}}}})
	if _, err := NewSink(env("readWriteAnyDatabase", "BUILT_IN"), st); err == nil {
		t.Fatal("system.users accepted")
	}
}

// Messages name the deployment's hosts and namespace, never a credential, even when a
// connection string carries one.
func TestMessagesCarryNoCredential(t *testing.T) {
	for cs, want := range map[string]string{
		"mongodb://alice:hunter2@h1.example:27017,h2.example/db?authSource=admin": "h1.example:27017,h2.example",
		"mongodb+srv://alice:hunter2@cluster0.example.net/?retryWrites=true":      "cluster0.example.net",
		"mongodb://alice:hunter2@[::1]:27017":                                     "[::1]:27017",
		"mongodb://alice:p%40ss@h3:1/x":                                           "h3:1",
	} {
		if got := hostsOf(cs); got != want || strings.Contains(got, "hunter2") || strings.Contains(got, "alice") {
			t.Errorf("hostsOf(%q) = %q, want %q", cs, got, want)
		}
	}
	// A mongodb+srv:// string is not resolved at create: the constructor does no I/O.
	e := env("readWriteAnyDatabase", "BUILT_IN")
	e.Connection.Cluster.ConnectionString = "mongodb+srv://cluster0.invalid/?retryWrites=true"
	if _, err := NewSink(e, mergeStage(t)); err != nil {
		t.Errorf("mongodb+srv: %v", err)
	}
	s := newSink(t)
	err := s.connError(errors.New("auth failed for spuser with s3cr3t-pw"))
	var ce *connectors.Error
	if !errors.As(err, &ce) || !ce.Retryable || ce.Code != connectors.CodeAtlasConnection {
		t.Fatalf("%#v", err)
	}
	msg := err.Error()
	if strings.Contains(msg, "s3cr3t-pw") || !strings.Contains(msg, "db.coll") || !strings.Contains(msg, "db1.example:27017,db2.example:27018") {
		t.Errorf("message %q", msg)
	}
}

// A deployment that cannot be reached fails the batch with a retryable 421 that names its host
// and the namespace, and never the password.
func TestUnreachableDeployment(t *testing.T) {
	e := env("readWriteAnyDatabase", "BUILT_IN")
	e.Connection.Cluster.ConnectionString = "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300&connectTimeoutMS=300"
	s, err := NewSink(e, mergeStage(t))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	_, err = s.WriteBatch(t.Context(), []bson.Raw{raw(t, bson.D{{Key: "_id", Value: 1}})})
	var ce *connectors.Error
	if !errors.As(err, &ce) || !ce.Retryable || ce.Code != connectors.CodeAtlasConnection {
		t.Fatalf("%v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "db.coll on 127.0.0.1:1") || strings.Contains(msg, "s3cr3t-pw") {
		t.Errorf("message %q", msg)
	}
}

// A document over MongoDB's 16 MiB limit is a dead letter, not a failed batch.
func TestDocumentTooLarge(t *testing.T) {
	s := newSink(t)
	big := raw(t, bson.D{{Key: "_id", Value: 1}, {Key: "s", Value: strings.Repeat("x", maxBSONSize)}})
	if _, _, reason := s.testModel(big); !strings.Contains(reason, "over MongoDB's 16 MiB limit") {
		t.Errorf("reason %q", reason)
	}
}

// testModel resolves d and builds its write as if no document matched.
func (s *Sink) testModel(d bson.Raw) (mongo.WriteModel, string, string) {
	t, it, reason := s.resolve(d)
	if reason != "" {
		return nil, "", reason
	}
	m, reason := s.model(t, it, nil)
	return m, it.key, reason
}
