package pipeline

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/expr"
)

// Throughput benchmarks of the engine on one core, each beside a baseline that does the same
// work by hand: bson.Unmarshal into bson.D, the stage logic on the decoded document, and
// bson.Marshal of the result. The baselines produce byte-for-byte the engine's output
// (TestBenchBaselines checks it), so the two columns of the report compare like with like.
//
// One benchmark operation is one input document: ns/op is ns per document and allocs/op is
// allocations per document. Documents are pushed in batches of benchBatch.
//
//	make bench                                   # the report, single core
//	go test -run '^$' -bench . -benchmem ./pipeline/
//	go test -run '^$' -bench 'MatchProject$' -cpuprofile cpu.out ./pipeline/ && go tool pprof -top cpu.out

const (
	// benchBatch is the number of documents per Engine.Push.
	benchBatch = 256
	// benchPool is the number of distinct pre-built documents cycled through; a multiple of
	// benchKeys so that consecutive documents cycle through the group keys in order.
	benchPool = 4000
	// benchKeys is the number of distinct group_id values.
	benchKeys = 1000
	// benchT0 is the event time of the first document (a whole second, so windows align).
	benchT0 = int64(1_767_225_600_000) // 2026-01-01T00:00:00Z
)

var benchNow = time.UnixMilli(benchT0).UTC()

