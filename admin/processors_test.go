package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	_ "github.com/spi-streams/spi/connectors/all" // the inline and sample sources and __testLog: real processors run
	"github.com/spi-streams/spi/processor"
	"github.com/spi-streams/spi/store"
)

// newProcEnv is newEnv with the processor runtime: the server is rebuilt over the same store
// with a processor.Manager, which is shut down when the test ends.
func newProcEnv(t *testing.T) (*testEnv, *processor.Manager) {
	t.Helper()
	env := newEnv(t)
	m := processor.NewManager(processor.Config{Store: env.st, GroupID: env.group})
	if err := m.Resume(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown(context.Background()) })
	api, err := New(Options{Store: env.st, Listeners: env.listeners, Processors: m})
	if err != nil {
		t.Fatal(err)
	}
	env.srv.Close()
	env.srv = httptest.NewServer(api)
	t.Cleanup(env.srv.Close)
	return env, m
}

// inlinePipeline reads inline documents and writes to the log: it needs no connection.
const inlinePipeline = `[{"$source":{"documents":[{"a":1,"n":{"$numberLong":"9007199254740993"},"t":{"$date":"2024-03-19T22:16:49.523Z"}}]}},` +
	`{"$match":{"a":{"$gte":1}}},{"$emit":{"connectionName":"__testLog"}}]`

func procBody(name string) string {
	return `{"name":"` + name + `","pipeline":` + inlinePipeline + `}`
}

const procPath = "/streams/default/processor"

// The shapes of createStreamProcessor (StreamsProcessor) and getStreamProcessor
// (StreamsProcessorWithStats), field for field, with the pipeline as relaxed Extended JSON.
func TestProcessorShapes(t *testing.T) {
	env, _ := newProcEnv(t)
	status, out := env.do("owner", "POST", procPath, procBody("p1"))
	if status != 200 {
		t.Fatalf("create: %d %v", status, out)
	}
	keys := func(m map[string]any) []string {
		var k []string
		for key := range m {
			k = append(k, key)
		}
		slices.Sort(k)
		return k
	}
	if got, want := keys(out), []string{"_id", "failoverEnabled", "links", "name", "pipeline", "tier"}; !slices.Equal(got, want) {
		t.Errorf("create reply fields %v, want %v", got, want)
	}
	if id, _ := out["_id"].(string); len(id) != 24 || out["name"] != "p1" || out["tier"] != "SP10" || out["failoverEnabled"] != false {
		t.Errorf("create reply %v", out)
	}
	pipe := fmt.Sprint(out["pipeline"])
	// Relaxed Extended JSON: numbers plain, dates as {"$date": ISO}.
	for _, want := range []string{"$source", "$match", "__testLog", "$date:2024-03-19T22:16:49.523Z"} {
		if !strings.Contains(pipe, want) {
			t.Errorf("pipeline %s lacks %s", pipe, want)
		}
	}

	status, got := env.do("GROUP_READ_ONLY", "GET", procPath+"/p1", "")
	if status != 200 {
		t.Fatalf("get: %d %v", status, got)
	}
	if k, want := keys(got), []string{"_id", "eligibleForFailover", "failoverEnabled", "links", "name", "pipeline", "state", "stats", "tier"}; !slices.Equal(k, want) {
		t.Errorf("get reply fields %v, want %v", k, want)
	}
	if got["_id"] != out["_id"] || got["state"] != "CREATED" || got["eligibleForFailover"] != false {
		t.Errorf("get reply %v", got)
	}
	stats, _ := got["stats"].(map[string]any)
	if k, want := keys(stats), []string{"dlqMessageCount", "dlqMessageSize", "inputMessageCount", "inputMessageSize", "name", "outputMessageCount",
		"outputMessageSize", "processorId", "scaleFactor", "stateSize", "status"}; !slices.Equal(k, want) {
		t.Errorf("stats fields %v, want %v", k, want)
	}
	if stats["name"] != "p1" || stats["processorId"] != out["_id"] || stats["status"] != "created" || stats["scaleFactor"] != float64(1) ||
		stats["inputMessageCount"] != float64(0) {
		t.Errorf("stats %v", stats)
	}
	links, _ := got["links"].([]any)
	if len(links) != 1 || !strings.HasSuffix(links[0].(map[string]any)["href"].(string), "/streams/default/processor/p1") {
		t.Errorf("links %v", got["links"])
	}
	if fmt.Sprint(got["pipeline"]) != pipe {
		t.Errorf("get pipeline %v differs from create's %v", got["pipeline"], pipe)
	}
}

