package e2e

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// solarPipeline reads the sample source at 200 documents a second and writes to the log.
const solarPipeline = `[{"$source":{"connectionName":"sample_stream_solar","config":{"rate":200}}},` +
	`{"$match":{"obs.watts":{"$gte":0}}},{"$emit":{"connectionName":"__testLog"}}]`

// eventually retries check until it holds or a generous deadline passes (no timing is
// asserted: the deadline only keeps a broken run from hanging).
func eventually(t *testing.T, what string, check func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ok, last := check()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never happened; last: %s", what, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The processor endpoints through curl --digest, an HTTP client independent of spid's own
// digest code: create on sample_stream_solar, start, stats counted growing, the Atlas shapes,
// stop, modify, delete. The data plane (the real mongosh) sees the same processors.
func TestProcessorsWithCurl(t *testing.T) {
	s := startSpid(t)
	c := s.Creds(t)
	const p = "/streams/default/processor"

	status, created := curlAPI(t, c, "POST", p, `{"name":"solar","pipeline":`+solarPipeline+`}`)
	if status != 200 || created["name"] != "solar" || len(created["_id"].(string)) != 24 || created["tier"] != "SP10" {
		t.Fatalf("create: %d %v", status, created)
	}
	if _, has := created["state"]; has {
		t.Errorf("create replies a StreamsProcessor, without state: %v", created)
	}
	// The data plane lists the processor the control plane created.
	r := runMongosh(t, s.Admin(t, "", ""), "--quiet", "--eval",
		`EJSON.stringify(db.getSiblingDB("admin").runCommand({listStreamProcessors: 1}).streamProcessors.map(p => [p.name, p.state]))`)
	if r.Exit != 0 || strings.TrimSpace(r.Stdout) != `[["solar","CREATED"]]` {
		t.Fatalf("mongosh listStreamProcessors: %+v", r)
	}

	if status, out := curlAPI(t, c, "POST", p+"/solar:start", ""); status != 200 {
		t.Fatalf("start: %d %v", status, out)
	}
	stats := func() map[string]any {
		status, got := curlAPI(t, c, "GET", p+"/solar", "")
		if status != 200 {
			t.Fatalf("get: %d %v", status, got)
		}
		st, _ := got["stats"].(map[string]any)
		st["state"] = got["state"]
		return st
	}
	var before float64
	eventually(t, "input counted", func() (bool, string) {
		st := stats()
		before, _ = st["inputMessageCount"].(float64)
		return st["state"] == "STARTED" && before > 0 && st["outputMessageCount"].(float64) > 0, jsonText(st)
	})
	eventually(t, "input counted growing", func() (bool, string) {
		st := stats()
		n, _ := st["inputMessageCount"].(float64)
		return n > before, jsonText(st)
	})
	status, got := curlAPI(t, c, "GET", p+"/solar", "")
	for _, f := range []string{"_id", "name", "pipeline", "state", "stats", "tier", "failoverEnabled", "eligibleForFailover", "links"} {
		if _, ok := got[f]; !ok {
			t.Errorf("StreamsProcessorWithStats lacks %s: %v", f, got)
		}
	}
	st := got["stats"].(map[string]any)
	for _, f := range []string{"name", "processorId", "status", "scaleFactor", "inputMessageCount", "inputMessageSize",
		"outputMessageCount", "outputMessageSize", "dlqMessageCount", "dlqMessageSize", "stateSize"} {
		if _, ok := st[f]; !ok {
			t.Errorf("stats lack %s: %v", f, st)
		}
	}
	if status != 200 || st["status"] != "running" || st["processorId"] != created["_id"] || !strings.Contains(jsonText(got["pipeline"]), "sample_stream_solar") {
		t.Errorf("get of a running processor: %d %v", status, got)
	}
	status, list := curlAPI(t, c, "GET", "/streams/default/processors?itemsPerPage=1", "")
	if status != 200 || list["totalCount"] != float64(1) || len(list["results"].([]any)) != 1 {
		t.Errorf("list: %d %v", status, list)
	}

	if status, out := curlAPI(t, c, "POST", p+"/solar:start", ""); status != 409 || out["errorCode"] != "CONFLICT" {
		t.Errorf("start a started processor: %d %v", status, out)
	}
	if status, out := curlAPI(t, c, "PATCH", p+"/solar", `{"tier":"SP5"}`); status != 409 || !strings.Contains(out["detail"].(string), "stop it") {
		t.Errorf("modify a running processor: %d %v", status, out)
	}
	if status, out := curlAPI(t, c, "POST", p+"/solar:stop", ""); status != 200 {
		t.Fatalf("stop: %d %v", status, out)
	}
	stopped := stats()
	if stopped["state"] != "STOPPED" || stopped["status"] != "stopped" || stopped["inputMessageCount"].(float64) <= before {
		t.Errorf("after stop: %v", stopped)
	}
	status, mod := curlAPI(t, c, "PATCH", p+"/solar", `{"name":"solar2","tier":"SP5","options":{"resumeFromCheckpoint":false},"pipeline":`+
		`[{"$source":{"connectionName":"sample_stream_solar"}},{"$project":{"device_id":1,"obs":1}},{"$emit":{"connectionName":"__testLog"}}]}`)
	if status != 200 || mod["name"] != "solar2" || mod["tier"] != "SP5" || mod["state"] != "STOPPED" || !strings.Contains(jsonText(mod["pipeline"]), "$project") {
		t.Fatalf("modify: %d %v", status, mod)
	}
	if status, out := curlAPI(t, c, "POST", p+"/solar2:startWith", `{"resumeFromCheckpoint":false}`); status != 200 {
		t.Fatalf("startWith: %d %v", status, out)
	}
	if status, out := curlAPI(t, c, "DELETE", p+"/solar2", ""); status != 204 || out != nil {
		t.Fatalf("delete a running processor: %d %v", status, out)
	}
	if status, out := curlAPI(t, c, "GET", p+"/solar2", ""); status != 404 || out["errorCode"] != "RESOURCE_NOT_FOUND" {
		t.Errorf("get after delete: %d %v", status, out)
	}
	if status, out := curlAPI(t, c, "POST", p, `{"name":"bad","pipeline":[{"$source":{"connectionName":"nowhere"}},{"$emit":{"connectionName":"__testLog"}}]}`); status != 400 ||
		!strings.Contains(out["detail"].(string), "pipeline.0.$source.connectionName") {
		t.Errorf("create with a missing connection: %d %v", status, out)
	}
	r = runMongosh(t, s.Admin(t, "", ""), "--quiet", "--eval",
		`db.getSiblingDB("admin").runCommand({listStreamProcessors: 1}).streamProcessors.length`)
	if r.Exit != 0 || strings.TrimSpace(r.Stdout) != "0" {
		t.Errorf("the data plane still lists processors after delete: %+v", r)
	}
}

// The processor commands of spictl against spid: tables by default and --json, a processor on
// sample_stream_solar created, started, its stats counted growing, stopped, modified, deleted.
// A GROUP_READ_ONLY key may list and get but not start.
func TestProcessorsWithSpictl(t *testing.T) {
	s := startSpid(t)
	c := s.Creds(t)
	run := func(args ...string) string {
		t.Helper()
		r := runSpictl(t, c, args...)
		if r.Exit != 0 {
			t.Fatalf("spictl %v: exit %d\nstdout: %s\nstderr: %s", args, r.Exit, r.Stdout, r.Stderr)
		}
		return r.Stdout
	}
	dir := t.TempDir()
	file := dir + "/pipeline.json"
	if err := os.WriteFile(file, []byte(solarPipeline), 0o600); err != nil {
		t.Fatal(err)
	}
	out := run("processors", "create", "--name", "solar", "--file", file)
	if !strings.Contains(out, "Name:") || !strings.Contains(out, "solar") {
		t.Fatalf("create printed:\n%s", out)
	}
	if out := run("proc", "list"); !strings.Contains(out, "NAME") || !strings.Contains(out, "CREATED") {
		t.Errorf("list printed:\n%s", out)
	}
	if out := run("proc", "start", "solar"); !strings.Contains(out, `Started processor "solar".`) {
		t.Errorf("start printed:\n%s", out)
	}
	input := func() (float64, string) {
		var p struct {
			State string
			Stats struct{ InputMessageCount, OutputMessageCount float64 }
		}
		o := run("proc", "get", "solar", "--json")
		if err := json.Unmarshal([]byte(o), &p); err != nil {
			t.Fatalf("get --json: %v\n%s", err, o)
		}
		if p.State != "STARTED" {
			return -1, o
		}
		return p.Stats.InputMessageCount, o
	}
	var before float64
	eventually(t, "input counted", func() (bool, string) {
		n, o := input()
		before = n
		return n > 0, o
	})
	eventually(t, "input counted growing", func() (bool, string) {
		n, o := input()
		return n > before, o
	})
	table := run("proc", "get", "solar")
	for _, want := range []string{"State:", "STARTED", "Input:", "messages", "Pipeline:", "sample_stream_solar"} {
		if !strings.Contains(table, want) {
			t.Errorf("get printed no %q:\n%s", want, table)
		}
	}

	// A read-only key sees the processor but may not stop it.
	var key struct{ PublicKey, PrivateKey string }
	if err := json.Unmarshal([]byte(run("keys", "create", "--desc", "viewer", "--role", "GROUP_READ_ONLY", "--json")), &key); err != nil {
		t.Fatal(err)
	}
	ro := c
	ro.PublicKey, ro.PrivateKey = key.PublicKey, key.PrivateKey
	if r := runSpictl(t, ro, "proc", "list"); r.Exit != 0 || !strings.Contains(r.Stdout, "solar") {
		t.Errorf("read-only list: %+v", r)
	}
	if r := runSpictl(t, ro, "proc", "stop", "solar"); r.Exit != 1 || !strings.Contains(r.Stderr, "403 FORBIDDEN") {
		t.Errorf("read-only stop: %+v", r)
	}

	if r := runSpictl(t, c, "proc", "modify", "solar", "--tier", "SP5"); r.Exit != 1 || !strings.Contains(r.Stderr, "409 CONFLICT") {
		t.Errorf("modify a running processor: %+v", r)
	}
	if out := run("proc", "stop", "solar"); !strings.Contains(out, `Stopped processor "solar".`) {
		t.Errorf("stop printed:\n%s", out)
	}
	out = run("proc", "modify", "solar", "--name", "solar2", "--tier", "sp5", "--no-resume",
		"--pipeline", `[{"$source":{"connectionName":"sample_stream_solar"}},{"$project":{"obs":1}},{"$emit":{"connectionName":"__testLog"}}]`)
	for _, want := range []string{"solar2", "STOPPED", "SP5", "$project"} {
		if !strings.Contains(out, want) {
			t.Errorf("modify printed no %q:\n%s", want, out)
		}
	}
	if out := run("proc", "start", "solar2", "--no-resume"); !strings.Contains(out, "Started") {
		t.Errorf("start --no-resume printed:\n%s", out)
	}
	if out := run("proc", "delete", "solar2"); !strings.Contains(out, `Deleted processor "solar2".`) {
		t.Errorf("delete printed:\n%s", out)
	}
	if out := run("proc", "list"); !strings.Contains(out, "No processors.") {
		t.Errorf("list after delete:\n%s", out)
	}
	if r := runSpictl(t, c, "proc", "get", "solar2"); r.Exit != 1 || !strings.Contains(r.Stderr, "404 RESOURCE_NOT_FOUND") {
		t.Errorf("get after delete: %+v", r)
	}
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
