package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Faults around $merge into a MongoDB deployment (issue 11, acceptance 1 and 7): spid killed
// with SIGKILL in the middle of a windowed $merge, and the deployment (embedded FerretDB)
// stopped and started again on the same address with the same data while a processor writes.

// clusterConn creates the Cluster connection "fdb" to uri (execute-as readWriteAnyDatabase)
// in spid's default workspace.
func clusterConn(t *testing.T, s *spid, uri string) {
	t.Helper()
	newAPI(t, s.Creds(t)).ok("POST", "/streams/default/connections", map[string]any{"name": "fdb", "type": "Cluster",
		"clusterName": "ferret", "connectionString": uri, "dbRoleToExecute": map[string]any{"role": "readWriteAnyDatabase", "type": "BUILT_IN"}})
}

// mergeD is {$merge: {into: {connectionName: "fdb", db, coll}}}: whenMatched merge,
// whenNotMatched insert, on _id.
func mergeD(db, coll string) bson.D {
	return bson.D{{Key: "$merge", Value: bson.D{{Key: "into", Value: bson.D{
		{Key: "connectionName", Value: "fdb"}, {Key: "db", Value: db}, {Key: "coll", Value: coll}}}}}}
}

// rawCollection returns a collection's documents as the deployment stores them (every field,
// in stored order, as canonical Extended JSON), sorted by _id.
func rawCollection(t *testing.T, c *mongo.Client, db, coll string) []string {
	t.Helper()
	cur, err := c.Database(db).Collection(coll).Find(t.Context(), bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for cur.Next(t.Context()) {
		b, err := bson.MarshalExtJSON(cur.Current, true, false)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	if err := cur.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// countDocs counts a collection's documents.
func countDocs(t *testing.T, c *mongo.Client, db, coll string, filter bson.D) int64 {
	t.Helper()
	if filter == nil {
		filter = bson.D{}
	}
	n, err := c.Database(db).Collection(coll).CountDocuments(t.Context(), filter)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// idemWindows is the number of 100 ms windows the idempotence pipeline fills (its $match lets
// through the first 3 s of the seeded stream's event time), idemGroups the groups in each.
const idemWindows, idemGroups = 30, 4

// idemPipeline is the seeded sample source (500 documents a second of event time, so every
// 100 ms window holds each of the four groups) limited to its first three seconds of event
// time, grouped per 100 ms tumbling window and group_id modulo 4 (few documents: FerretDB's
// upserts scan the collection), merged into db.coll. The _id of each result is {start: the
// window's start, group}: the same window gives the same _id in every
// run, so a window output again after a restart updates its own document. The $match is on
// the documents, not the watermark: later documents still move event time on, so the last
// window closes.
func idemPipeline(db, coll string) bson.A {
	window := bson.D{{Key: "$tumblingWindow", Value: bson.D{
		{Key: "interval", Value: bson.D{{Key: "size", Value: 100}, {Key: "unit", Value: "ms"}}},
		{Key: "allowedLateness", Value: bson.D{{Key: "size", Value: 0}, {Key: "unit", Value: "second"}}},
		{Key: "pipeline", Value: bson.A{bson.D{{Key: "$group", Value: bson.D{
			{Key: "_id", Value: bson.D{{Key: "start", Value: bson.D{{Key: "$meta", Value: "stream.window.start"}}}, {Key: "group", Value: bson.D{{Key: "$mod", Value: bson.A{"$group_id", idemGroups}}}}}},
			{Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}},
			{Key: "watts", Value: bson.D{{Key: "$sum", Value: "$obs.watts"}}},
			{Key: "maxTemp", Value: bson.D{{Key: "$max", Value: "$obs.temp"}}},
			{Key: "first", Value: bson.D{{Key: "$min", Value: "$timestamp"}}}}}}}},
	}}}
	limit := bson.D{{Key: "$match", Value: bson.D{{Key: "timestamp", Value: bson.D{{Key: "$lt", Value: "2024-01-01T00:00:03"}}}}}}
	return bson.A{solarSourceD(500, 11), limit, window, mergeD(db, coll)}
}

// lastWindow filters the results of the idempotence pipeline's last window.
var lastWindow = bson.D{{Key: "_id.start", Value: time.Date(2024, 1, 1, 0, 0, 2, 900e6, time.UTC)}}

// finishIdem waits until processor name on c has written its last window into db.coll, then
// stops it: stop takes a final checkpoint, which waits for every write before it to be
// acknowledged, so the collection is complete.
func finishIdem(t *testing.T, c *mongo.Client, fc *mongo.Client, name, db, coll string) {
	t.Helper()
	waitUntil(t, name+" to write its last window", func() bool {
		if state, code, msg := processorState(t, c, name); state != "STARTED" || msg != "" {
			t.Fatalf("%s: %s %d %s", name, state, code, msg)
		}
		return countDocs(t, fc, db, coll, lastWindow) > 0
	})
	mustAdmin(t, c, bson.D{{Key: "stopStreamProcessor", Value: name}})
}

// kill -9 of spid in the middle of sample → $tumblingWindow/$group → $merge (issue 11,
// acceptance 1). spid restarts on the same data directory, resumes the processor from its last
// checkpoint (the windows after it are computed and merged again, upserting the documents
// they wrote before the kill), and the collection ends equal, every field included in its
// stored order and type, to the one an uninterrupted run of the same processor on a second
// spid writes.
//
// Nothing needs excluding from the comparison: the seeded sample source gives the same
// documents with the same event times in every run (config.seed; t0 fixed), the window's
// results hold no processing time (no _ts: $group builds new documents; _stream_meta.window
// is the window's bounds and _stream_meta.source the generator's fixed metadata), and the
// _id is the window's start with the group. Both runs cover
// the same input: the $match ends the stream's input at three seconds of event time, and each
// run is compared after it wrote the last of those windows.
func TestMergeIdempotentAfterKill9(t *testing.T) {
	t.Parallel()
	const name, db = "idem", "idem"
	f := startFerret(t)
	fc := connectFerret(t, f.URI)
	// Checkpoints a second apart leave time to kill spid between two of them.
	args := []string{"--checkpoint-interval", "1s", "--log-level", "debug"}
	dir := t.TempDir()
	s1 := startSpidIn(t, dir, args...)
	ref := startSpid(t, "--checkpoint-interval", "200ms")
	c1, cref := connectGo(t, s1.Admin(t, "", "")), connectGo(t, ref.Admin(t, "", ""))
	for _, run := range []struct {
		s    *spid
		c    *mongo.Client
		coll string
	}{{s1, c1, "crashed"}, {ref, cref, "uninterrupted"}} {
		clusterConn(t, run.s, f.URI)
		mustAdmin(t, run.c, bson.D{{Key: "createStreamProcessor", Value: name}, {Key: "pipeline", Value: idemPipeline(db, run.coll)}})
		mustAdmin(t, run.c, bson.D{{Key: "startStreamProcessor", Value: name}})
	}

	// Kill once a quarter of the windows are merged, well before the last, and results were
	// merged after the last committed checkpoint: the restart computes those windows again and
	// merges them over the documents they wrote (unless a checkpoint slips in before the
	// signal, which the test logs).
	cpLine := `msg="checkpoint committed" workspace=default processor=` + name + " "
	var atKill, atCP int64
	seenCP := 0
	waitUntil(t, "results merged after a checkpoint, a quarter of the windows, before the kill", func() bool {
		cps := strings.Count(s1.Stderr.String(), cpLine)
		atKill = countDocs(t, fc, db, "crashed", nil)
		if countDocs(t, fc, db, "crashed", lastWindow) > 0 {
			t.Fatal("the processor wrote its last window before the test could kill spid")
		}
		if cps != seenCP {
			seenCP, atCP = cps, atKill // at least what the checkpoint covers
			return false
		}
		return cps > 0 && atKill >= atCP+idemGroups && atKill >= idemWindows*idemGroups/4
	})
	s1.Kill(t)
	atKill = countDocs(t, fc, db, "crashed", nil)
	replayed := "some of them merged again after the restart"
	if checkpoints := strings.Count(s1.Stderr.String(), cpLine); checkpoints != seenCP {
		replayed = "but a checkpoint committed before the signal, so perhaps none are merged again"
	}

	s2 := startSpidIn(t, dir, args...)
	c2 := connectGo(t, s2.Admin(t, "", ""))
	if state, _, msg := processorState(t, c2, name); state != "STARTED" {
		t.Fatalf("after kill -9 and restart the processor is %s (%s), want STARTED", state, msg)
	}
	waitUntil(t, "spid to resume the processor", func() bool {
		return strings.Contains(s2.Stderr.String(), `msg="resuming processor from its last checkpoint" workspace=default processor=`+name)
	})
	finishIdem(t, c2, fc, name, db, "crashed")
	finishIdem(t, cref, fc, name, db, "uninterrupted")

	got, want := rawCollection(t, fc, db, "crashed"), rawCollection(t, fc, db, "uninterrupted")
	if len(want) != idemWindows*idemGroups {
		t.Errorf("the uninterrupted run wrote %d documents, want %d windows × %d groups", len(want), idemWindows, idemGroups)
	}
	if len(got) != len(want) {
		t.Errorf("after kill -9 the collection has %d documents, the uninterrupted run's %d", len(got), len(want))
	}
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Errorf("document %d differs:\nafter kill -9:  %s\nuninterrupted:  %s", i, g, w)
			break
		}
	}
	// Every window is there once, with every group.
	starts := map[string]int{}
	for _, d := range want {
		var doc struct {
			ID struct {
				Start time.Time `bson:"start"`
			} `bson:"_id"`
		}
		var raw bson.Raw
		if err := bson.UnmarshalExtJSON([]byte(d), true, &raw); err != nil {
			t.Fatal(err)
		}
		if err := bson.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		starts[doc.ID.Start.UTC().Format("15:04:05.000")]++
	}
	for i := range idemWindows {
		k := time.Date(2024, 1, 1, 0, 0, 0, i*100e6, time.UTC).Format("15:04:05.000")
		if starts[k] != idemGroups {
			t.Errorf("window %s has %d documents, want %d", k, starts[k], idemGroups)
		}
	}
	if len(want) > 0 {
		t.Logf("%d documents compared; %d were in the collection at the kill, at least %d of them after the last checkpoint, %s; first: %s",
			len(want), atKill, atKill-atCP, replayed, want[0])
	}
	if strings.Contains(strings.Join(got, ""), `"_ts"`) {
		t.Errorf("a window result carries _ts")
	}
}

// outagePipeline is the seeded sample source at 100 documents a second, each merged into
// db.coll with its timestamp (unique: one every 10 ms of event time) as _id, so a document
// written again after a retry updates itself and the collection shows exactly which inputs
// arrived.
func outagePipeline(db, coll string) bson.A {
	return bson.A{solarSourceD(100, 5),
		bson.D{{Key: "$addFields", Value: bson.D{{Key: "_id", Value: "$timestamp"}}}},
		mergeD(db, coll)}
}

// checkAllInputs stops processor name and checks that db.coll holds exactly its inputs: as many
// documents as inputMessageCount, with the timestamps of documents 0 … n-1 of the stream.
func checkAllInputs(t *testing.T, c, fc *mongo.Client, name, db, coll string) int64 {
	t.Helper()
	mustAdmin(t, c, bson.D{{Key: "stopStreamProcessor", Value: name}})
	var st struct {
		Stats struct{ InputMessageCount, OutputMessageCount, DlqMessageCount int64 }
	}
	if err := c.Database("admin").RunCommand(t.Context(), bson.D{{Key: "getStreamProcessorStats", Value: name}}).Decode(&st); err != nil {
		t.Fatal(err)
	}
	n := st.Stats.InputMessageCount
	if st.Stats.OutputMessageCount != n || st.Stats.DlqMessageCount != 0 {
		t.Errorf("%s: %d inputs, %d outputs, %d dead letters", name, n, st.Stats.OutputMessageCount, st.Stats.DlqMessageCount)
	}
	cur, err := fc.Database(db).Collection(coll).Find(t.Context(), bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		t.Fatal(err)
	}
	var ids []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(t.Context(), &ids); err != nil {
		t.Fatal(err)
	}
	if int64(len(ids)) != n {
		t.Errorf("%s.%s holds %d documents for %d inputs", db, coll, len(ids), n)
	}
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, d := range ids {
		if want := t0.Add(time.Duration(i) * 10 * time.Millisecond).Format("2006-01-02T15:04:05.000+00:00"); d.ID != want {
			t.Errorf("%s.%s: document %d is %s, want %s (an input is missing)", db, coll, i, d.ID, want)
			break
		}
	}
	return n
}

// outageState reads what getStreamProcessor and getStreamProcessorStats say of a processor:
// both show the error the runtime retries after.
func outageState(t *testing.T, c *mongo.Client, name string) (state string, code int32, msg string, retryable bool) {
	t.Helper()
	state, code, msg = processorState(t, c, name)
	st := mustAdmin(t, c, bson.D{{Key: "getStreamProcessorStats", Value: name}})
	sMsg, _ := st["errorMsg"].(string)
	if sMsg != msg {
		// They are read one after the other: the state may have moved in between. Read
		// again; what a test acts on is getStreamProcessor's.
		return outageState(t, c, name)
	}
	retryable, _ = st["errorRetryable"].(bool)
	return state, code, msg, retryable
}

// The deployment goes down while a processor merges into it, and comes back on the same
// address with its data (issue 11, acceptance 7). While it is down the processor stays
// STARTED, and getStreamProcessor and stats show errorCode 421 with an errorMsg naming the
// deployment's host and the namespace; once it is back the processor catches up from its
// last checkpoint and the error clears. Nothing is lost: the collection holds every input the
// processor read, each once.
func TestMergeSurvivesDeploymentOutage(t *testing.T) {
	t.Parallel()
	const name, db, coll = "outage", "faults", "solar"
	f := startFerret(t)
	fc := connectFerret(t, f.URI)
	s := startSpid(t, "--checkpoint-interval", "300ms", "--processor-retry-timeout", "5m")
	// A short server selection timeout, so that each attempt against the stopped deployment
	// fails within a second rather than the default ten.
	clusterConn(t, s, f.URI+"?serverSelectionTimeoutMS=1000")
	c := connectGo(t, s.Admin(t, "", ""))
	mustAdmin(t, c, bson.D{{Key: "createStreamProcessor", Value: name}, {Key: "pipeline", Value: outagePipeline(db, coll)}})
	mustAdmin(t, c, bson.D{{Key: "startStreamProcessor", Value: name}})
	waitUntil(t, "100 documents merged", func() bool { return countDocs(t, fc, db, coll, nil) >= 100 })

	f.Stop(t)
	retrying := `msg="processor error; retrying from the last checkpoint" workspace=default processor=` + name + " "
	var msg string
	waitUntil(t, "the processor to report the outage and retry twice", func() bool {
		state, code, m, retryable := outageState(t, c, name)
		if state != "STARTED" {
			t.Fatalf("during the outage the processor is %s (%d %s), want STARTED", state, code, m)
		}
		if m == "" {
			return false
		}
		if code != 421 || !retryable || !strings.Contains(m, f.Addr) || !strings.Contains(m, db+"."+coll) {
			t.Fatalf("during the outage: errorCode %d, errorRetryable %v, errorMsg %q; want 421, true, naming %s and %s.%s", code, retryable, m, f.Addr, db, coll)
		}
		msg = m
		return strings.Count(s.Stderr.String(), retrying) >= 2
	})
	t.Logf("errorMsg during the outage: %s", msg)

	f.Start(t)
	n := countDocs(t, fc, db, coll, nil)
	waitUntil(t, "the processor to catch up and clear its error", func() bool {
		state, code, m, _ := outageState(t, c, name)
		if state != "STARTED" {
			t.Fatalf("after the outage the processor is %s (%d %s), want STARTED", state, code, m)
		}
		return m == "" && countDocs(t, fc, db, coll, nil) >= n+100
	})
	got := checkAllInputs(t, c, fc, name, db, coll)
	t.Logf("%d inputs merged, %d before the deployment came back", got, n)
	if strings.Contains(s.Stderr.String(), "level=ERROR") {
		t.Errorf("spid logged an error:\n%s", s.Stderr)
	}
}

// An outage longer than the retry window (--processor-retry-timeout, here 3 s; 5 minutes by
// default, spec §4.5) fails the processor: FAILED, errorCode 421, errorRetryable, and an
// errorMsg naming the deployment's host and how long the runtime retried. Started again once
// the deployment is back, it resumes from its checkpoint with nothing lost.
func TestMergeOutageOutlastsRetryWindow(t *testing.T) {
	t.Parallel()
	const name, db, coll = "outlasted", "faults", "outlasted"
	f := startFerret(t)
	fc := connectFerret(t, f.URI)
	s := startSpid(t, "--checkpoint-interval", "300ms", "--processor-retry-timeout", "3s")
	clusterConn(t, s, f.URI+"?serverSelectionTimeoutMS=500")
	c := connectGo(t, s.Admin(t, "", ""))
	mustAdmin(t, c, bson.D{{Key: "createStreamProcessor", Value: name}, {Key: "pipeline", Value: outagePipeline(db, coll)}})
	mustAdmin(t, c, bson.D{{Key: "startStreamProcessor", Value: name}})
	waitUntil(t, "50 documents merged", func() bool { return countDocs(t, fc, db, coll, nil) >= 50 })

	// A processor on a connection with credentials, started during the outage, fails the same
	// way and its messages carry no credential.
	const password = "outage-Secret-0815"
	newAPI(t, s.Creds(t)).ok("POST", "/streams/default/connections", map[string]any{"name": "fdbauth", "type": "Cluster",
		"clusterName": "ferret", "connectionString": f.URI + "?serverSelectionTimeoutMS=500",
		"dbRoleToExecute": map[string]any{"role": "readWriteAnyDatabase", "type": "BUILT_IN"},
		"authentication":  map[string]any{"username": "spiwriter", "password": password}})
	authed := outagePipeline(db, "authed")
	authed[len(authed)-1] = bson.D{{Key: "$merge", Value: bson.D{{Key: "into", Value: bson.D{
		{Key: "connectionName", Value: "fdbauth"}, {Key: "db", Value: db}, {Key: "coll", Value: "authed"}}}}}}
	mustAdmin(t, c, bson.D{{Key: "createStreamProcessor", Value: "authed"}, {Key: "pipeline", Value: authed}})

	f.Stop(t)
	mustAdmin(t, c, bson.D{{Key: "startStreamProcessor", Value: "authed"}})
	var msg string
	waitUntil(t, "the processors to fail", func() bool {
		if state, _, _, _ := outageState(t, c, "authed"); state != "FAILED" {
			return false
		}
		state, code, m, retryable := outageState(t, c, name)
		if state != "FAILED" {
			return false
		}
		if code != 421 || !retryable || !strings.Contains(m, f.Addr) || !strings.Contains(m, db+"."+coll) || !strings.Contains(m, "retried for") {
			t.Fatalf("FAILED with errorCode %d, errorRetryable %v, errorMsg %q; want 421, true, naming %s, %s.%s and the retries", code, retryable, m, f.Addr, db, coll)
		}
		msg = m
		return true
	})
	t.Logf("errorMsg: %s", msg)
	if _, code, m, _ := outageState(t, c, "authed"); code != 421 || !strings.Contains(m, f.Addr) || !strings.Contains(m, db+".authed") {
		t.Errorf("the processor with credentials FAILED with %d %q", code, m)
	}
	var replies []string
	for _, cmd := range []bson.D{{{Key: "listStreamProcessors", Value: 1}}, {{Key: "getStreamProcessor", Value: "authed"}},
		{{Key: "getStreamProcessorStats", Value: "authed"}, {Key: "verbose", Value: true}}} {
		replies = append(replies, fmt.Sprint(mustAdmin(t, c, cmd)))
	}
	if !strings.Contains(replies[0], f.Addr) {
		t.Errorf("listStreamProcessors does not show the failure: %s", replies[0])
	}
	for _, r := range append(replies, s.Stdout.String(), s.Stderr.String()) {
		if strings.Contains(r, password) || strings.Contains(r, "spiwriter") {
			t.Errorf("a reply or spid's log carries a credential: %s", r)
		}
	}

	f.Start(t)
	n := countDocs(t, fc, db, coll, nil)
	mustAdmin(t, c, bson.D{{Key: "startStreamProcessor", Value: name}})
	waitUntil(t, "the restarted processor to catch up", func() bool {
		state, code, m, _ := outageState(t, c, name)
		if state != "STARTED" || m != "" {
			t.Fatalf("started again after the outage: %s %d %s", state, code, m)
		}
		return countDocs(t, fc, db, coll, nil) >= n+50
	})
	checkAllInputs(t, c, fc, name, db, coll)
}
