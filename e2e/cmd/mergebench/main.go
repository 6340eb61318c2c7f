// Command mergebench measures, in one run on one FerretDB, how fast spid's $merge upserts
// documents into a collection against a hand-written Go-driver bulk-write loop doing the same
// upserts (issue 11, acceptance 10):
//
//   - (a) the loop, in a child process of its own (this binary with -loop-child), as spid runs
//     in a process of its own: unordered BulkWrite calls of batchSize UpdateOne{filter: {_id},
//     update: {$set: doc without _id}, upsert: true} models, one call at a time, each waiting
//     for its acknowledgement, as spid's sink does (connectors/mongodb);
//   - (b) spid, a child process, running $source: {documents: [...]} → $merge into a
//     collection of the same FerretDB through a Cluster connection (whenMatched merge,
//     whenNotMatched insert, on _id: the same upserts).
//
// Both write the same -docs documents: the inline source gives each document its event time
// in _ts and its stream metadata in _stream_meta, and the loop writes those fields too, so the
// bytes on the wire match (the first round compares one document of each collection and warns
// if they differ). Each is timed from its start (the loop's "go", spid's startStreamProcessor)
// until a count of its collection, polled every 20 ms with the driver, reaches -docs; each
// round writes into fresh collections, dropped after it; (a) and (b) alternate over -rounds
// rounds and the median round of each is reported, with the CPU time per document (from
// /proc) of the writing process and of FerretDB's.
//
// The inline source holds its documents in the createStreamProcessor command, which MongoDB
// limits to 16 MiB (MongoDB manual, "BSON Document Size"): -docs × -size must stay under it.
//
// The reference server is FerretDB v1.24 embedded (SQLite), in a child process of its own
// (this binary with -serve-ferretdb); FerretDB, the writer being measured and this process
// share the machine's CPUs, so on a machine with few CPUs the ratio is mostly one of CPU time
// per document, FerretDB's included.
//
// FerretDB 1.24's SQLite backend finds the document of an update's filter {_id: v} by
// json_extract over every row of the collection (a CPU profile of its process shows it spends
// most of its time in SQLite's JSON parsing), so each upsert costs a scan of the collection
// and N upserts cost O(N²): 50,000 would take hours, so -docs is 2,000 by default. Both writers
// pay this alike; it dominates both, and the count polled every 20 ms costs FerretDB a scan
// too. The figures therefore say whether spid keeps up with FerretDB, not how fast spid's sink
// can go against a faster server.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/spi-streams/spi/e2e/internal/benchkit"
)

// batchSize is the most documents spid's runtime reads per source batch (processor/runner.go,
// batchSize), so the most its $merge sink gets per WriteBatch: the loop's batch too.
const batchSize = 1024

// maxCommand is MongoDB's document size limit, which bounds createStreamProcessor's command.
const maxCommand = 16 << 20

const dbName = "mergebench"

type config struct {
	spid   string
	docs   int
	size   int
	rounds int
	// loopChild, when set, makes this process the loop of (a): "uri,coll,docs,size".
	loopChild string
}

func main() {
	var cfg config
	flag.StringVar(&cfg.spid, "spid", "../bin/spid", "path of the spid binary")
	flag.IntVar(&cfg.docs, "docs", 2_000, "documents upserted per measurement (each upsert costs FerretDB a scan of the collection: see the package comment)")
	flag.IntVar(&cfg.size, "size", 200, "approximate size of each input document in bytes (before _ts and _stream_meta)")
	flag.IntVar(&cfg.rounds, "rounds", 3, "rounds of (a) and (b); the median is reported")
	serveFerret := flag.Bool("serve-ferretdb", false, "internal: run the reference server and print its URI")
	flag.StringVar(&cfg.loopChild, "loop-child", "", "internal: run as the bulk-write loop of (a), given uri,coll,docs,size")
	flag.Parse()
	var err error
	switch {
	case *serveFerret:
		err = benchkit.ServeFerretDB("mergebench")
	case cfg.loopChild != "":
		err = runLoopChild(cfg.loopChild)
	default:
		err = run(cfg)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mergebench:", err)
		os.Exit(1)
	}
}

// docID is document i's _id. A string: FerretDB 1.24's SQLite backend pushes a filter {_id: v}
// down to SQLite (a json_extract of every row) only when v is a string or an ObjectId
// (internal/backends/sqlite/collection.go); for any other type it decodes every document of the
// collection in Go, which costs both writers still more.
func docID(i int) string { return fmt.Sprintf("doc-%07d", i) }