// The pipeline is stored as the BSON the client meant: canonical Extended JSON types survive,
// and relaxed output gives them back in the same values.
func TestProcessorPipelineExtendedJSON(t *testing.T) {
	env, m := newProcEnv(t)
	body := `{"name":"x","pipeline":[{"$source":{"documents":[{"l":{"$numberLong":"5"},"i":{"$numberInt":"7"},"d":{"$numberDouble":"1.5"}}]}},{"$emit":{"connectionName":"__testLog"}}]}`
	if status, out := env.do("owner", "POST", procPath, body); status != 200 {
		t.Fatalf("create: %d %v", status, out)
	}
	info, err := m.Get("default", "x")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := pipelineJSON(info.Pipeline)
	if err != nil {
		t.Fatal(err)
	}
	if want := `[{"$source":{"documents":[{"l":5,"i":7,"d":1.5}]}},{"$emit":{"connectionName":"__testLog"}}]`; string(doc) != want {
		t.Errorf("stored pipeline as relaxed EJSON:\n got %s\nwant %s", doc, want)
	}
	l := bson.RawArray(info.Pipeline).Index(0).Document().Lookup("$source", "documents").Array().Index(0).Document().Lookup("l")
	if l.Type != bson.TypeInt64 {
		t.Errorf("$numberLong was stored as %s", l.Type)
	}
}

// list paginates like the other lists and shows only the workspace's processors.
func TestProcessorList(t *testing.T) {
	env, _ := newProcEnv(t)
	for _, n := range []string{"c", "a", "b"} {
		env.must("POST", procPath, procBody(n))
	}
	env.must("POST", "/streams", `{"name":"other"}`)
	env.must("POST", "/streams/other/processor", procBody("z"))
	status, out := env.do("GROUP_READ_ONLY", "GET", "/streams/default/processors?itemsPerPage=2&pageNum=2", "")
	if status != 200 {
		t.Fatalf("list: %d %v", status, out)
	}
	res, _ := out["results"].([]any)
	if out["totalCount"] != float64(3) || len(res) != 1 || res[0].(map[string]any)["name"] != "c" {
		t.Errorf("page 2 of 2: %v", out)
	}
	first := res[0].(map[string]any)
	if first["state"] != "CREATED" || first["stats"] == nil {
		t.Errorf("list item is not a StreamsProcessorWithStats: %v", first)
	}
	_, out = env.do("owner", "GET", "/streams/default/processors?includeCount=false", "")
	if _, has := out["totalCount"]; has || len(out["results"].([]any)) != 3 {
		t.Errorf("includeCount=false: %v", out)
	}
	if status, out := env.do("owner", "GET", "/streams/default/processors?itemsPerPage=0", ""); status != 400 || out["errorCode"] != "INVALID_QUERY_PARAMETER" {
		t.Errorf("itemsPerPage=0: %d %v", status, out)
	}
	if status, out := env.do("owner", "GET", "/streams/nope/processors", ""); status != 404 || !strings.Contains(out["detail"].(string), "nope") {
		t.Errorf("list of a missing workspace: %d %v", status, out)
	}
}