// sensorDocs returns n deterministic sensor readings of about 300 bytes each, with
// group_id = i % benchKeys, and Kafka-like source metadata for each.
func sensorDocs(n int) (docs, metas []bson.Raw) {
	r := rand.New(rand.NewPCG(1, 2))
	statuses := []string{"ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "warn", "warn", "warn", "offline"}
	sites := []string{"plant-01", "plant-02", "plant-03", "plant-07", "depot-11", "depot-12"}
	tagSets := [][]string{{"rooftop", "solar", "phase-1"}, {"ground", "solar", "phase-2"}, {"rooftop", "battery", "phase-3"}}
	for i := range n {
		doc := bson.D{
			{Key: "device_id", Value: fmt.Sprintf("sensor-%06d", r.IntN(50_000))},
			{Key: "group_id", Value: int32(i % benchKeys)},
			{Key: "ts", Value: bson.DateTime(benchT0 + int64(i))},
			{Key: "watts", Value: int32(r.IntN(5000))},
			{Key: "temp", Value: 10 + r.Float64()*25},
			{Key: "humidity", Value: 20 + r.Float64()*60},
			{Key: "voltage", Value: 228 + r.Float64()*4},
			{Key: "status", Value: statuses[r.IntN(len(statuses))]},
			{Key: "firmware", Value: "v2.3.17"},
			{Key: "location", Value: bson.D{
				{Key: "site", Value: sites[r.IntN(len(sites))]},
				{Key: "building", Value: fmt.Sprintf("B%d", r.IntN(9))},
				{Key: "lat", Value: 48 + r.Float64()},
				{Key: "lon", Value: 11 + r.Float64()},
			}},
			{Key: "tags", Value: bson.A{tagSets[i%3][0], tagSets[i%3][1], tagSets[i%3][2]}},
			{Key: "reading_id", Value: int64(9_000_000_000) + int64(i)},
		}
		b, err := bson.Marshal(doc)
		if err != nil {
			panic(err)
		}
		docs = append(docs, b)
		m, err := bson.Marshal(bson.D{{Key: "source", Value: bson.D{
			{Key: "type", Value: "kafka"}, {Key: "topic", Value: "sensors"},
			{Key: "partition", Value: int32(0)}, {Key: "offset", Value: int64(i)},
		}}})
		if err != nil {
			panic(err)
		}
		metas = append(metas, m)
	}
	return docs, metas
}

// parsePipeline parses a pipeline written as relaxed Extended JSON.
func parsePipeline(tb testing.TB, ejson string) *Plan {
	tb.Helper()
	var wrap bson.Raw
	if err := bson.UnmarshalExtJSON([]byte(`{"p": `+ejson+`}`), false, &wrap); err != nil {
		tb.Fatalf("bad pipeline JSON: %v", err)
	}
	plan, err := Parse(wrap.Lookup("p").Value, ParseOptions{})
	if err != nil {
		tb.Fatalf("parse: %v", err)
	}
	return plan
}

// benchScenario is one row of the report.
type benchScenario struct {
	name     string
	pipeline string
	// window is the tumbling window length in ms (0: none); event time advances 1 ms per document.
	window int64
	// baseline processes a batch by hand; flush closes what is open at the end.
	baseline func(st *baseState, batch []Input) [][]byte
	goal     string
	// goalDocs is the docs/s goal (0: none); beatBaseline says spi must also be faster.
	goalDocs     float64
	beatBaseline bool
}

const (
	pipeMatchProject = `[
		{"$source": {"connectionName": "bench"}},
		{"$match": {"status": "ok", "watts": {"$gte": 100}}},
		{"$project": {"device_id": 1, "group_id": 1, "ts": 1, "watts": 1, "temp": 1, "location.site": 1}}
	]`
	pipeMatchRegex = `[
		{"$source": {"connectionName": "bench"}},
		{"$match": {"device_id": {"$regex": "^sensor-0[0-2]"}, "status": {"$regex": "^(ok|warn)$"}}},
		{"$project": {"device_id": 1, "group_id": 1, "ts": 1, "watts": 1, "temp": 1, "location.site": 1}}
	]`
	pipeTumblingGroup = `[
		{"$source": {"connectionName": "bench"}},
		{"$tumblingWindow": {
			"interval": {"size": %d, "unit": "ms"},
			"allowedLateness": 0,
			"pipeline": [{"$group": {
				"_id": "$group_id",
				"total_watts": {"$sum": "$watts"},
				"avg_temp": {"$avg": "$temp"},
				"max_watts": {"$max": "$watts"},
				"min_temp": {"$min": "$temp"}
			}}]
		}}
	]`
	pipeStateless10 = `[
		{"$source": {"connectionName": "bench"}},
		{"$match": {"status": {"$ne": "offline"}}},
		{"$addFields": {"kw": {"$divide": ["$watts", 1000]}}},
		{"$set": {"temp_f": {"$add": [{"$multiply": ["$temp", 1.8]}, 32]}}},
		{"$unset": ["firmware", "tags"]},
		{"$match": {"watts": {"$gte": 50}}},
		{"$set": {"site": "$location.site"}},
		{"$project": {"device_id": 1, "group_id": 1, "ts": 1, "status": 1, "location": 1, "kw": 1, "temp_f": 1, "site": 1}},
		{"$set": {"hot": {"$gt": ["$temp_f", 80]}}},
		{"$unset": "location"},
		{"$match": {"group_id": {"$lt": 900}}}
	]`
)

var benchScenarios = []benchScenario{
	{name: "(a) $match + $project", pipeline: pipeMatchProject, baseline: baseMatchProject,
		goal: "≥ 1,000,000 and > baseline", goalDocs: 1_000_000, beatBaseline: true},
	{name: "(b) 1 s window, $group 1,000 keys", pipeline: fmt.Sprintf(pipeTumblingGroup, 1000), window: 1000,
		baseline: baseTumblingGroup, goal: "≥ 500,000", goalDocs: 500_000},
	{name: "(b') 10 s window, $group 1,000 keys", pipeline: fmt.Sprintf(pipeTumblingGroup, 10_000), window: 10_000,
		baseline: baseTumblingGroup, goal: "≥ 500,000", goalDocs: 500_000},
	{name: "(c) 10 stateless stages", pipeline: pipeStateless10, baseline: baseStateless10, goal: "—"},
	{name: "(d) $match with regexes + $project", pipeline: pipeMatchRegex, baseline: baseMatchRegex, goal: "— (reported)"},
}

// benchInputs is the pre-built input pool shared by every benchmark.
type benchInputs struct {
	docs, metas []bson.Raw
	in          []Input
}

var benchPoolInputs = sync.OnceValue(func() *benchInputs {
	docs, metas := sensorDocs(benchPool)
	p := &benchInputs{docs: docs, metas: metas, in: make([]Input, benchPool)}
	for i := range p.in {
		p.in[i] = Input{Doc: docs[i], Meta: metas[i], Partition: 0}
	}
	return p
})

// feeder hands out batches of inputs with event time advancing 1 ms per document.
type feeder struct {
	pool  []Input
	next  int
	t     int64
	batch []Input
}

func newFeeder() *feeder {
	return &feeder{pool: benchPoolInputs().in, t: benchT0, batch: make([]Input, benchBatch)}
}

// take returns the next n (≤ benchBatch) inputs.
func (f *feeder) take(n int) []Input {
	b := f.batch[:n]
	for i := range b {
		b[i] = f.pool[f.next]
		b[i].Time = f.t
		f.t++
		if f.next++; f.next == len(f.pool) {
			f.next = 0
		}
	}
	return b
}

// sink counts outputs so that nothing is optimized away.
type sink struct{ docs, bytes, dlq int }

func (s *sink) add(r Result) {
	s.docs += len(r.Out)
	s.dlq += len(r.DLQ)
	for _, o := range r.Out {
		s.bytes += len(o)
	}
}

func runEngine(b *testing.B, sc benchScenario) {
	plan := parsePipeline(b, sc.pipeline)
	eng := NewEngine(plan, Options{ProcessorName: "bench", Now: func() time.Time { return benchNow }})
	f := newFeeder()
	var s sink
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(benchBatch, b.N-done)
		s.add(eng.Push(f.take(n)))
		done += n
	}
	b.StopTimer()
	reportRate(b)
	if s.dlq > 0 {
		b.Fatalf("%d dead letters", s.dlq)
	}
}