// inputDoc is input document i, about size bytes: _id docID(i) and a few fields of the usual
// kinds.
func inputDoc(i, size int) bson.Raw {
	idx, b := bsoncore.AppendDocumentStart(nil)
	b = bsoncore.AppendStringElement(b, "_id", docID(i))
	b = bsoncore.AppendStringElement(b, "device_id", fmt.Sprintf("sensor-%03d", i%97))
	b = bsoncore.AppendInt64Element(b, "seq", int64(i))
	b = bsoncore.AppendDoubleElement(b, "temp", float64(i%400)/10)
	b = bsoncore.AppendBooleanElement(b, "ok", true)
	aidx, b2 := bsoncore.AppendArrayElementStart(b, "tags")
	b2 = bsoncore.AppendStringElement(b2, "0", "a")
	b2 = bsoncore.AppendStringElement(b2, "1", "b")
	b2 = bsoncore.AppendStringElement(b2, "2", "c")
	b, _ = bsoncore.AppendArrayEnd(b2, aidx)
	pad := max(size-len(b)-len("note")-7-1, 1)
	b = bsoncore.AppendStringElement(b, "note", strings.Repeat("x", pad))
	b, _ = bsoncore.AppendDocumentEnd(b, idx)
	return b
}

// streamMeta is the _stream_meta spid's inline source gives each document.
var streamMeta = func() bson.Raw {
	b, _ := bson.Marshal(bson.D{{Key: "source", Value: bson.D{{Key: "type", Value: "documents"}}}})
	return b
}()

// outputDoc is input document i as spid's $merge writes it: with _ts (its event time, a
// date) and _stream_meta appended.
func outputDoc(i, size int, ts time.Time) bson.Raw {
	in := inputDoc(i, size)
	idx, b := bsoncore.AppendDocumentStart(make([]byte, 0, len(in)+64))
	b = append(b, in[4:len(in)-1]...)
	b = bsoncore.AppendDateTimeElement(b, "_ts", ts.UnixMilli())
	b = bsoncore.AppendDocumentElement(b, "_stream_meta", streamMeta)
	b, _ = bsoncore.AppendDocumentEnd(b, idx)
	return b
}