// PATCH changes name, pipeline, dlq and tier of a processor that is not running, and returns
// the processor with stats under its new name.
func TestProcessorModify(t *testing.T) {
	env, m := newProcEnv(t)
	env.must("POST", procPath, procBody("p"))
	newPipe := `[{"$source":{"documents":[{"a":2}]}},{"$project":{"a":1}},{"$emit":{"connectionName":"__testLog"}}]`
	status, out := env.do("GROUP_STREAM_PROCESSING_OWNER", "PATCH", procPath+"/p",
		`{"name":"q","pipeline":`+newPipe+`,"tier":"SP30","options":{"resumeFromCheckpoint":false}}`)
	if status != 200 || out["name"] != "q" || out["tier"] != "SP30" || out["state"] != "CREATED" || !strings.Contains(fmt.Sprint(out["pipeline"]), "$project") {
		t.Fatalf("modify: %d %v", status, out)
	}
	if status, _ := env.do("owner", "GET", procPath+"/p", ""); status != 404 {
		t.Errorf("the old name still answers: %d", status)
	}
	info, err := m.Get("default", "q")
	if err != nil || info.Tier != "SP30" || info.PipelineVersion != 2 {
		t.Errorf("runtime after modify: %+v %v", info.Processor, err)
	}
	// A body sent back from GET (read-only fields included) is accepted.
	_, cur := env.do("owner", "GET", procPath+"/q", "")
	cur["tier"] = "SP5"
	status, out = env.do("owner", "PATCH", procPath+"/q", jsonOf(t, cur))
	if status != 200 || out["tier"] != "SP5" {
		t.Errorf("modify with a GET reply as body: %d %v", status, out)
	}
}

// A DLQ needs a Cluster connection: with one it is stored and shown under options.dlq, and
// modify with dlq: {} removes it.
func TestProcessorDLQ(t *testing.T) {
	env, _ := newProcEnv(t)
	env.must("POST", "/streams/default/connections", `{"name":"db","type":"Cluster","clusterName":"c0","connectionString":"mongodb://localhost:27017","dbRoleToExecute":{"role":"readWriteAnyDatabase","type":"BUILT_IN"}}`)
	body := `{"name":"d","pipeline":` + inlinePipeline + `,"options":{"dlq":{"connectionName":"db","db":"errs","coll":"dead"}}}`
	status, out := env.do("owner", "POST", procPath, body)
	if status != 200 {
		t.Fatalf("create with dlq: %d %v", status, out)
	}
	if got := fmt.Sprint(out["options"]); got != "map[dlq:map[coll:dead connectionName:db db:errs]]" {
		t.Errorf("options %s", got)
	}
	status, out = env.do("owner", "PATCH", procPath+"/d", `{"options":{"dlq":{}}}`)
	if status != 200 || out["options"] != nil {
		t.Errorf("dlq {} removes it: %d %v", status, out)
	}
	status, out = env.do("owner", "PATCH", procPath+"/d", `{"options":{"dlq":{"connectionName":"db","db":"e","coll":"c2"}}}`)
	if status != 200 || fmt.Sprint(out["options"]) != "map[dlq:map[coll:c2 connectionName:db db:e]]" {
		t.Errorf("dlq set by modify: %d %v", status, out)
	}
}

