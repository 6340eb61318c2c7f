package e2e

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// tourScript is the non-interactive part of the tour: every sp method a person types, each
// step printing a marked line the test checks. Expected failures are caught and printed with
// their code and codeName, as mongosh reports them.
const tourScript = `
const src = SRC;
const emit = {$emit: {connectionName: "__testLog"}};
const tryIt = (label, f) => { try { const r = f(); print(label, "ok", JSON.stringify(r)); } catch (e) { print(label, "error", e.code, e.codeName, e.message); } };
const names = (filter) => JSON.stringify(sp.listStreamProcessors(filter).map(p => p.name));
const num = (v) => Number(String(v));

sp.createStreamProcessor("tourPlain", [src, {$match: {event_type: 0}}, emit]);
sp.createStreamProcessor("tourDlq", [src, emit], {dlq: {connectionName: "dlqCluster", db: "dead", coll: "letters"}});
sp.createStreamProcessor("other", [src, emit]);
print("LIST", names({name: {$regex: '^tour'}}));
print("LISTDLQ", names({'options.dlq.connectionName': 'dlqCluster'}));
print("LISTALL", names());

tryIt("START", () => sp.tourPlain.start());
print("STATE", sp.listStreamProcessors({name: "tourPlain"})[0].state);
print("SAMPLE-BEGIN");
sp.tourPlain.sample({limit: 3});
print("SAMPLE-END");

const s1 = sp.tourPlain.stats();
let s2 = s1;
for (let i = 0; i < 600 && num(s2.stats.outputMessageCount) <= num(s1.stats.outputMessageCount); i++) { sleep(100); s2 = sp.tourPlain.stats(); }
print("STATS", s1.stats.status, num(s1.stats.inputMessageCount), num(s2.stats.inputMessageCount), num(s1.stats.outputMessageCount), num(s2.stats.outputMessageCount));

tryIt("MODIFY-RUNNING", () => sp.tourPlain.modify([src, {$match: {event_type: 1}}, emit]));
tryIt("STOP", () => sp.tourPlain.stop());
print("STATE", sp.listStreamProcessors({name: "tourPlain"})[0].state);
tryIt("RENAME", () => sp.tourPlain.modify({name: "tourRenamed"}));
print("LIST", names({name: {$regex: '^tour'}}));
tryIt("MODIFY-SOURCE", () => sp.tourRenamed.modify([SRC2, {$match: {event_type: 0}}, emit], {resumeFromCheckpoint: true}));
tryIt("MODIFY-MATCH", () => sp.tourRenamed.modify([src, {$match: {event_type: 1}}, emit], {resumeFromCheckpoint: true}));
tryIt("START", () => sp.tourRenamed.start());
tryIt("START-AGAIN", () => sp.tourRenamed.start());
print("SAMPLE2-BEGIN");
sp.tourRenamed.sample({limit: 2});
print("SAMPLE2-END");
tryIt("DROP", () => sp.tourRenamed.drop());
tryIt("DROP", () => sp.tourDlq.drop());
print("LIST", names({name: {$regex: '^tour'}}));
print("LISTALL", names(null));

print("DEFAULTS", JSON.stringify(sp.listWorkspaceDefaults()));
print("CONNECTIONS", JSON.stringify(sp.listConnections()));
print("CONNECTIONS-FILTERED", JSON.stringify(sp.listConnections({type: "Cluster"})));
`