func run(cfg config) error {
	if cfg.docs < 1 || cfg.size < 64 || cfg.rounds < 1 {
		return errors.New("-docs and -rounds must be positive, -size at least 64")
	}
	input := make(bson.A, cfg.docs)
	total := 0
	for i := range cfg.docs {
		d := inputDoc(i, cfg.size)
		input[i] = d
		total += len(d)
	}
	if total > maxCommand-64<<10 {
		return fmt.Errorf("-docs %d × -size %d is %d bytes of inline documents; createStreamProcessor's command must stay under 16 MiB: lower -docs or -size", cfg.docs, cfg.size, total)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	ref, err := benchkit.StartChild("FerretDB", self, "-serve-ferretdb")
	if err != nil {
		return err
	}
	defer ref.Stop()
	fc, err := mongo.Connect(options.Client().ApplyURI(ref.URI).SetTimeout(10 * time.Minute))
	if err != nil {
		return err
	}
	defer func() { _ = fc.Disconnect(context.Background()) }()
	db := fc.Database(dbName)

	kit, err := benchkit.StartSpid(cfg.spid, "mergebench", 10*time.Minute)
	if err != nil {
		return err
	}
	defer kit.Stop()
	sp := spidChild{kit}
	if err := sp.connection(ref.URI); err != nil {
		return err
	}

	fmt.Printf("$merge into FerretDB: %d documents of %d bytes in (%d with _ts and _stream_meta), upserted on _id into a fresh collection\n",
		cfg.docs, len(inputDoc(0, cfg.size)), len(outputDoc(0, cfg.size, time.Now())))
	fmt.Printf("reference server: FerretDB v1.24.2 embedded (SQLite), its own process; batches of %d (spid's source batch), unordered, acknowledged; %d CPUs shared by FerretDB, the writer and this process\n\n",
		batchSize, benchkit.NProc())

	var as, bs, cpuA, cpuB, ferA, ferB []time.Duration
	for r := range cfg.rounds {
		// (a)
		collA := fmt.Sprintf("loop_%d", r+1)
		loop, err := startLoop(self, ref.URI, collA, cfg)
		if err != nil {
			return fmt.Errorf("(a): %w", err)
		}
		fer0, cpu0 := benchkit.ProcCPU(ref.Cmd.Process.Pid), benchkit.ProcCPU(loop.cmd.Process.Pid)
		t0 := time.Now()
		if _, err := io.WriteString(loop.stdin, "go\n"); err != nil {
			return fmt.Errorf("(a): %w", err)
		}
		if err := waitCount(db.Collection(collA), cfg.docs, loop.failed()); err != nil {
			return fmt.Errorf("(a): %w", err)
		}
		as = append(as, time.Since(t0))
		cpuA = append(cpuA, benchkit.ProcCPU(loop.cmd.Process.Pid)-cpu0)
		ferA = append(ferA, benchkit.ProcCPU(ref.Cmd.Process.Pid)-fer0)
		if err := loop.stop(); err != nil {
			return fmt.Errorf("(a): %w", err)
		}

		// (b)
		collB := fmt.Sprintf("spid_%d", r+1)
		name := fmt.Sprintf("merge-%d", r+1)
		if err := sp.create(name, input, collB); err != nil {
			return fmt.Errorf("(b): %w", err)
		}
		fer0, cpu0 = benchkit.ProcCPU(ref.Cmd.Process.Pid), benchkit.ProcCPU(sp.Cmd.Process.Pid)
		t0 = time.Now()
		if err := sp.start(name); err != nil {
			return fmt.Errorf("(b): %w", err)
		}
		if err := waitCount(db.Collection(collB), cfg.docs, sp.failed(name)); err != nil {
			return fmt.Errorf("(b): %w", err)
		}
		bs = append(bs, time.Since(t0))
		cpuB = append(cpuB, benchkit.ProcCPU(sp.Cmd.Process.Pid)-cpu0)
		ferB = append(ferB, benchkit.ProcCPU(ref.Cmd.Process.Pid)-fer0)
		if msg := sp.drop(name); msg != "" {
			fmt.Printf("warning: (b) round %d: the processor reported %q\n", r+1, msg)
		}

		if r == 0 {
			sameBytes(db, collA, collB)
		}
		ctx := context.Background()
		_ = db.Collection(collA).Drop(ctx)
		_ = db.Collection(collB).Drop(ctx)
	}

	a, b := benchkit.Median(as), benchkit.Median(bs)
	ca, cb, fa, fb := benchkit.Median(cpuA), benchkit.Median(cpuB), benchkit.Median(ferA), benchkit.Median(ferB)
	perDoc := func(d time.Duration) string {
		return fmt.Sprintf("%.1f", float64(d.Nanoseconds())/1e3/float64(cfg.docs))
	}
	fmt.Printf("%d round(s), (a) and (b) alternating; median round reported\n", cfg.rounds)
	fmt.Printf("%-46s  %10s  %9s  %12s  %15s\n", "writer", "docs/s", "elapsed", "CPU µs/doc", "FerretDB µs/doc")
	fmt.Printf("%-46s  %10.0f  %9s  %12s  %15s\n", "(a) Go driver BulkWrite loop (upserts)", float64(cfg.docs)/a.Seconds(), a.Round(time.Millisecond), perDoc(ca), perDoc(fa))
	fmt.Printf("%-46s  %10.0f  %9s  %12s  %15s\n", "(b) spid $source.documents → $merge", float64(cfg.docs)/b.Seconds(), b.Round(time.Millisecond), perDoc(cb), perDoc(fb))
	fmt.Printf("ratio (b)/(a): %.2fx   (goal: >= 0.90x); CPU per document (b)/(a): %.2fx; FerretDB's CPU per document (b)/(a): %.2fx\n",
		a.Seconds()/b.Seconds(), float64(cb)/float64(max(ca, 1)), float64(fb)/float64(max(fa, 1)))
	fmt.Println("CPU: user+system time from /proc over the timed span, median round; (a)'s is the loop's process, (b)'s spid's")
	fmt.Printf("rounds (a): %s\nrounds (b): %s\n", roundList(as), roundList(bs))
	return nil
}

func roundList(ds []time.Duration) string {
	var s []string
	for _, d := range ds {
		s = append(s, d.Round(time.Millisecond).String())
	}
	return strings.Join(s, " ")
}

// sameBytes compares document 0 of the two collections, field names and size, and warns if
// they differ (the _ts values differ, not their size).
func sameBytes(db *mongo.Database, collA, collB string) {
	ctx := context.Background()
	var da, db2 bson.Raw
	errA := db.Collection(collA).FindOne(ctx, bson.D{{Key: "_id", Value: docID(0)}}).Decode(&da)
	errB := db.Collection(collB).FindOne(ctx, bson.D{{Key: "_id", Value: docID(0)}}).Decode(&db2)
	if errA != nil || errB != nil {
		fmt.Printf("warning: could not compare the written documents: %v %v\n", errA, errB)
		return
	}
	keys := func(d bson.Raw) []string {
		var k []string
		es, _ := d.Elements()
		for _, e := range es {
			k = append(k, e.Key())
		}
		return k
	}
	if len(da) != len(db2) || !slices.Equal(keys(da), keys(db2)) {
		fmt.Printf("warning: the documents differ: (a) wrote %d bytes %v, (b) %d bytes %v\n", len(da), keys(da), len(db2), keys(db2))
	}
}

// waitCount polls coll's count every 20 ms until it holds n documents, or failed reports an
// error.
func waitCount(coll *mongo.Collection, n int, failed func() error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for {
		c, err := coll.CountDocuments(ctx, bson.D{})
		if err != nil {
			return err
		}
		if c >= int64(n) {
			return nil
		}
		if err := failed(); err != nil {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// loopChild is (a) running as a child process, connected and waiting for "go".
type loopChild struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{}
	err   error
}

func (l *loopChild) failed() func() error {
	return func() error {
		select {
		case <-l.done:
			return l.err
		default:
			return nil
		}
	}
}

func (l *loopChild) stop() error {
	_ = l.stdin.Close()
	<-l.done
	return l.err
}

// startLoop starts (a) in a child process and waits until it is connected, its documents
// built.
func startLoop(self, uri, coll string, cfg config) (*loopChild, error) {
	cmd := exec.Command(self, "-loop-child", fmt.Sprintf("%s,%s,%d,%d", uri, coll, cfg.docs, cfg.size))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	l := &loopChild{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "ready" {
				close(ready)
				break
			}
		}
		_, _ = io.Copy(io.Discard, out)
		if err := cmd.Wait(); err != nil {
			l.err = fmt.Errorf("the loop's process: %w", err)
		}
		close(l.done)
	}()
	select {
	case <-ready:
		return l, nil
	case <-l.done:
		return nil, fmt.Errorf("the loop did not start: %w", l.err)
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		<-l.done
		return nil, errors.New("the loop did not start")
	}
}

// runLoopChild is (a): it connects, builds the documents spid would write, says "ready",
// and on "go" upserts them in batches of batchSize, each an unordered BulkWrite of
// UpdateOne{filter: {_id}, update: {$set: fields but _id}, upsert: true} waited for before the
// next; then it waits for its standard input to end.
func runLoopChild(spec string) error {
	f := strings.Split(spec, ",")
	if len(f) != 4 {
		return fmt.Errorf("-loop-child %q: want uri,coll,docs,size", spec)
	}
	var n, size int
	if _, err := fmt.Sscan(f[2], &n); err != nil {
		return err
	}
	if _, err := fmt.Sscan(f[3], &size); err != nil {
		return err
	}
	ctx := context.Background()
	// A bulk write of batchSize upserts costs FerretDB a scan of the collection per upsert: on
	// a busy machine one takes over a minute, so the per-operation timeout is generous.
	cl, err := mongo.Connect(options.Client().ApplyURI(f[0]).SetTimeout(10 * time.Minute))
	if err != nil {
		return err
	}
	defer func() { _ = cl.Disconnect(ctx) }()
	if err := cl.Ping(ctx, nil); err != nil {
		return err
	}
	coll := cl.Database(dbName).Collection(f[1])
	in := bufio.NewReader(os.Stdin)
	docs := make([]bson.Raw, n)
	now := time.Now()
	for i := range n {
		docs[i] = outputDoc(i, size, now)
	}
	fmt.Println("ready")
	if _, err := in.ReadString('\n'); err != nil {
		return err
	}
	opts := options.BulkWrite().SetOrdered(false)
	for i := 0; i < n; i += batchSize {
		batch := docs[i:min(i+batchSize, n)]
		models := make([]mongo.WriteModel, len(batch))
		for j, d := range batch {
			id := d.Lookup("_id")
			fidx, filter := bsoncore.AppendDocumentStart(nil)
			filter = bsoncore.AppendValueElement(filter, "_id", bsoncore.Value{Type: bsoncore.Type(id.Type), Data: id.Value})
			filter, _ = bsoncore.AppendDocumentEnd(filter, fidx)
			sidx, set := bsoncore.AppendDocumentStart(nil)
			es, _ := d.Elements()
			for _, e := range es {
				if e.Key() != "_id" {
					set = append(set, e...)
				}
			}
			set, _ = bsoncore.AppendDocumentEnd(set, sidx)
			uidx, upd := bsoncore.AppendDocumentStart(nil)
			upd = bsoncore.AppendDocumentElement(upd, "$set", set)
			upd, _ = bsoncore.AppendDocumentEnd(upd, uidx)
			models[j] = mongo.NewUpdateOneModel().SetFilter(bson.Raw(filter)).SetUpdate(bson.Raw(upd)).SetUpsert(true)
		}
		if _, err := coll.BulkWrite(ctx, models, opts); err != nil {
			return fmt.Errorf("BulkWrite: %w", err)
		}
	}
	_, _ = io.Copy(io.Discard, in)
	return nil
}

// spidChild is spid running as a child process (benchkit.Spid).
type spidChild struct{ *benchkit.Spid }

// connection creates the Cluster connection "fdb" to FerretDB through the Admin API.
func (s *spidChild) connection(uri string) error {
	return s.CreateConnection(map[string]any{"name": "fdb", "type": "Cluster", "clusterName": "ferret", "connectionString": uri,
		"dbRoleToExecute": map[string]any{"role": "readWriteAnyDatabase", "type": "BUILT_IN"}})
}

// create creates processor name, $source: {documents: input} → $merge into coll (whenMatched
// merge, whenNotMatched insert, on _id: the defaults, spelled out).
func (s *spidChild) create(name string, input bson.A, coll string) error {
	pipe := bson.A{
		bson.D{{Key: "$source", Value: bson.D{{Key: "documents", Value: input}}}},
		bson.D{{Key: "$merge", Value: bson.D{
			{Key: "into", Value: bson.D{{Key: "connectionName", Value: "fdb"}, {Key: "db", Value: dbName}, {Key: "coll", Value: coll}}},
			{Key: "on", Value: "_id"}, {Key: "whenMatched", Value: "merge"}, {Key: "whenNotMatched", Value: "insert"}}}},
	}
	return s.Client.Database("admin").RunCommand(context.Background(), bson.D{{Key: "createStreamProcessor", Value: name}, {Key: "pipeline", Value: pipe}}).Err()
}

func (s *spidChild) start(name string) error {
	return s.Client.Database("admin").RunCommand(context.Background(), bson.D{{Key: "startStreamProcessor", Value: name}}).Err()
}

// failed returns a check that reports processor name's error, if it has one.
func (s *spidChild) failed(name string) func() error {
	last := time.Now()
	return func() error {
		if time.Since(last) < time.Second {
			return nil
		}
		last = time.Now()
		var st struct {
			State    string `bson:"state"`
			ErrorMsg string `bson:"errorMsg"`
		}
		_ = s.Client.Database("admin").RunCommand(context.Background(), bson.D{{Key: "getStreamProcessorStats", Value: name}}).Decode(&st)
		if st.State == "FAILED" {
			return fmt.Errorf("processor %s failed: %s", name, st.ErrorMsg)
		}
		return nil
	}
}

// drop stops and drops processor name and returns the errorMsg it reported, if any.
func (s *spidChild) drop(name string) string {
	c := context.Background()
	db := s.Client.Database("admin")
	var st struct {
		ErrorMsg string `bson:"errorMsg"`
	}
	_ = db.RunCommand(c, bson.D{{Key: "getStreamProcessorStats", Value: name}}).Decode(&st)
	_ = db.RunCommand(c, bson.D{{Key: "stopStreamProcessor", Value: name}}).Err()
	_ = db.RunCommand(c, bson.D{{Key: "dropStreamProcessor", Value: name}}).Err()
	return st.ErrorMsg
}