func runBaseline(b *testing.B, sc benchScenario) {
	st := &baseState{window: sc.window}
	f := newFeeder()
	var outs int
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(benchBatch, b.N-done)
		outs += len(sc.baseline(st, f.take(n)))
		done += n
	}
	b.StopTimer()
	reportRate(b)
	_ = outs
}

func reportRate(b *testing.B) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "docs/s")
	}
}

func scenario(name string) benchScenario {
	for _, sc := range benchScenarios {
		if strings.HasPrefix(sc.name, name) {
			return sc
		}
	}
	panic("no scenario " + name)
}

// BenchmarkMatchProject is scenario (a) in the engine.
func BenchmarkMatchProject(b *testing.B) { runEngine(b, scenario("(a)")) }

// BenchmarkMatchProjectBaseline is scenario (a) by hand on bson.D.
func BenchmarkMatchProjectBaseline(b *testing.B) { runBaseline(b, scenario("(a)")) }

// BenchmarkTumblingGroup is scenario (b) in the engine: 1 s windows, each key once a window.
func BenchmarkTumblingGroup(b *testing.B) { runEngine(b, scenario("(b)")) }

// BenchmarkTumblingGroupBaseline is scenario (b) by hand on bson.D.
func BenchmarkTumblingGroupBaseline(b *testing.B) { runBaseline(b, scenario("(b)")) }

// BenchmarkTumblingGroup10s is scenario (b') in the engine: 10 s windows, each key ten times
// a window.
func BenchmarkTumblingGroup10s(b *testing.B) { runEngine(b, scenario("(b')")) }

// BenchmarkTumblingGroup10sBaseline is scenario (b') by hand on bson.D.
func BenchmarkTumblingGroup10sBaseline(b *testing.B) { runBaseline(b, scenario("(b')")) }

// BenchmarkStateless10 is scenario (c) in the engine.
func BenchmarkStateless10(b *testing.B) { runEngine(b, scenario("(c)")) }

// BenchmarkStateless10Baseline is scenario (c) by hand on bson.D.
func BenchmarkStateless10Baseline(b *testing.B) { runBaseline(b, scenario("(c)")) }

// BenchmarkMatchRegex is scenario (d): $match with two regexes, then (a)'s $project.
func BenchmarkMatchRegex(b *testing.B) { runEngine(b, scenario("(d)")) }

// BenchmarkMatchRegexBaseline is (d)'s baseline.
func BenchmarkMatchRegexBaseline(b *testing.B) { runBaseline(b, scenario("(d)")) }

// benchRun is one measurement: documents per second and allocations per document.
type benchRun struct{ docsPerSec, allocs, bytes float64 }

func measure(fn func(*testing.B)) benchRun {
	r := testing.Benchmark(fn)
	if r.N == 0 || r.T <= 0 {
		return benchRun{}
	}
	return benchRun{
		docsPerSec: float64(r.N) / r.T.Seconds(),
		allocs:     float64(r.MemAllocs) / float64(r.N),
		bytes:      float64(r.MemBytes) / float64(r.N),
	}
}

// median returns the run with the median docs/s.
func median(runs []benchRun) benchRun {
	sort.Slice(runs, func(i, j int) bool { return runs[i].docsPerSec < runs[j].docsPerSec })
	return runs[len(runs)/2]
}