// Every refused request: status, Atlas error code, and a detail naming the field and reason.
func TestProcessorErrors(t *testing.T) {
	env, _ := newProcEnv(t)
	env.must("POST", procPath, procBody("exists"))
	env.must("POST", "/streams/default/connections", `{"name":"hook","type":"Https","url":"https://example.com/x"}`)
	long := strings.Repeat("n", processor.MaxNameLength+1)
	cases := []struct {
		name, method, path, body string
		status                   int
		code                     string
		detail                   []string // all in detail
	}{
		{"missing name", "POST", procPath, `{"pipeline":` + inlinePipeline + `}`, 400, "MISSING_ATTRIBUTE", []string{"name"}},
		{"name not a string", "POST", procPath, `{"name":5,"pipeline":` + inlinePipeline + `}`, 400, "INVALID_ATTRIBUTE", []string{"name", "a string"}},
		{"name too long", "POST", procPath, procBody(long), 400, "INVALID_ATTRIBUTE", []string{"name", "limit is 64"}},
		{"name with a slash", "POST", procPath, procBody("a/b"), 400, "INVALID_ATTRIBUTE", []string{"name", "not a valid processor name"}},
		{"missing pipeline", "POST", procPath, `{"name":"np"}`, 400, "MISSING_ATTRIBUTE", []string{"pipeline"}},
		{"pipeline an object", "POST", procPath, `{"name":"np","pipeline":{"$source":{}}}`, 400, "INVALID_ATTRIBUTE", []string{"pipeline", "array of stages", "an object"}},
		{"pipeline bad extended JSON", "POST", procPath, `{"name":"np","pipeline":[{"$source":{"documents":[{"a":{"$numberLong":5}}]}}]}`, 400, "INVALID_ATTRIBUTE", []string{"pipeline", "Extended JSON"}},
		{"empty pipeline", "POST", procPath, `{"name":"np","pipeline":[]}`, 400, "INVALID_ATTRIBUTE", []string{"pipeline", "empty"}},
		{"unknown stage", "POST", procPath, `{"name":"np","pipeline":[{"$source":{"documents":[]}},{"$frobnicate":{}},{"$emit":{"connectionName":"__testLog"}}]}`, 400, "INVALID_ATTRIBUTE", []string{"pipeline", "$frobnicate"}},
		{"stage not an object", "POST", procPath, `{"name":"np","pipeline":[{"$source":{"documents":[]}},7]}`, 400, "INVALID_ATTRIBUTE", []string{"pipeline", "stage 1"}},
		{"no sink", "POST", procPath, `{"name":"np","pipeline":[{"$source":{"documents":[]}}]}`, 400, "INVALID_ATTRIBUTE", []string{"pipeline"}},
		{"missing source connection", "POST", procPath, `{"name":"np","pipeline":[{"$source":{"connectionName":"ghost"}},{"$emit":{"connectionName":"__testLog"}}]}`, 400, "INVALID_ATTRIBUTE", []string{"pipeline.0.$source.connectionName", "ghost"}},
		{"missing sink connection", "POST", procPath, `{"name":"np","pipeline":[{"$source":{"documents":[]}},{"$merge":{"into":{"connectionName":"ghost","db":"d","coll":"c"}}}]}`, 400, "INVALID_ATTRIBUTE", []string{"ghost"}},
		{"bad tier", "POST", procPath, `{"name":"np","tier":"SP7","pipeline":` + inlinePipeline + `}`, 400, "INVALID_ATTRIBUTE", []string{"tier", "SP7"}},
		{"dlq incomplete", "POST", procPath, `{"name":"np","pipeline":` + inlinePipeline + `,"options":{"dlq":{"connectionName":"hook"}}}`, 400, "MISSING_ATTRIBUTE", []string{"options.dlq.db"}},
		{"dlq not a Cluster", "POST", procPath, `{"name":"np","pipeline":` + inlinePipeline + `,"options":{"dlq":{"connectionName":"hook","db":"a","coll":"b"}}}`, 400, "INVALID_ATTRIBUTE", []string{"options.dlq.connectionName", "Cluster"}},
		{"dlq missing connection", "POST", procPath, `{"name":"np","pipeline":` + inlinePipeline + `,"options":{"dlq":{"connectionName":"nope","db":"a","coll":"b"}}}`, 400, "INVALID_ATTRIBUTE", []string{"options.dlq.connectionName", "nope"}},
		{"resumeFromCheckpoint on create", "POST", procPath, `{"name":"np","pipeline":` + inlinePipeline + `,"options":{"resumeFromCheckpoint":false}}`, 400, "INVALID_ATTRIBUTE", []string{"resumeFromCheckpoint"}},
		{"unknown field", "POST", procPath, `{"name":"np","pipeline":` + inlinePipeline + `,"colour":"red"}`, 400, "INVALID_ATTRIBUTE", []string{"colour"}},
		{"malformed JSON", "POST", procPath, `{"name":`, 400, "INVALID_JSON", nil},
		{"duplicate", "POST", procPath, procBody("exists"), 409, "DUPLICATE_NAME", []string{"exists"}},
		{"create in a missing workspace", "POST", "/streams/nope/processor", procBody("np"), 404, "RESOURCE_NOT_FOUND", []string{"workspace", "nope"}},
		{"get missing", "GET", procPath + "/ghost", "", 404, "RESOURCE_NOT_FOUND", []string{"ghost", "default"}},
		{"get in a missing workspace", "GET", "/streams/nope/processor/exists", "", 404, "RESOURCE_NOT_FOUND", []string{"workspace", "nope"}},
		{"modify missing", "PATCH", procPath + "/ghost", `{"tier":"SP5"}`, 404, "RESOURCE_NOT_FOUND", []string{"ghost"}},
		{"modify bad tier", "PATCH", procPath + "/exists", `{"tier":"XL"}`, 400, "INVALID_ATTRIBUTE", []string{"tier", "XL"}},
		{"modify empty name", "PATCH", procPath + "/exists", `{"name":""}`, 400, "INVALID_ATTRIBUTE", []string{"name"}},
		{"modify bad name", "PATCH", procPath + "/exists", `{"name":"a b"}`, 400, "INVALID_ATTRIBUTE", []string{"name", "a b"}},
		{"modify bad pipeline", "PATCH", procPath + "/exists", `{"pipeline":[{"$match":{}}]}`, 400, "INVALID_ATTRIBUTE", []string{"pipeline"}},
		{"modify failover", "PATCH", procPath + "/exists", `{"failoverEnabled":true}`, 400, "INVALID_ATTRIBUTE", []string{"failoverEnabled"}},
		{"modify resume not a boolean", "PATCH", procPath + "/exists", `{"options":{"resumeFromCheckpoint":"no"}}`, 400, "INVALID_ATTRIBUTE", []string{"resumeFromCheckpoint", "a boolean"}},
		{"delete missing", "DELETE", procPath + "/ghost", "", 404, "RESOURCE_NOT_FOUND", []string{"ghost"}},
		{"start missing", "POST", procPath + "/ghost:start", "", 404, "RESOURCE_NOT_FOUND", []string{"ghost"}},
		{"startWith missing", "POST", procPath + "/ghost:startWith", `{}`, 404, "RESOURCE_NOT_FOUND", []string{"ghost"}},
		{"stop missing", "POST", procPath + "/ghost:stop", "", 404, "RESOURCE_NOT_FOUND", []string{"ghost"}},
		{"stop a created processor", "POST", procPath + "/exists:stop", "", 409, "CONFLICT", []string{"exists", "not started"}},
		{"unknown action", "POST", procPath + "/exists:pause", "", 404, "RESOURCE_NOT_FOUND", []string{":start"}},
		{"no action", "POST", procPath + "/exists", "", 404, "RESOURCE_NOT_FOUND", []string{":start"}},
		{"startWith bad tier", "POST", procPath + "/exists:startWith", `{"tier":"SP999"}`, 400, "INVALID_ATTRIBUTE", []string{"tier", "SP999"}},
		{"startWith resume not a boolean", "POST", procPath + "/exists:startWith", `{"resumeFromCheckpoint":1}`, 400, "INVALID_ATTRIBUTE", []string{"resumeFromCheckpoint"}},
		{"startWith failover", "POST", procPath + "/exists:startWith", `{"failover":{"region":"US_EAST_1"}}`, 400, "INVALID_ATTRIBUTE", []string{"failover"}},
		{"startWith operation time", "POST", procPath + "/exists:startWith", `{"startAtOperationTime":"2024-01-01T00:00:00Z"}`, 400, "INVALID_ATTRIBUTE", []string{"startAtOperationTime"}},
		{"startWith unknown field", "POST", procPath + "/exists:startWith", `{"workers":2}`, 400, "INVALID_ATTRIBUTE", []string{"workers"}},
	}
	for _, c := range cases {
		status, out := env.do("owner", c.method, c.path, c.body)
		detail, _ := out["detail"].(string)
		if status != c.status || out["errorCode"] != c.code || out["error"] != float64(status) {
			t.Errorf("%s: %d %v, want %d %s", c.name, status, out, c.status, c.code)
			continue
		}
		for _, d := range c.detail {
			if !strings.Contains(detail, d) {
				t.Errorf("%s: detail %q lacks %q", c.name, detail, d)
			}
		}
	}
	// Nothing refused was created, and the one processor is unchanged.
	_, out := env.do("owner", "GET", "/streams/default/processors", "")
	if out["totalCount"] != float64(1) {
		t.Errorf("after the refused requests: %v", out)
	}
}

