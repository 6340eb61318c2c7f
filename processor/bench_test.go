package processor_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/connectors"
	"github.com/spi-streams/spi/pipeline"
	"github.com/spi-streams/spi/processor"
	"github.com/spi-streams/spi/store"
)

// The processor runtime's report in make bench (issue 9, acceptance 8):
//
//	(a) throughput of source → $match → $tumblingWindow/$group → a discarding sink through the
//	    whole runtime (three goroutines, bounded queues, checkpoints every second) against the
//	    bare engine pushing the same documents in the same batches on one goroutine;
//	(b) source-to-sink latency percentiles of a stateless processor at 10,000 docs/s, beside
//	    the bare engine's time for the same batches;
//	(c) resident memory per processor with 100 sample processors at 10 docs/s each, beside the
//	    process at rest.
//
//	SPI_BENCH=1 go test -run TestRuntimeReport -count=1 -v ./processor/

// benchType is a connection type that exists only in this test: a source replaying
// pre-built documents as fast as the runtime takes them, so that (a) measures the runtime and
// not a generator.
const benchType = "BenchReplay"

var benchDocs []bson.Raw

func init() {
	connectors.Register(connectors.Type{Name: benchType, NewSource: func(connectors.Env, *pipeline.Source) (connectors.Source, error) {
		return &replay{}, nil
	}})
}

var replayMeta = func() bson.Raw {
	b, _ := bson.Marshal(bson.D{{Key: "source", Value: bson.D{{Key: "type", Value: "bench"}}}})
	return b
}()

// replay cycles through benchDocs with event times 1 ms apart.
type replay struct{ n int64 }

func (r *replay) Open(context.Context, []store.SplitPosition) error { return nil }
func (r *replay) ReadBatch(_ context.Context, maxDocs int, _ time.Duration) (connectors.Batch, error) {
	b := connectors.Batch{Inputs: make([]pipeline.Input, maxDocs)}
	for i := range b.Inputs {
		d := benchDocs[r.n%int64(len(benchDocs))]
		b.Inputs[i] = pipeline.Input{Doc: d, Meta: replayMeta, Time: 1_767_225_600_000 + r.n}
		b.Bytes += int64(len(d))
		r.n++
	}
	return b, nil
}
func (r *replay) Positions() []store.SplitPosition {
	return []store.SplitPosition{{Split: "0", Position: bson.Raw(bsonInt("n", r.n))}}
}
func (r *replay) CheckpointComplete(context.Context, int64, []store.SplitPosition) {}
func (r *replay) Close() error                                                     { return nil }

func bsonInt(k string, v int64) []byte {
	b, _ := bson.Marshal(bson.D{{Key: k, Value: v}})
	return b
}

func makeBenchDocs() {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 4000 {
		b, _ := bson.Marshal(bson.D{
			{Key: "device_id", Value: fmt.Sprintf("device_%d", r.IntN(500))},
			{Key: "group_id", Value: int32(i % 100)},
			{Key: "max_watts", Value: int32(450)},
			{Key: "event_type", Value: int32(r.IntN(2))},
			{Key: "obs", Value: bson.D{{Key: "watts", Value: int32(r.IntN(450))}, {Key: "temp", Value: int32(r.IntN(40))}}},
		})
		benchDocs = append(benchDocs, b)
	}
}

func benchPipeline(t testing.TB, source bson.D) bson.Raw {
	return pipe(t.(*testing.T), source,
		bson.D{{Key: "$match", Value: bson.D{{Key: "event_type", Value: 0}}}},
		bson.D{{Key: "$tumblingWindow", Value: bson.D{{Key: "interval", Value: bson.D{{Key: "size", Value: 1}, {Key: "unit", Value: "second"}}},
			{Key: "allowedLateness", Value: 0},
			{Key: "pipeline", Value: bson.A{bson.D{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$group_id"},
				{Key: "avg", Value: bson.D{{Key: "$avg", Value: "$obs.watts"}}}, {Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}}}}}}}}}},
		bson.D{{Key: "$emit", Value: bson.D{{Key: "connectionName", Value: "__discard"}}}},
	)
}