// TestThroughputReport prints the throughput table of `make bench`. It is a report, not a
// test: it runs only with SPI_BENCH=1 (and is meant for GOMAXPROCS=1).
func TestThroughputReport(t *testing.T) {
	if os.Getenv("SPI_BENCH") != "1" {
		t.Skip("set SPI_BENCH=1 to run the throughput report (make bench)")
	}
	const rounds = 3
	fmt.Printf("\npipeline throughput: GOMAXPROCS=%d, %s/%s, %d-byte documents (mean), batches of %d, median of %d rounds\n",
		runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, meanDocSize(), benchBatch, rounds)
	fmt.Println("baseline: bson.Unmarshal into bson.D, the same work by hand, bson.Marshal (same output bytes)")
	fmt.Println()
	header := fmt.Sprintf("%-38s | %12s | %10s | %15s | %10s | %6s | %s", "scenario", "spi docs/s", "allocs/doc",
		"baseline docs/s", "allocs/doc", "ratio", "goal")
	fmt.Println(header)
	fmt.Println(strings.Repeat("-", len([]rune(header))+12))
	for _, sc := range benchScenarios {
		var spi, base []benchRun
		for range rounds {
			spi = append(spi, measure(func(b *testing.B) { runEngine(b, sc) }))
			base = append(base, measure(func(b *testing.B) { runBaseline(b, sc) }))
		}
		s, bl := median(spi), median(base)
		ratio := 0.0
		if bl.docsPerSec > 0 {
			ratio = s.docsPerSec / bl.docsPerSec
		}
		verdict := ""
		if sc.goalDocs > 0 {
			met := s.docsPerSec >= sc.goalDocs && (!sc.beatBaseline || ratio > 1)
			verdict = map[bool]string{true: ": met", false: ": NOT met"}[met]
		}
		fmt.Printf("%-38s | %12s | %10.1f | %15s | %10.1f | %5.2fx | %s%s\n", sc.name, thousands(s.docsPerSec), s.allocs,
			thousands(bl.docsPerSec), bl.allocs, ratio, sc.goal, verdict)
	}
	fmt.Println()
}

func meanDocSize() int {
	p := benchPoolInputs()
	total := 0
	for _, d := range p.docs {
		total += len(d)
	}
	return total / len(p.docs)
}

func thousands(f float64) string {
	s := fmt.Sprintf("%d", int64(math.Round(f)))
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// TestBenchBaselines checks that each baseline produces exactly the engine's output, so that
// the report compares the same work.
func TestBenchBaselines(t *testing.T) {
	for _, sc := range benchScenarios {
		t.Run(sc.name, func(t *testing.T) {
			eng := NewEngine(parsePipeline(t, sc.pipeline), Options{ProcessorName: "bench", Now: func() time.Time { return benchNow }})
			st := &baseState{window: sc.window}
			fe, fb := newFeeder(), newFeeder()
			var got, want [][]byte
			// Enough batches for the windows to close at least once.
			batches := max(8, int(sc.window*3/2)/benchBatch+1)
			for range batches {
				r := eng.Push(fe.take(benchBatch))
				if len(r.DLQ) > 0 {
					t.Fatalf("dead letter: %s", r.DLQ[0])
				}
				for _, o := range r.Out {
					want = append(want, o)
				}
				got = append(got, sc.baseline(st, fb.take(benchBatch))...)
			}
			if len(want) == 0 {
				t.Fatal("the engine produced nothing")
			}
			if len(got) != len(want) {
				t.Fatalf("baseline produced %d documents, the engine %d", len(got), len(want))
			}
			for i := range got {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("output %d differs:\nbaseline %s\n  engine %s", i, bson.Raw(got[i]), bson.Raw(want[i]))
				}
			}
		})
	}
}

// --- Baselines: the same work by hand on bson.D. ---

// baseState is a baseline's state across batches (the open windows of (b)).
type baseState struct {
	window    int64
	watermark int64
	panes     map[int64]*basePane
	out       [][]byte
}

type basePane struct {
	start  int64
	meta   bson.D
	order  []int32
	groups map[int32]*baseGroup
}

type baseGroup struct {
	sum            int64
	avg            expr.Sum // mongod's compensated summation, the engine's arithmetic
	avgN           int64
	maxW           int32
	minT           float64
	hasMax, hasMin bool
}

var errBaseline = errors.New("baseline: unexpected document")

func field(d bson.D, k string) (any, bool) {
	for _, e := range d {
		if e.Key == k {
			return e.Value, true
		}
	}
	return nil, false
}

