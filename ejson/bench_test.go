package ejson

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// benchPayloads are realistic Kafka messages of about 1 KB: an order event with nested
// objects, arrays of objects, strings, integers, doubles, booleans, an ObjectId and dates, as
// relaxed and as canonical Extended JSON (the driver writes both), and their BSON.
type benchPayloads struct {
	relaxed, canonical [][]byte
	docs               []bson.Raw
}

var benchSet = func() *benchPayloads {
	r := rand.New(rand.NewPCG(1, 2))
	p := &benchPayloads{}
	words := strings.Fields("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu")
	word := func() string { return words[r.IntN(len(words))] }
	base := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	for i := range 64 {
		var oid bson.ObjectID
		for j := range oid {
			oid[j] = byte(r.Uint32())
		}
		var items bson.A
		for j := range 3 + r.IntN(3) {
			items = append(items, bson.D{
				{Key: "sku", Value: fmt.Sprintf("SKU-%05d", r.IntN(100000))},
				{Key: "name", Value: word() + " " + word() + " " + word()},
				{Key: "qty", Value: int32(1 + r.IntN(9))},
				{Key: "price", Value: math.Round(r.Float64()*10000) / 100},
				{Key: "line", Value: int32(j)},
			})
		}
		d := bson.D{
			{Key: "_id", Value: oid},
			{Key: "type", Value: "order.created"},
			{Key: "seq", Value: int64(1_000_000_000_000 + i)},
			{Key: "ts", Value: bson.NewDateTimeFromTime(base.Add(time.Duration(r.IntN(86_400_000)) * time.Millisecond))},
			{Key: "customer", Value: bson.D{
				{Key: "id", Value: int32(r.IntN(1_000_000))},
				{Key: "name", Value: word() + " " + word()},
				{Key: "email", Value: word() + "." + word() + "@example.com"},
				{Key: "vip", Value: r.IntN(2) == 0},
				{Key: "address", Value: bson.D{{Key: "street", Value: fmt.Sprintf("%d %s Street", r.IntN(999), word())}, {Key: "city", Value: word()}, {Key: "zip", Value: fmt.Sprintf("%05d", r.IntN(99999))}, {Key: "geo", Value: bson.A{r.Float64()*360 - 180, r.Float64()*180 - 90}}}},
			}},
			{Key: "items", Value: items},
			{Key: "total", Value: math.Round(r.Float64()*100000) / 100},
			{Key: "currency", Value: "EUR"},
			{Key: "tags", Value: bson.A{word(), word(), word()}},
			{Key: "note", Value: "Leave at the door \"please\" — merci ✓"},
			{Key: "shippedAt", Value: nil},
			{Key: "client", Value: bson.D{
				{Key: "ip", Value: fmt.Sprintf("10.%d.%d.%d", r.IntN(256), r.IntN(256), r.IntN(256))},
				{Key: "userAgent", Value: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"},
				{Key: "session", Value: fmt.Sprintf("%016x", r.Uint64())},
			}},
		}
		raw, err := bson.Marshal(d)
		if err != nil {
			panic(err)
		}
		rel, err := bson.MarshalExtJSON(bson.Raw(raw), false, false)
		if err != nil {
			panic(err)
		}
		can, err := bson.MarshalExtJSON(bson.Raw(raw), true, false)
		if err != nil {
			panic(err)
		}
		p.docs = append(p.docs, raw)
		p.relaxed = append(p.relaxed, rel)
		p.canonical = append(p.canonical, can)
	}
	return p
}()

func meanLen(b [][]byte) int {
	n := 0
	for _, x := range b {
		n += len(x)
	}
	return n / len(b)
}

func benchAppendBSON(b *testing.B, in [][]byte) {
	b.ReportAllocs()
	var buf []byte
	for i := 0; b.Loop(); i++ {
		var err error
		if buf, err = AppendBSON(buf[:0], in[i%len(in)]); err != nil {
			b.Fatal(err)
		}
	}
}

func benchUnmarshalExtJSON(b *testing.B, in [][]byte) {
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		var raw bson.Raw
		if err := bson.UnmarshalExtJSON(in[i%len(in)], false, &raw); err != nil {
			b.Fatal(err)
		}
	}
}

func benchAppendJSON(b *testing.B, f Format) {
	b.ReportAllocs()
	var buf []byte
	docs := benchSet.docs
	for i := 0; b.Loop(); i++ {
		var err error
		if buf, err = AppendJSON(buf[:0], docs[i%len(docs)], Options{Format: f}); err != nil {
			b.Fatal(err)
		}
	}
}