func TestRuntimeReport(t *testing.T) {
	if os.Getenv("SPI_BENCH") != "1" {
		t.Skip("set SPI_BENCH=1 to run the runtime report (make bench)")
	}
	makeBenchDocs()
	st := newStore(t)
	if err := st.Update(func(tx *store.Txn) error {
		return tx.PutConnection(store.Connection{Workspace: "w", Name: "replay", Type: benchType})
	}); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("\nprocessor runtime: GOMAXPROCS=%d, %s/%s\n\n", runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH)

	// (a) throughput.
	const n = 3_000_000
	p := benchPipeline(t, bson.D{{Key: "$source", Value: bson.D{{Key: "connectionName", Value: "replay"}}}})
	bare := func() float64 {
		plan, err := pipeline.Parse(p, pipeline.ParseOptions{RequireSink: true})
		if err != nil {
			t.Fatal(err)
		}
		eng := pipeline.NewEngine(plan, pipeline.Options{ProcessorName: "bare"})
		src := &replay{}
		start := time.Now()
		var outs int
		for done := 0; done < n; done += 1024 {
			b, _ := src.ReadBatch(context.Background(), 1024, 0)
			outs += len(eng.Push(b.Inputs).Out)
		}
		_ = outs
		return n / time.Since(start).Seconds()
	}
	rt := func(i int) float64 {
		m := processor.NewManager(processor.Config{Store: st, CheckpointInterval: time.Second})
		if err := m.Resume(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = m.Shutdown(context.Background()) }()
		name := "a" + strconv.Itoa(i)
		if _, err := m.Create(processor.CreateRequest{Workspace: "w", Name: name, Pipeline: p}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := m.Start("w", name, processor.StartOptions{}); err != nil {
			t.Fatal(err)
		}
		for {
			info, _ := m.Get("w", name)
			if info.Stats.InputCount >= n {
				rate := float64(info.Stats.InputCount) / time.Since(start).Seconds()
				// Drop it: a processor left STARTED would resume, and compete, in the next
				// measurement's manager.
				if err := m.Drop(context.Background(), "w", name); err != nil {
					t.Fatal(err)
				}
				return rate
			}
			time.Sleep(time.Millisecond)
		}
	}
	var bares, rts []float64
	for i := range 3 {
		bares = append(bares, bare())
		rts = append(rts, rt(i))
	}
	b, r := medianOf(bares), medianOf(rts)
	fmt.Println("(a) $source → $match → $tumblingWindow/$group → __discard, 3,000,000 documents, median of 3")
	fmt.Printf("    runtime %s docs/s | bare engine %s docs/s | ratio %.2f | goal ≥ 0.80: %s\n\n", thousands(r), thousands(b), r/b, verdict(r/b >= 0.8))

	// (b) latency at 10,000 docs/s.
	{
		m := processor.NewManager(processor.Config{Store: st, CheckpointInterval: time.Second})
		if err := m.Resume(); err != nil {
			t.Fatal(err)
		}
		lp := pipe(t, sampleSource(10_000, 5),
			bson.D{{Key: "$match", Value: bson.D{{Key: "event_type", Value: 0}}}},
			bson.D{{Key: "$emit", Value: bson.D{{Key: "connectionName", Value: "__discard"}}}})
		if _, err := m.Create(processor.CreateRequest{Workspace: "w", Name: "lat", Pipeline: lp}); err != nil {
			t.Fatal(err)
		}
		if err := m.Start("w", "lat", processor.StartOptions{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(6 * time.Second)
		info, _ := m.Get("w", "lat")
		if err := m.Drop(context.Background(), "w", "lat"); err != nil {
			t.Fatal(err)
		}
		_ = m.Shutdown(context.Background())
		l := info.Stats.Latency
		// Baseline: the bare engine's time for a batch of the size the source produced.
		plan, _ := pipeline.Parse(lp, pipeline.ParseOptions{RequireSink: true})
		eng := pipeline.NewEngine(plan, pipeline.Options{})
		src := &replay{}
		var costs []float64
		for range 2000 {
			bt, _ := src.ReadBatch(context.Background(), 10, 0)
			s := time.Now()
			eng.Push(bt.Inputs)
			costs = append(costs, float64(time.Since(s).Microseconds()))
		}
		fmt.Printf("(b) stateless processor ($match → __discard) at 10,000 docs/s for 6 s: %d documents\n", info.Stats.OutputCount)
		fmt.Printf("    source-to-sink latency p50 %d µs, p99 %d µs | bare engine per 10-document batch p99 %.0f µs | goal p99 ≤ 10 ms: %s (p99/goal %.2f)\n\n",
			l.P50, l.P99, percentile(costs, 0.99), verdict(l.P99 <= 10_000), float64(l.P99)/10_000)
	}

	// (c) memory per processor.
	{
		runtime.GC()
		rest := rss()
		m := processor.NewManager(processor.Config{Store: st, CheckpointInterval: 5 * time.Second, MaxProcessors: 200})
		if err := m.Resume(); err != nil {
			t.Fatal(err)
		}
		for i := range 100 {
			name := "m" + strconv.Itoa(i)
			mp := pipe(t, sampleSource(10, i+1), tumbling(1000), bson.D{{Key: "$emit", Value: bson.D{{Key: "connectionName", Value: "__discard"}}}})
			if _, err := m.Create(processor.CreateRequest{Workspace: "w", Name: name, Pipeline: mp}); err != nil {
				t.Fatal(err)
			}
			if err := m.Start("w", name, processor.StartOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(8 * time.Second)
		runtime.GC()
		running := rss()
		for i := range 100 {
			_ = m.Drop(context.Background(), "w", "m"+strconv.Itoa(i))
		}
		_ = m.Shutdown(context.Background())
		per := float64(running-rest) / 100
		fmt.Printf("(c) 100 sample processors at 10 docs/s each (tumbling window, $group): RSS %.1f MiB at rest, %.1f MiB running\n", mib(rest), mib(running))
		fmt.Printf("    %.3f MiB per processor | goal ≤ 2 MiB: %s (ratio to goal %.2f)\n\n", per/(1<<20), verdict(per <= 2<<20), per/(2<<20))
	}
}

func verdict(ok bool) string { return map[bool]string{true: "met", false: "NOT met"}[ok] }

func medianOf(v []float64) float64 { return percentile(v, 0.5) }

func percentile(v []float64, p float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// rss reads the resident set size of this process from /proc/self/statm.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func thousands(f float64) string {
	s := strconv.FormatInt(int64(f), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