func numberOf(v any) (float64, bool) {
	switch n := v.(type) {
	case int32:
		return float64(n), true
	case int64:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}

// set replaces field k or appends it, as $addFields does.
func set(d bson.D, k string, v any) bson.D {
	for i := range d {
		if d[i].Key == k {
			d[i].Value = v
			return d
		}
	}
	return append(d, bson.E{Key: k, Value: v})
}

// remove drops the fields in keys, as $unset does.
func remove(d bson.D, keys ...string) bson.D {
	out := d[:0]
	for _, e := range d {
		drop := false
		for _, k := range keys {
			if e.Key == k {
				drop = true
				break
			}
		}
		if !drop {
			out = append(out, e)
		}
	}
	return out
}

func mustMarshal(d bson.D) []byte {
	b, err := bson.Marshal(d)
	if err != nil {
		panic(err)
	}
	return b
}

func decode(raw bson.Raw) bson.D {
	var d bson.D
	if err := bson.Unmarshal(raw, &d); err != nil {
		panic(err)
	}
	return d
}

// baseMatchProject: {$match: {status: "ok", watts: {$gte: 100}}}, then an inclusion
// projection of device_id, group_id, ts, watts, temp and location.site, then the stream
// metadata.
func baseMatchProject(st *baseState, batch []Input) [][]byte {
	st.out = st.out[:0]
	for _, in := range batch {
		d := decode(in.Doc)
		if s, _ := field(d, "status"); s != "ok" {
			continue
		}
		if w, _ := field(d, "watts"); func() bool { n, ok := numberOf(w); return !ok || n < 100 }() {
			continue
		}
		st.out = append(st.out, baseProject(d, in.Meta))
	}
	return st.out
}

// baseProject is the $project of (a) and (d) by hand.
func baseProject(d bson.D, meta bson.Raw) []byte {
	out := make(bson.D, 0, 7)
	for _, e := range d {
		switch e.Key {
		case "device_id", "group_id", "ts", "watts", "temp":
			out = append(out, e)
		case "location":
			loc, ok := e.Value.(bson.D)
			if !ok {
				continue
			}
			sub := bson.D{}
			for _, le := range loc {
				if le.Key == "site" {
					sub = append(sub, le)
				}
			}
			out = append(out, bson.E{Key: "location", Value: sub})
		}
	}
	out = append(out, bson.E{Key: "_stream_meta", Value: meta})
	return mustMarshal(out)
}

// The baseline's regexes are Go's own (RE2), which agree with PCRE on these patterns.
var (
	baseDeviceRe = regexp.MustCompile(`^sensor-0[0-2]`)
	baseStatusRe = regexp.MustCompile(`^(ok|warn)$`)
)

// baseMatchRegex: device_id and status matched by regexes, then (a)'s projection.
func baseMatchRegex(st *baseState, batch []Input) [][]byte {
	st.out = st.out[:0]
	for _, in := range batch {
		d := decode(in.Doc)
		dev, _ := field(d, "device_id")
		status, _ := field(d, "status")
		ds, ok1 := dev.(string)
		ss, ok2 := status.(string)
		if !ok1 || !ok2 || !baseDeviceRe.MatchString(ds) || !baseStatusRe.MatchString(ss) {
			continue
		}
		st.out = append(st.out, baseProject(d, in.Meta))
	}
	return st.out
}

// baseTumblingGroup: tumbling windows of st.window ms with no allowed lateness; per window,
// group by group_id with $sum of watts, $avg of temp, $max of watts and $min of temp.
func baseTumblingGroup(st *baseState, batch []Input) [][]byte {
	st.out = st.out[:0]
	if st.panes == nil {
		st.panes = map[int64]*basePane{}
		st.watermark = math.MinInt64
	}
	for _, in := range batch {
		d := decode(in.Doc)
		start := in.Time - in.Time%st.window
		if start+st.window <= st.watermark {
			panic(errBaseline) // late: never happens here
		}
		p := st.panes[start]
		if p == nil {
			var meta bson.D
			if in.Meta != nil {
				var m bson.D
				if err := bson.Unmarshal(in.Meta, &m); err != nil {
					panic(err)
				}
				if src, ok := field(m, "source"); ok {
					if typ, ok := field(src.(bson.D), "type"); ok {
						meta = bson.D{{Key: "source", Value: bson.D{{Key: "type", Value: typ}}}}
					}
				}
			}
			p = &basePane{start: start, meta: meta, groups: map[int32]*baseGroup{}}
			st.panes[start] = p
		}
		idv, _ := field(d, "group_id")
		id, ok := idv.(int32)
		if !ok {
			panic(errBaseline)
		}
		g := p.groups[id]
		if g == nil {
			g = &baseGroup{}
			p.groups[id] = g
			p.order = append(p.order, id)
		}
		if w, ok := field(d, "watts"); ok {
			if n, ok := w.(int32); ok {
				g.sum += int64(n)
				if !g.hasMax || n > g.maxW {
					g.maxW, g.hasMax = n, true
				}
			}
		}
		if tv, ok := field(d, "temp"); ok {
			if f, ok := tv.(float64); ok {
				var b [8]byte
				binary.LittleEndian.PutUint64(b[:], math.Float64bits(f))
				g.avg.Add(bson.RawValue{Type: bson.TypeDouble, Value: b[:]})
				g.avgN++
				if !g.hasMin || f < g.minT {
					g.minT, g.hasMin = f, true
				}
			}
		}
		st.watermark = max(st.watermark, in.Time)
	}
	// Close the windows the watermark has passed, oldest first.
	var starts []int64
	for s := range st.panes {
		if s+st.window <= st.watermark {
			starts = append(starts, s)
		}
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	for _, s := range starts {
		p := st.panes[s]
		delete(st.panes, s)
		meta := append(p.meta[:len(p.meta):len(p.meta)], bson.E{Key: "window", Value: bson.D{
			{Key: "start", Value: bson.DateTime(p.start)}, {Key: "end", Value: bson.DateTime(p.start + st.window)},
		}})
		for _, id := range p.order {
			g := p.groups[id]
			var total any = g.sum
			if g.sum >= math.MinInt32 && g.sum <= math.MaxInt32 {
				total = int32(g.sum)
			}
			var avg, maxW, minT any
			if g.avgN > 0 {
				avg = g.avg.Avg().Double()
			}
			if g.hasMax {
				maxW = g.maxW
			}
			if g.hasMin {
				minT = g.minT
			}
			st.out = append(st.out, mustMarshal(bson.D{
				{Key: "_id", Value: id}, {Key: "total_watts", Value: total}, {Key: "avg_temp", Value: avg},
				{Key: "max_watts", Value: maxW}, {Key: "min_temp", Value: minT}, {Key: "_stream_meta", Value: meta},
			}))
		}
	}
	return st.out
}

// baseStateless10 is pipeStateless10 by hand.
func baseStateless10(st *baseState, batch []Input) [][]byte {
	st.out = st.out[:0]
	for _, in := range batch {
		d := decode(in.Doc)
		// 1. $match status != "offline"
		if s, _ := field(d, "status"); s == "offline" {
			continue
		}
		// 2. kw = watts / 1000
		w, _ := field(d, "watts")
		wn, ok := numberOf(w)
		if !ok {
			panic(errBaseline)
		}
		d = set(d, "kw", wn/1000)
		// 3. temp_f = temp * 1.8 + 32
		tv, _ := field(d, "temp")
		tn, ok := numberOf(tv)
		if !ok {
			panic(errBaseline)
		}
		d = set(d, "temp_f", tn*1.8+32)
		// 4. $unset firmware, tags
		d = remove(d, "firmware", "tags")
		// 5. $match watts >= 50
		if wn < 50 {
			continue
		}
		// 6. site = location.site
		if loc, ok := field(d, "location"); ok {
			if site, ok := field(loc.(bson.D), "site"); ok {
				d = set(d, "site", site)
			}
		}
		// 7. $project device_id, group_id, ts, status, location, kw, temp_f, site
		out := make(bson.D, 0, 9)
		for _, e := range d {
			switch e.Key {
			case "device_id", "group_id", "ts", "status", "location", "kw", "temp_f", "site":
				out = append(out, e)
			}
		}
		// 8. hot = temp_f > 80
		out = set(out, "hot", tn*1.8+32 > 80)
		// 9. $unset location
		out = remove(out, "location")
		// 10. $match group_id < 900
		g, _ := field(out, "group_id")
		if gn, ok := numberOf(g); !ok || gn >= 900 {
			continue
		}
		out = append(out, bson.E{Key: "_stream_meta", Value: in.Meta})
		st.out = append(st.out, mustMarshal(out))
	}
	return st.out
}