// A workspace holds at most --max-processors processors: the next create is a 409 that says so.
func TestProcessorLimit(t *testing.T) {
	env := newEnv(t)
	m := processor.NewManager(processor.Config{Store: env.st, GroupID: env.group, MaxProcessors: 2})
	t.Cleanup(func() { _ = m.Shutdown(context.Background()) })
	api, err := New(Options{Store: env.st, Listeners: env.listeners, Processors: m})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	env.srv = srv
	env.must("POST", procPath, procBody("one"))
	env.must("POST", procPath, procBody("two"))
	status, out := env.do("owner", "POST", procPath, procBody("three"))
	if status != 409 || out["errorCode"] != "CONFLICT" || !strings.Contains(out["detail"].(string), "limit") {
		t.Errorf("third processor: %d %v", status, out)
	}
}

// Deleting a workspace drops its processors; other workspaces keep theirs.
func TestDeleteWorkspaceDropsProcessors(t *testing.T) {
	env, m := newProcEnv(t)
	env.must("POST", "/streams", `{"name":"gone"}`)
	env.must("POST", "/streams/gone/processor", procBody("p"))
	env.must("POST", procPath, procBody("kept"))
	if status, out := env.do("owner", "DELETE", "/streams/gone", ""); status != 202 {
		t.Fatalf("delete workspace: %d %v", status, out)
	}
	if got := m.List("gone"); len(got) != 0 {
		t.Errorf("processors left in the deleted workspace: %v", got)
	}
	var recs []store.Processor
	if err := env.st.View(func(tx *store.Txn) (err error) { recs, err = tx.Processors("gone"); return err }); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 0 {
		t.Errorf("processor records left in the store: %v", recs)
	}
	// A new workspace of the same name starts empty.
	env.must("POST", "/streams", `{"name":"gone"}`)
	if _, out := env.do("owner", "GET", "/streams/gone/processors", ""); out["totalCount"] != float64(0) {
		t.Errorf("recreated workspace lists %v", out)
	}
	if _, err := m.Get("default", "kept"); err != nil {
		t.Errorf("the other workspace lost its processor: %v", err)
	}
}