func benchMarshalExtJSON(b *testing.B, canonical bool) {
	b.ReportAllocs()
	docs := benchSet.docs
	for i := 0; b.Loop(); i++ {
		if _, err := bson.MarshalExtJSON(docs[i%len(docs)], canonical, false); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendBSONRelaxed(b *testing.B)         { benchAppendBSON(b, benchSet.relaxed) }
func BenchmarkAppendBSONCanonical(b *testing.B)       { benchAppendBSON(b, benchSet.canonical) }
func BenchmarkUnmarshalExtJSONRelaxed(b *testing.B)   { benchUnmarshalExtJSON(b, benchSet.relaxed) }
func BenchmarkUnmarshalExtJSONCanonical(b *testing.B) { benchUnmarshalExtJSON(b, benchSet.canonical) }
func BenchmarkAppendJSONRelaxed(b *testing.B)         { benchAppendJSON(b, RelaxedJSON) }
func BenchmarkAppendJSONCanonical(b *testing.B)       { benchAppendJSON(b, CanonicalJSON) }
func BenchmarkAppendJSONBasic(b *testing.B)           { benchAppendJSON(b, BasicJSON) }
func BenchmarkMarshalExtJSONRelaxed(b *testing.B)     { benchMarshalExtJSON(b, false) }
func BenchmarkMarshalExtJSONCanonical(b *testing.B)   { benchMarshalExtJSON(b, true) }

// TestBenchPayloadsAgree checks that the report compares the same work: the transcoder and the
// driver give the same BSON for every payload, and the same text back.
func TestBenchPayloadsAgree(t *testing.T) {
	for i := range benchSet.docs {
		for _, in := range [][]byte{benchSet.relaxed[i], benchSet.canonical[i]} {
			got, err := AppendBSON(nil, in)
			if err != nil {
				t.Fatal(err)
			}
			raw, ok := driverParse(in)
			if !ok || string(got) != string(raw) || string(got) != string(benchSet.docs[i]) {
				t.Fatalf("payload %d: transcoder and driver differ", i)
			}
		}
		checkAgainstDriver(t, benchSet.docs[i])
	}
}

type rate struct{ docsPerSec, allocs, bytesPerSec float64 }

func measureRate(fn func(*testing.B), size int) rate {
	r := testing.Benchmark(fn)
	if r.N == 0 || r.T <= 0 {
		return rate{}
	}
	s := r.T.Seconds()
	return rate{float64(r.N) / s, float64(r.MemAllocs) / float64(r.N), float64(r.N) * float64(size) / s}
}

// TestTranscoderReport prints the transcoder table of `make bench` (acceptance item 8c): the
// JSON -> BSON rate of AppendBSON beside the driver's bson.UnmarshalExtJSON, and the BSON ->
// JSON rate of AppendJSON beside bson.MarshalExtJSON, on the same ~1 KB payloads in one run.
// It is a report, not a test: it runs only with SPI_BENCH=1.
func TestTranscoderReport(t *testing.T) {
	if os.Getenv("SPI_BENCH") != "1" {
		t.Skip("set SPI_BENCH=1 to run the transcoder report (make bench)")
	}
	const rounds = 3
	fmt.Printf("\nJSON/Extended JSON transcoder: GOMAXPROCS=%d, %s/%s, %d payloads of %d B relaxed / %d B canonical / %d B BSON (mean), median of %d rounds\n",
		runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, len(benchSet.docs), meanLen(benchSet.relaxed), meanLen(benchSet.canonical), meanLen(docsAsBytes()), rounds)
	fmt.Println("baseline: the driver's bson.UnmarshalExtJSON(data, false, &raw) / bson.MarshalExtJSON(raw, canonical, false), same bytes out")
	fmt.Println()
	header := fmt.Sprintf("%-26s | %11s | %8s | %10s | %15s | %10s | %7s | %s", "scenario", "docs/s", "MB/s", "allocs/doc", "baseline docs/s", "allocs/doc", "ratio", "goal")
	fmt.Println(header)
	fmt.Println(strings.Repeat("-", len([]rune(header))+12))
	rows := []struct {
		name       string
		size       int
		ours, base func(*testing.B)
		goal       float64
	}{
		{"JSON->BSON relaxed", meanLen(benchSet.relaxed), func(b *testing.B) { benchAppendBSON(b, benchSet.relaxed) }, func(b *testing.B) { benchUnmarshalExtJSON(b, benchSet.relaxed) }, 5},
		{"JSON->BSON canonical", meanLen(benchSet.canonical), func(b *testing.B) { benchAppendBSON(b, benchSet.canonical) }, func(b *testing.B) { benchUnmarshalExtJSON(b, benchSet.canonical) }, 5},
		{"BSON->JSON relaxedJson", meanLen(docsAsBytes()), func(b *testing.B) { benchAppendJSON(b, RelaxedJSON) }, func(b *testing.B) { benchMarshalExtJSON(b, false) }, 0},
		{"BSON->JSON canonicalJson", meanLen(docsAsBytes()), func(b *testing.B) { benchAppendJSON(b, CanonicalJSON) }, func(b *testing.B) { benchMarshalExtJSON(b, true) }, 0},
		{"BSON->JSON basicJson", meanLen(docsAsBytes()), func(b *testing.B) { benchAppendJSON(b, BasicJSON) }, func(b *testing.B) { benchMarshalExtJSON(b, false) }, 0},
	}
	for _, row := range rows {
		var ours, base []rate
		for range rounds {
			ours = append(ours, measureRate(row.ours, row.size))
			base = append(base, measureRate(row.base, row.size))
		}
		o, bl := medianRate(ours), medianRate(base)
		ratio := 0.0
		if bl.docsPerSec > 0 {
			ratio = o.docsPerSec / bl.docsPerSec
		}
		goal := "-"
		if row.goal > 0 {
			goal = fmt.Sprintf(">= %.0fx: %s", row.goal, map[bool]string{true: "met", false: "NOT met"}[ratio >= row.goal])
		}
		fmt.Printf("%-26s | %11s | %8.1f | %10.2f | %15s | %10.1f | %6.2fx | %s\n", row.name, grouped(o.docsPerSec), o.bytesPerSec/1e6, o.allocs, grouped(bl.docsPerSec), bl.allocs, ratio, goal)
	}
	fmt.Println("(basicJson has no driver counterpart; its baseline column is the driver's relaxed writer)")
	fmt.Println()
}

func docsAsBytes() [][]byte {
	out := make([][]byte, len(benchSet.docs))
	for i, d := range benchSet.docs {
		out[i] = d
	}
	return out
}

func medianRate(rs []rate) rate {
	slices.SortFunc(rs, func(a, b rate) int {
		switch {
		case a.docsPerSec < b.docsPerSec:
			return -1
		case a.docsPerSec > b.docsPerSec:
			return 1
		}
		return 0
	})
	return rs[len(rs)/2]
}

func grouped(f float64) string {
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
