package e2e

import (
	"errors"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// badCase is one malformed processor command and the error a client must get.
type badCase struct {
	name     string
	cmd      bson.D
	code     int32
	codeName string
	// msg are substrings of errmsg: the field at fault and the reason.
	msg []string
}

// Bad input to every processor command (issue 9, acceptance 4): each malformed command gets
// its code, codeName and a message naming the field, and spid answers a ping after each. The
// workspace limit (--max-processors) and the operator-state limit (--processor-memory-limit)
// are set low so that both can be hit.
func TestStreamProcessorBadInput(t *testing.T) {
	t.Parallel()
	const maxProcs = 6
	s := startSpid(t, "--max-processors", "6", "--processor-memory-limit", "200000", "--checkpoint-interval", "200ms")
	a := newAPI(t, s.Creds(t))
	a.ok("POST", "/streams/default/connections", map[string]any{
		"name": "cluster0", "type": "Cluster", "clusterName": "c0", "connectionString": "mongodb://db.internal:27017/",
		"dbRoleToExecute": map[string]any{"role": "readWriteAnyDatabase", "type": "BUILT_IN"},
	})
	c := connectGo(t, s.Admin(t, "", ""))

	src := solarSourceD(100, 1)
	good := bson.A{src, emitD("__discard")}
	with := func(stages ...bson.D) bson.A {
		p := bson.A{src}
		for _, st := range stages {
			p = append(p, st)
		}
		return append(p, emitD("__discard"))
	}
	create := func(name any, rest ...bson.E) bson.D {
		return append(bson.D{{Key: "createStreamProcessor", Value: name}}, rest...)
	}
	pipe := func(p any) bson.E { return bson.E{Key: "pipeline", Value: p} }
	opts := func(o ...bson.E) bson.E { return bson.E{Key: "options", Value: bson.D(o)} }

	// The processors the state cases need: one running, one created.
	mustAdmin(t, c, create("running", pipe(good)))
	mustAdmin(t, c, bson.D{{Key: "startStreamProcessor", Value: "running"}})
	mustAdmin(t, c, create("created", pipe(good)))
	long := strings.Repeat("n", 65)

	cases := []badCase{
		// createStreamProcessor: the name
		{"create: name a number", create(int32(5), pipe(good)), 14, "TypeMismatch", []string{"createStreamProcessor", "name must be a string", "int"}},
		{"create: name null", create(nil, pipe(good)), 14, "TypeMismatch", []string{"createStreamProcessor", "name must be a string", "null"}},
		{"create: name empty", create("", pipe(good)), 2, "BadValue", []string{"name must not be empty"}},
		{"create: name over 64 bytes", create(long, pipe(good)), 2, "BadValue", []string{"name", "65 bytes", "limit is 64"}},
		{"create: name with a space", create("a b", pipe(good)), 2, "BadValue", []string{"name", `"a b"`, "not a valid processor name"}},
		{"create: name taken", create("created", pipe(good)), 1000001, "StreamProcessorAlreadyExists", []string{"already exists", "created"}},
		// the pipeline
		{"create: pipeline missing", create("p"), 9, "FailedToParse", []string{"pipeline is required"}},
		{"create: pipeline null", create("p", pipe(nil)), 9, "FailedToParse", []string{"pipeline is required"}},
		{"create: pipeline a string", create("p", pipe("x")), 14, "TypeMismatch", []string{"pipeline must be an array", "string"}},
		{"create: pipeline empty", create("p", pipe(bson.A{})), 9, "FailedToParse", []string{"pipeline"}},
		{"create: no $source", create("p", pipe(bson.A{bson.D{{Key: "$match", Value: bson.D{}}}, emitD("__discard")})), 9, "FailedToParse", []string{"$source"}},
		{"create: no sink", create("p", pipe(bson.A{src})), 9, "FailedToParse", []string{"$emit", "$merge"}},
		{"create: unknown stage", create("p", pipe(with(bson.D{{Key: "$frobnicate", Value: bson.D{}}}))), 9, "FailedToParse", []string{"$frobnicate"}},
		{"create: stage not a document", create("p", pipe(bson.A{src, "x", emitD("__discard")})), 9, "FailedToParse", []string{"stage 1 must be an object", "string"}},
		{"create: bad $match operator", create("p", pipe(with(bson.D{{Key: "$match", Value: bson.D{{Key: "a", Value: bson.D{{Key: "$frob", Value: 1}}}}}}))), 9, "FailedToParse", []string{"$frob"}},
		{"create: window with a bad unit", create("p", pipe(with(bson.D{{Key: "$tumblingWindow", Value: bson.D{
			{Key: "interval", Value: bson.D{{Key: "size", Value: 1}, {Key: "unit", Value: "fortnight"}}},
			{Key: "pipeline", Value: bson.A{}}}}}))), 9, "FailedToParse", []string{"unit", "fortnight"}},
		{"create: source connection missing", create("p", pipe(bson.A{bson.D{{Key: "$source", Value: bson.D{{Key: "connectionName", Value: "nowhere"}}}}, emitD("__discard")})),
			420, "StreamProcessorInvalidOptions", []string{"$source.connectionName", `"nowhere"`}},
		{"create: sink connection missing", create("p", pipe(bson.A{src, bson.D{{Key: "$emit", Value: bson.D{{Key: "connectionName", Value: "nowhere"}, {Key: "topic", Value: "t"}}}}})), 420, "StreamProcessorInvalidOptions", []string{"connectionName", `"nowhere"`}},
		// options
		{"create: options a string", create("p", pipe(good), bson.E{Key: "options", Value: "x"}), 14, "TypeMismatch", []string{"options must be an object"}},
		{"create: dlq a string", create("p", pipe(good), opts(bson.E{Key: "dlq", Value: "x"})), 14, "TypeMismatch", []string{"dlq must be an object"}},
		{"create: dlq without coll", create("p", pipe(good), opts(bson.E{Key: "dlq", Value: bson.D{{Key: "connectionName", Value: "cluster0"}, {Key: "db", Value: "d"}}})),
			2, "BadValue", []string{"dlq", "coll"}},
		{"create: dlq unknown field", create("p", pipe(good), opts(bson.E{Key: "dlq", Value: bson.D{{Key: "connectionName", Value: "cluster0"}, {Key: "collection", Value: "d"}}})),
			2, "BadValue", []string{"dlq.collection"}},
		{"create: dlq connection missing", create("p", pipe(good), opts(bson.E{Key: "dlq", Value: bson.D{{Key: "connectionName", Value: "nowhere"}, {Key: "db", Value: "d"}, {Key: "coll", Value: "c"}}})),
			420, "StreamProcessorInvalidOptions", []string{"dlq.connectionName", `"nowhere"`}},
		{"create: dlq not a Cluster", create("p", pipe(good), opts(bson.E{Key: "dlq", Value: bson.D{{Key: "connectionName", Value: "sample_stream_solar"}, {Key: "db", Value: "d"}, {Key: "coll", Value: "c"}}})),
			420, "StreamProcessorInvalidOptions", []string{"dlq.connectionName", "Cluster"}},
		{"create: tier unknown", create("p", pipe(good), opts(bson.E{Key: "tier", Value: "SP3"})), 420, "StreamProcessorInvalidOptions", []string{"tier", `"SP3" is not a tier`}},
		{"create: tier a number", create("p", pipe(good), opts(bson.E{Key: "tier", Value: int32(10)})), 14, "TypeMismatch", []string{"tier must be a string"}},
		{"create: streamMetaFieldName with $", create("p", pipe(good), opts(bson.E{Key: "streamMetaFieldName", Value: "$meta"})), 2, "BadValue", []string{"streamMetaFieldName", "$meta"}},
		// start, stop, drop, modify
		{"start: missing", bson.D{{Key: "startStreamProcessor", Value: "nope"}}, 1000000, "StreamProcessorDoesNotExist", []string{"does not exist", "nope"}},
		{"start: name null", bson.D{{Key: "startStreamProcessor", Value: nil}}, 14, "TypeMismatch", []string{"startStreamProcessor", "name must be a string"}},
		{"start: already started", bson.D{{Key: "startStreamProcessor", Value: "running"}}, 20, "IllegalOperation", []string{"running", "already started"}},
		{"start: resumeFromCheckpoint a string", bson.D{{Key: "startStreamProcessor", Value: "created"}, {Key: "resumeFromCheckpoint", Value: "no"}}, 14, "TypeMismatch", []string{"resumeFromCheckpoint must be a boolean"}},
		{"start: workers 0", bson.D{{Key: "startStreamProcessor", Value: "created"}, {Key: "workers", Value: int32(0)}}, 2, "BadValue", []string{"workers must be between"}},
		{"start: tier unknown", bson.D{{Key: "startStreamProcessor", Value: "created"}, {Key: "tier", Value: "SP7"}}, 420, "StreamProcessorInvalidOptions", []string{"tier", `"SP7" is not a tier`}},
		{"stop: not started", bson.D{{Key: "stopStreamProcessor", Value: "created"}}, 20, "IllegalOperation", []string{"created", "not started"}},
		{"stop: missing", bson.D{{Key: "stopStreamProcessor", Value: "nope"}}, 1000000, "StreamProcessorDoesNotExist", []string{"nope"}},
		{"drop: missing", bson.D{{Key: "dropStreamProcessor", Value: "nope"}}, 1000000, "StreamProcessorDoesNotExist", []string{"nope"}},
		{"drop: name an object", bson.D{{Key: "dropStreamProcessor", Value: bson.D{}}}, 14, "TypeMismatch", []string{"dropStreamProcessor", "name must be a string"}},
		{"modify: running", bson.D{{Key: "modifyStreamProcessor", Value: "running"}, pipe(with(bson.D{{Key: "$match", Value: bson.D{}}}))}, 20, "IllegalOperation", []string{"running", "stop it before modifying"}},
		{"modify: nothing", bson.D{{Key: "modifyStreamProcessor", Value: "created"}}, 2, "BadValue", []string{"nothing to modify"}},
		{"modify: rename over 64 bytes", bson.D{{Key: "modifyStreamProcessor", Value: "created"}, {Key: "name", Value: long}}, 2, "BadValue", []string{"name", "limit is 64"}},
		{"modify: rename onto another", bson.D{{Key: "modifyStreamProcessor", Value: "created"}, {Key: "name", Value: "running"}}, 1000001, "StreamProcessorAlreadyExists", []string{"running"}},
		{"modify: pipeline a number", bson.D{{Key: "modifyStreamProcessor", Value: "created"}, pipe(int32(1))}, 14, "TypeMismatch", []string{"pipeline must be an array"}},
		// stats, get, list
		{"stats: scale 0", bson.D{{Key: "getStreamProcessorStats", Value: "running"}, {Key: "scale", Value: int32(0)}}, 2, "BadValue", []string{"scale must be between"}},
		{"stats: scale a string", bson.D{{Key: "getStreamProcessorStats", Value: "running"}, {Key: "scale", Value: "kb"}}, 14, "TypeMismatch", []string{"scale must be an integer"}},
		{"stats: verbose a number", bson.D{{Key: "getStreamProcessorStats", Value: "running"}, opts(bson.E{Key: "verbose", Value: int32(1)})}, 14, "TypeMismatch", []string{"verbose must be a boolean"}},
		{"get: missing", bson.D{{Key: "getStreamProcessor", Value: "nope"}}, 1000000, "StreamProcessorDoesNotExist", []string{"nope"}},
		{"list: filter a string", bson.D{{Key: "listStreamProcessors", Value: int32(1)}, {Key: "filter", Value: "x"}}, 14, "TypeMismatch", []string{"filter must be an object or null"}},
		{"list: filter with a bad operator", bson.D{{Key: "listStreamProcessors", Value: int32(1)}, {Key: "filter", Value: bson.D{{Key: "name", Value: bson.D{{Key: "$frob", Value: 1}}}}}}, 2, "BadValue", []string{"filter", "$frob"}},
		{"connections: filter a number", bson.D{{Key: "listStreamConnections", Value: int32(1)}, {Key: "filter", Value: int32(3)}}, 14, "TypeMismatch", []string{"filter must be an object or null"}},
		// sampling and sp.process()
		{"sample: not running", bson.D{{Key: "startSampleStreamProcessor", Value: "created"}}, 20, "IllegalOperation", []string{"created", "not running"}},
		{"sample: limit negative", bson.D{{Key: "startSampleStreamProcessor", Value: "running"}, {Key: "limit", Value: int32(-1)}}, 2, "BadValue", []string{"limit must be between"}},
		{"getMore: no cursorId", bson.D{{Key: "getMoreSampleStreamProcessor", Value: "running"}}, 9, "FailedToParse", []string{"cursorId is required"}},
		{"getMore: cursorId a string", bson.D{{Key: "getMoreSampleStreamProcessor", Value: "running"}, {Key: "cursorId", Value: "abc"}}, 14, "TypeMismatch", []string{"cursorId must be a number"}},
		{"getMore: unknown cursorId", bson.D{{Key: "getMoreSampleStreamProcessor", Value: "running"}, {Key: "cursorId", Value: int64(123456789)}}, 43, "CursorNotFound", []string{"123456789", "running"}},
		{"getMore: batchSize 0", bson.D{{Key: "getMoreSampleStreamProcessor", Value: "running"}, {Key: "cursorId", Value: int64(1)}, {Key: "batchSize", Value: int32(0)}}, 2, "BadValue", []string{"batchSize must be between"}},
		{"process: pipeline a string", bson.D{{Key: "processStreamProcessor", Value: "x"}}, 14, "TypeMismatch", []string{"processStreamProcessor must be an array"}},
		{"process: unknown stage", bson.D{{Key: "processStreamProcessor", Value: bson.A{src, bson.D{{Key: "$frobnicate", Value: 1}}}}}, 9, "FailedToParse", []string{"$frobnicate"}},
		{"process: source connection missing", bson.D{{Key: "processStreamProcessor", Value: bson.A{bson.D{{Key: "$source", Value: bson.D{{Key: "connectionName", Value: "nowhere"}}}}}}},
			420, "StreamProcessorInvalidOptions", []string{"$source.connectionName", `"nowhere"`}},
	}

	for _, bc := range cases {
		_, err := runAdmin(t, c, bc.cmd)
		checkBad(t, c, bc, err)
	}

	// The workspace limit: fill the workspace, then one more.
	n := len(mustAdmin(t, c, bson.D{{Key: "listStreamProcessors", Value: int32(1)}})["streamProcessors"].(bson.A))
	for i := n; i < maxProcs; i++ {
		mustAdmin(t, c, create("fill"+string(rune('a'+i)), pipe(good)))
	}
	_, err := runAdmin(t, c, create("oneTooMany", pipe(good)))
	checkBad(t, c, badCase{"create: over --max-processors", nil, 1000002, "StreamProcessorLimitExceeded", []string{"6", "--max-processors"}}, err)
	mustAdmin(t, c, bson.D{{Key: "dropStreamProcessor", Value: "created"}})

	// The memory limit: a window whose state outgrows --processor-memory-limit fails the
	// processor with 418; spid runs on and reports it in getStreamProcessor and the list.
	hog := with(bson.D{{Key: "$tumblingWindow", Value: bson.D{
		{Key: "interval", Value: bson.D{{Key: "size", Value: 1}, {Key: "unit", Value: "hour"}}},
		{Key: "pipeline", Value: bson.A{bson.D{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$timestamp"}, {Key: "all", Value: bson.D{{Key: "$push", Value: "$$ROOT"}}}}}}}},
	}}})
	hog[0] = solarSourceD(20000, 5)
	mustAdmin(t, c, create("hog", pipe(hog)))
	mustAdmin(t, c, bson.D{{Key: "startStreamProcessor", Value: "hog"}})
	var state, msg string
	var code int32
	waitUntil(t, "the processor over its memory limit to fail", func() bool {
		state, code, msg = processorState(t, c, "hog")
		return state != "STARTED"
	})
	if state != "FAILED" || code != 418 || !strings.Contains(msg, "out of memory") || !strings.Contains(msg, "200000") {
		t.Errorf("over the memory limit: state %s, errorCode %d, errorMsg %q", state, code, msg)
	}
	list := mustAdmin(t, c, bson.D{{Key: "listStreamProcessors", Value: int32(1)}, {Key: "filter", Value: bson.D{{Key: "name", Value: "hog"}}}})
	if ps := list["streamProcessors"].(bson.A); len(ps) != 1 || field(ps[0], "state") != "FAILED" || field(ps[0], "errorMsg") != msg {
		t.Errorf("listStreamProcessors of the failed processor: %v", ps)
	}
	if err := c.Ping(t.Context(), nil); err != nil {
		t.Fatalf("spid is down after a processor ran out of memory: %v", err)
	}
	// A FAILED processor can be started again (and fails again, for the same reason).
	mustAdmin(t, c, bson.D{{Key: "startStreamProcessor", Value: "hog"}})
	if st, _, _ := processorState(t, c, "hog"); st != "STARTED" && st != "FAILED" {
		t.Errorf("restarting a FAILED processor: state %s", st)
	}
	t.Logf("%d malformed commands, the workspace limit and the memory limit", len(cases))
}

// checkBad checks a command's error against the case, then that spid still answers a ping.
func checkBad(t *testing.T, c *mongo.Client, bc badCase, err error) {
	t.Helper()
	var ce mongo.CommandError
	switch {
	case !errors.As(err, &ce):
		t.Errorf("%s: want a command error, got %v", bc.name, err)
	case ce.Code != bc.code || ce.Name != bc.codeName:
		t.Errorf("%s: got %d %s %q, want %d %s", bc.name, ce.Code, ce.Name, ce.Message, bc.code, bc.codeName)
	default:
		for _, m := range bc.msg {
			if !strings.Contains(ce.Message, m) {
				t.Errorf("%s: errmsg %q lacks %q", bc.name, ce.Message, m)
			}
		}
	}
	if err := c.Ping(t.Context(), nil); err != nil {
		t.Fatalf("after %s spid does not answer a ping: %v", bc.name, err)
	}
}

// field is a field of a decoded document (bson.D), or nil.
func field(doc any, key string) any {
	d, _ := doc.(bson.D)
	for _, e := range d {
		if e.Key == key {
			return e.Value
		}
	}
	return nil
}