// Without a runtime the processor endpoints say so rather than pretending.
func TestProcessorsWithoutRuntime(t *testing.T) {
	env := newEnv(t)
	status, out := env.do("owner", "GET", "/streams/default/processors", "")
	if status != http.StatusServiceUnavailable || out["errorCode"] != "SERVICE_UNAVAILABLE" {
		t.Errorf("no runtime: %d %v", status, out)
	}
}

// Every processor endpoint × every project role: reads for all, writes for Project Owner and
// Project Stream Processing Owner only (docs/admin-api.md); no key or a wrong key is 401.
func TestProcessorRoleMatrix(t *testing.T) {
	env, _ := newProcEnv(t)
	type ep struct {
		name, method string
		write        bool
		success      int
		setup        func(n int) (path, body string)
	}
	made := func(n int) string {
		name := fmt.Sprintf("m%d", n)
		env.must("POST", procPath, procBody(name))
		return name
	}
	eps := []ep{
		{"list", "GET", false, 200, func(int) (string, string) { return "/streams/default/processors", "" }},
		{"get", "GET", false, 200, func(n int) (string, string) { return procPath + "/" + made(n), "" }},
		{"create", "POST", true, 200, func(n int) (string, string) { return procPath, procBody(fmt.Sprintf("c%d", n)) }},
		{"modify", "PATCH", true, 200, func(n int) (string, string) { return procPath + "/" + made(n), `{"tier":"SP5"}` }},
		{"delete", "DELETE", true, 204, func(n int) (string, string) { return procPath + "/" + made(n), "" }},
		// start and startWith are refused before the runtime runs anything; stop of a processor
		// that is not started is a 409 for those allowed to ask.
		{"start", "POST", true, 200, func(n int) (string, string) { return procPath + "/" + made(n) + ":start", "" }},
		{"startWith", "POST", true, 200, func(n int) (string, string) {
			return procPath + "/" + made(n) + ":startWith", `{"resumeFromCheckpoint":false,"tier":"SP5"}`
		}},
		{"stop", "POST", true, 409, func(n int) (string, string) { return procPath + "/" + made(n) + ":stop", "" }},
	}
	callers := append(slices.Clone(ProjectRoles), "no key", "wrong key")
	n := 0
	for _, e := range eps {
		for _, who := range callers {
			n++
			want := e.success
			switch {
			case who == "no key" || who == "wrong key":
				want = http.StatusUnauthorized
			case !slices.Contains(permitted[resStreams][e.write], who):
				want = http.StatusForbidden
			}
			path, body := e.setup(n)
			got, out := env.do(who, e.method, path, body)
			if got != want {
				t.Errorf("%s as %s: status %d, want %d (%v)", e.name, who, got, want, out)
			}
			if got >= 400 && (out["errorCode"] == nil || out["detail"] == nil) {
				t.Errorf("%s as %s: error body is not Atlas-shaped: %v", e.name, who, out)
			}
		}
	}
	// GROUP_READ_ONLY, named explicitly as the issue does.
	name := made(n + 1)
	for _, c := range []struct {
		method, path, body string
		want               int
	}{
		{"GET", "/streams/default/processors", "", 200},
		{"GET", procPath + "/" + name, "", 200},
		{"POST", procPath, procBody("ro"), 403},
		{"POST", procPath + "/" + name + ":start", "", 403},
		{"POST", procPath + "/" + name + ":startWith", "{}", 403},
		{"POST", procPath + "/" + name + ":stop", "", 403},
		{"PATCH", procPath + "/" + name, `{"tier":"SP5"}`, 403},
		{"DELETE", procPath + "/" + name, "", 403},
	} {
		if got, out := env.do("GROUP_READ_ONLY", c.method, c.path, c.body); got != c.want {
			t.Errorf("GROUP_READ_ONLY %s %s: %d %v, want %d", c.method, c.path, got, out, c.want)
		}
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// solarBody is a processor on the sample source at 1000 documents a second, writing to the log.
func solarBody(name string) string {
	return `{"name":"` + name + `","pipeline":[{"$source":{"connectionName":"sample_stream_solar","config":{"rate":1000,"seed":7}}},` +
		`{"$match":{"obs.watts":{"$gte":0}}},{"$emit":{"connectionName":"__testLog"}}]}`
}

// waitFor polls get until ok accepts the processor or a generous deadline passes.
func (e *testEnv) waitFor(path string, ok func(map[string]any) bool) map[string]any {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, out := e.do("owner", "GET", path, "")
		if ok(out) {
			return out
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s never reached the expected state: %v", path, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func statOf(p map[string]any, field string) float64 {
	s, _ := p["stats"].(map[string]any)
	v, _ := s[field].(float64)
	return v
}

// A whole life through the API on the running runtime: start, stats that grow, the refused
// transitions (start a started processor, modify a running one, stop a stopped one), stop,
// modify, :startWith afresh, and delete of a running processor.
func TestProcessorLifecycle(t *testing.T) {
	env, m := newProcEnv(t)
	env.must("POST", procPath, solarBody("solar"))
	if status, out := env.do("GROUP_STREAM_PROCESSING_OWNER", "POST", procPath+"/solar:start", ""); status != 200 || len(out) != 0 {
		t.Fatalf("start: %d %v", status, out)
	}
	first := env.waitFor(procPath+"/solar", func(p map[string]any) bool { return statOf(p, "outputMessageCount") > 0 })
	if first["state"] != "STARTED" || first["stats"].(map[string]any)["status"] != "running" {
		t.Errorf("running processor: %v", first)
	}
	n := statOf(first, "inputMessageCount")
	env.waitFor(procPath+"/solar", func(p map[string]any) bool { return statOf(p, "inputMessageCount") > n })
	if statOf(first, "inputMessageSize") <= 0 || statOf(first, "outputMessageSize") <= 0 {
		t.Errorf("sizes: %v", first["stats"])
	}

	refused := []struct{ method, path, body, detail string }{
		{"POST", procPath + "/solar:start", "", "already started"},
		{"POST", procPath + "/solar:startWith", `{"resumeFromCheckpoint":false}`, "already started"},
		{"PATCH", procPath + "/solar", `{"tier":"SP5"}`, "running"},
	}
	for _, r := range refused {
		status, out := env.do("owner", r.method, r.path, r.body)
		if status != 409 || out["errorCode"] != "CONFLICT" || !strings.Contains(out["detail"].(string), r.detail) {
			t.Errorf("%s %s on a running processor: %d %v", r.method, r.path, status, out)
		}
	}
	if status, out := env.do("owner", "POST", procPath+"/solar:stop", ""); status != 200 {
		t.Fatalf("stop: %d %v", status, out)
	}
	_, stopped := env.do("owner", "GET", procPath+"/solar", "")
	if stopped["state"] != "STOPPED" || statOf(stopped, "inputMessageCount") < n {
		t.Errorf("stopped: %v", stopped)
	}
	if status, out := env.do("owner", "POST", procPath+"/solar:stop", ""); status != 409 || !strings.Contains(out["detail"].(string), "not started") {
		t.Errorf("stop a stopped processor: %d %v", status, out)
	}
	// Resuming from the checkpoint forbids a new $source; afresh it is allowed.
	newSource := `{"pipeline":[{"$source":{"connectionName":"sample_stream_solar","config":{"rate":1000,"seed":8}}},{"$emit":{"connectionName":"__testLog"}}]}`
	if status, out := env.do("owner", "PATCH", procPath+"/solar", newSource); status != 400 || !strings.Contains(out["detail"].(string), "$source") {
		t.Errorf("modify the $source resuming from the checkpoint: %d %v", status, out)
	}
	status, out := env.do("owner", "PATCH", procPath+"/solar",
		strings.TrimSuffix(newSource, "}")+`,"options":{"resumeFromCheckpoint":false},"tier":"SP5"}`)
	if status != 200 || out["tier"] != "SP5" || out["state"] != "STOPPED" {
		t.Fatalf("modify afresh: %d %v", status, out)
	}
	if status, out := env.do("owner", "POST", procPath+"/solar:startWith", `{"resumeFromCheckpoint":false,"tier":"SP2"}`); status != 200 {
		t.Fatalf("startWith: %d %v", status, out)
	}
	env.waitFor(procPath+"/solar", func(p map[string]any) bool { return p["state"] == "STARTED" && p["tier"] == "SP2" })
	if status, out := env.do("owner", "DELETE", procPath+"/solar", ""); status != 204 || out != nil {
		t.Fatalf("delete a running processor: %d %v", status, out)
	}
	if status, _ := env.do("owner", "GET", procPath+"/solar", ""); status != 404 {
		t.Errorf("get after delete: %d", status)
	}
	if m.ProcessorCount() != 0 {
		t.Errorf("%d processors still run after delete", m.ProcessorCount())
	}
}

// A FAILED processor says why: errorMsg, errorCode and errorRetryable (the spi extension), and
// stats.status "error". Operator state over the memory limit fails it (spec §9, "State size").
func TestProcessorFailedShowsWhy(t *testing.T) {
	env := newEnv(t)
	m := processor.NewManager(processor.Config{Store: env.st, GroupID: env.group, MemoryLimit: 1})
	t.Cleanup(func() { _ = m.Shutdown(context.Background()) })
	api, err := New(Options{Store: env.st, Listeners: env.listeners, Processors: m})
	if err != nil {
		t.Fatal(err)
	}
	env.srv = httptest.NewServer(api)
	t.Cleanup(env.srv.Close)
	env.must("POST", procPath, `{"name":"big","pipeline":[{"$source":{"connectionName":"sample_stream_solar","config":{"rate":1000,"seed":1}}},`+
		`{"$tumblingWindow":{"interval":{"size":1,"unit":"hour"},"pipeline":[{"$group":{"_id":"$device_id","n":{"$sum":1}}}]}},`+
		`{"$emit":{"connectionName":"__testLog"}}]}`)
	env.must("POST", procPath+"/big:start", "")
	got := env.waitFor(procPath+"/big", func(p map[string]any) bool { return p["state"] == "FAILED" })
	msg, _ := got["errorMsg"].(string)
	if !strings.Contains(msg, "out of memory") || got["errorCode"] != float64(processor.CodeStreamProcessorOutOfMemory) || got["errorRetryable"] != false ||
		got["stats"].(map[string]any)["status"] != "error" {
		t.Errorf("failed processor: %v", got)
	}
	// A FAILED processor can be started again.
	if status, out := env.do("owner", "POST", procPath+"/big:startWith", `{"resumeFromCheckpoint":false}`); status != 200 {
		t.Errorf("start a failed processor: %d %v", status, out)
	}
}