// A mongosh tour of every sp method on the sample source (issue 9, acceptance 1): create with
// and without a dead-letter queue, list with filters, start, sample, stats that grow, stop,
// modify in allowed and refused cases, start again, drop; then, in a terminal, sp.process() of
// a tumbling window printing window results until Ctrl-C, after which the temporary processor
// is gone; and the workspace defaults and connections, without their credentials.
func TestMongoshStreamProcessorTour(t *testing.T) {
	t.Parallel()
	start := time.Now()
	defer func() { t.Logf("took %s", time.Since(start)) }()
	s := startSpid(t, "--checkpoint-interval", "200ms")
	a := newAPI(t, s.Creds(t))
	const clusterSecret, kafkaSecret = "cluster-secret-Xq7", "kafka-secret-Zr9"
	a.ok("POST", "/streams/default/connections", map[string]any{
		"name": "dlqCluster", "type": "Cluster", "clusterName": "c0", "connectionString": "mongodb://db.internal:27017/",
		"dbRoleToExecute": map[string]any{"role": "readWriteAnyDatabase", "type": "BUILT_IN"},
		"authentication":  map[string]any{"username": "executor", "password": clusterSecret},
	})
	a.ok("POST", "/streams/default/connections", map[string]any{
		"name": "kafka1", "type": "Kafka", "bootstrapServers": "broker:9092",
		"authentication": map[string]any{"mechanism": "SCRAM-256", "username": "svc", "password": kafkaSecret},
		"security":       map[string]any{"protocol": "SASL_SSL"},
	})

	script := strings.NewReplacer("SRC2", solarSource(1000, 2), "SRC", solarSource(1000, 1)).Replace(tourScript)
	out := mongoshScript(t, s.Admin(t, "", ""), script)
	t.Logf("script done after %s", time.Since(start))
	step := func(marker string) []string {
		t.Helper()
		l := markedLines(out, marker)
		if len(l) == 0 {
			t.Fatalf("no %s line in:\n%s", marker, out)
		}
		return l
	}
	expect := func(marker string, want ...string) {
		t.Helper()
		got := step(marker)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: got\n%s\nwant\n%s", marker, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}

	expect("LIST", `["tourDlq","tourPlain"]`, `["tourDlq","tourRenamed"]`, `[]`)
	expect("LISTDLQ", `["tourDlq"]`)
	expect("LISTALL", `["other","tourDlq","tourPlain"]`, `["other"]`)
	expect("STATE", "STARTED", "STOPPED")
	expect("START", `ok {"ok":1}`, `ok {"ok":1}`)
	expect("STOP", `ok {"ok":1}`)
	expect("RENAME", `ok {"ok":1}`)
	expect("MODIFY-MATCH", `ok {"ok":1}`)
	expect("DROP", `ok {"ok":1}`, `ok {"ok":1}`)
	expect("MODIFY-RUNNING", "error 20 IllegalOperation stream processor tourPlain is running: stop it before modifying it")
	if got := step("MODIFY-SOURCE")[0]; !strings.HasPrefix(got, "error 420 StreamProcessorInvalidOptions ") || !strings.Contains(got, "$source") {
		t.Errorf("modify of $source with resumeFromCheckpoint: %s", got)
	}
	if got := step("START-AGAIN")[0]; !strings.HasPrefix(got, "error 20 IllegalOperation ") || !strings.Contains(got, "tourRenamed") {
		t.Errorf("starting a started processor: %s", got)
	}

	// sample() prints solar documents: three, then the cursor ends at its limit.
	sample := between(t, out, "SAMPLE-BEGIN", "SAMPLE-END")
	if n := strings.Count(sample, "device_id: 'device_"); n != 3 {
		t.Errorf("sample({limit: 3}) printed %d solar documents:\n%s", n, sample)
	}
	for _, f := range []string{"group_id: ", "timestamp: '2024-01-01T00:00:", "max_watts: ", "event_type: 0", "obs: {", "watts: ", "temp: "} {
		if !strings.Contains(sample, f) {
			t.Errorf("sample output lacks %q:\n%s", f, sample)
		}
	}
	// After the modify the processor passes only fault readings (event_type 1).
	sample2 := between(t, out, "SAMPLE2-BEGIN", "SAMPLE2-END")
	if strings.Count(sample2, "event_type: 1") != 2 || strings.Contains(sample2, "event_type: 0") {
		t.Errorf("sample after modifying $match to event_type 1:\n%s", sample2)
	}

	// stats(): counts grow between two calls of a running processor.
	f := strings.Fields(step("STATS")[0])
	if len(f) != 5 || f[0] != "running" {
		t.Fatalf("STATS line %v", f)
	}
	in1, in2, out1, out2 := atoi(t, f[1]), atoi(t, f[2]), atoi(t, f[3]), atoi(t, f[4])
	if in2 <= in1 || out2 <= out1 || out1 > in1 {
		t.Errorf("stats did not grow: input %d → %d, output %d → %d", in1, in2, out1, out2)
	}

	expect("DEFAULTS", `{"defaultTierSize":"SP10","maxTierSize":"SP50","ok":1}`)
	conns := step("CONNECTIONS")[0]
	for _, want := range []string{`{"name":"sample_stream_solar","type":"Sample"}`, `"name":"dlqCluster","type":"Cluster"`,
		`"name":"kafka1","type":"Kafka","bootstrapServers":"broker:9092"`} {
		if !strings.Contains(conns, want) {
			t.Errorf("listConnections lacks %s: %s", want, conns)
		}
	}
	expect("CONNECTIONS-FILTERED", `[{"name":"dlqCluster","type":"Cluster","clusterName":"c0","dbRoleToExecute":{"role":"readWriteAnyDatabase","type":"BUILT_IN"}}]`)
	for _, secret := range []string{clusterSecret, kafkaSecret, "executor", "svc"} {
		if strings.Contains(out, secret) || strings.Contains(s.Stderr.String(), secret) {
			t.Errorf("a credential (%s) reached mongosh's output or spid's log", secret)
		}
	}

	tourProcess(t, s)
}

// tourProcess runs sp.process() of a tumbling window in an interactive mongosh, waits for
// window results, presses Ctrl-C, and checks the temporary processor is gone.
func tourProcess(t *testing.T, s *spid) {
	term := startTerminal(t, s.Admin(t, "", ""))
	off := len(term.waitFor(0, "test> "))
	term.send(`sp.process([` + solarSource(2000, 3) + `, {$tumblingWindow: {interval: {size: 100, unit: "ms"}, ` +
		`allowedLateness: {size: 0, unit: "second"}, pipeline: [{$group: {_id: "$group_id", n: {$sum: 1}, watts: {$sum: "$obs.watts"}}}]}}])`)
	screen := term.waitFor(off, "end: ISODate('2024-01-01T00:00:00.200Z')")
	results := screen[off:]
	for _, want := range []string{"window: {", "start: ISODate('2024-01-01T00:00:00.000Z')", "end: ISODate('2024-01-01T00:00:00.100Z')", "n: ", "watts: "} {
		if !strings.Contains(results, want) {
			t.Errorf("sp.process() output lacks %q:\n%s", want, results)
		}
	}
	// The temporary processor's name is in spid's operational log.
	var started []string
	waitUntil(t, "spid to log the sp.process() start", func() bool {
		started = regexp.MustCompile(`msg="sp\.process\(\) started" workspace=default processor=(process-[0-9a-f]+)`).FindStringSubmatch(s.Stderr.String())
		return started != nil
	})
	tmp := started[1]
	if strings.Contains(s.Stderr.String(), `msg="processor dropped" workspace=default processor=`+tmp) {
		t.Fatal("the temporary processor was dropped before Ctrl-C")
	}

	if _, err := term.pty.Write([]byte{3}); err != nil { // Ctrl-C
		t.Fatal(err)
	}
	off = len(term.screen())
	term.waitFor(off, "test> ")
	waitUntil(t, "spid to drop "+tmp, func() bool {
		return strings.Contains(s.Stderr.String(), `msg="processor dropped" workspace=default processor=`+tmp)
	})
	// A later command confirms it: the temporary processor no longer exists, and the shell
	// still works. mongosh silently drops a line typed while it is still handling the
	// interrupt, so the test first types until the shell answers.
	for i := 0; ; i++ {
		off = len(term.screen())
		term.send(`print("READY")`)
		if strings.Contains(term.waitFor(off, "test> ")[off:], "READY\n") {
			break
		}
		if i == 20 {
			t.Fatalf("mongosh does not answer after Ctrl-C:\n%s", term.screen())
		}
	}
	off = len(term.screen())
	term.send(`print("GONE", (() => { try { return JSON.stringify(sp.getProcessor({name: "` + tmp + `"}).drop()) } catch (e) { return e.codeName } })())`)
	term.waitFor(off, "GONE StreamProcessorDoesNotExist")
}

// between returns the text of out between two marker lines.
func between(t *testing.T, out, begin, end string) string {
	t.Helper()
	i, j := strings.Index(out, begin+"\n"), strings.Index(out, end+"\n")
	if i < 0 || j < i {
		t.Fatalf("no %s … %s in:\n%s", begin, end, out)
	}
	return out[i+len(begin) : j]
}

func atoi(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
