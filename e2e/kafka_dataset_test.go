package e2e

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// stocksCSV is vega-datasets' data/stocks.csv (monthly closing prices of five stocks, 2000 to
// 2010: symbol, date as "Jan 1 2000", price), installed by npm from e2e/package.json.
const stocksCSV = "node_modules/vega-datasets/data/stocks.csv"

// stockRow is one row of stocks.csv.
type stockRow struct {
	Symbol string
	Date   string // as in the file
	Price  string // as in the file, a JSON number
	Time   time.Time
	Value  float64
}

func readStocks(t *testing.T) []stockRow {
	t.Helper()
	f, err := os.Open(stocksCSV)
	if err != nil {
		t.Fatalf("%v: run `make test` (or `npm ci` in e2e/), which installs vega-datasets", err)
	}
	defer func() { _ = f.Close() }()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", stocksCSV, err)
	}
	if len(recs) < 2 || !slices.Equal(recs[0], []string{"symbol", "date", "price"}) {
		t.Fatalf("%s: unexpected header %v", stocksCSV, recs[0])
	}
	var rows []stockRow
	for i, r := range recs[1:] {
		ts, err := time.Parse("Jan 2 2006", r[1])
		if err != nil {
			t.Fatalf("%s line %d: date %q: %v", stocksCSV, i+2, r[1], err)
		}
		v, err := strconv.ParseFloat(r[2], 64)
		if err != nil {
			t.Fatalf("%s line %d: price %q: %v", stocksCSV, i+2, r[2], err)
		}
		rows = append(rows, stockRow{Symbol: r[0], Date: r[1], Price: r[2], Time: ts, Value: v})
	}
	return rows
}

// jsonDate reads an Extended JSON date: {"$date": "<ISO-8601>"} (relaxed), {"$date":
// {"$numberLong": "<ms>"}} (canonical) or {"$date": <ms>}.
func jsonDate(raw json.RawMessage) (time.Time, bool) {
	var d struct {
		Date json.RawMessage `json:"$date"`
	}
	if err := json.Unmarshal(raw, &d); err != nil || d.Date == nil {
		return time.Time{}, false
	}
	var iso string
	if err := json.Unmarshal(d.Date, &iso); err == nil {
		ts, err := time.Parse(time.RFC3339Nano, iso)
		return ts, err == nil
	}
	ms, ok := jsonInt(d.Date)
	return time.UnixMilli(ms).UTC(), ok
}

// Real data (issue 10, acceptance 7). vega-datasets' stocks.csv, a public dataset shipped by
// npm, goes through Kafka as JSON records in date order, one record per row with the date as
// the file writes it, plus a last record in 2030 that closes every window of the data. A
// processor, created with mongosh, parses the event time from the date ($dateFromString with format "%b %d %Y"),
// groups each 90-day tumbling window by symbol, and emits count, average, maximum and minimum
// price to Kafka, where kcat reads them. The test computes the same figures from the CSV itself in plain Go
// (encoding/csv, time.Parse, epoch-aligned 90-day buckets) and compares every window result.
func TestKafkaRealDataset(t *testing.T) {
	t.Parallel()
	rows := readStocks(t)
	// Date order, the file's order within a date: the event time never goes back, so no row
	// is late.
	slices.SortStableFunc(rows, func(a, b stockRow) int { return a.Time.Compare(b.Time) })

	const in, out = "stocks", "stocks-quarters"
	k := startKafka(t, 1, kfake.SeedTopics(1, in, out))
	var msgs []kafkaMsg
	for _, r := range rows {
		msgs = append(msgs, kafkaMsg{Key: []byte(r.Symbol), Value: fmt.Appendf(nil, `{"symbol": %q, "date": %q, "price": %s}`, r.Symbol, r.Date, r.Price)})
	}
	msgs = append(msgs, kafkaMsg{Key: []byte("END"), Value: []byte(`{"symbol": "END", "date": "Jan 1 2030", "price": 0}`)})
	produce(t, k, in, msgs, nil, nil)

	// mongosh creates and starts the processor, as a user would.
	s := startSpid(t)
	newAPI(t, s.Creds(t)).ok("POST", "/streams/default/connections", kafkaConnection("kafka", k))
	mongoshScript(t, s.Admin(t, "", ""), `sp.createStreamProcessor("quarters", [
  `+kafkaSource("kafka", in, `, timeField: {$dateFromString: {dateString: "$date", format: "%b %d %Y"}}`)+`,
  {$tumblingWindow: {interval: {size: 90, unit: "day"}, allowedLateness: 0, pipeline: [
    {$group: {_id: "$symbol", n: {$sum: 1}, avg: {$avg: "$price"}, max: {$max: "$price"}, min: {$min: "$price"}}}]}},
  {$emit: {connectionName: "kafka", topic: "`+out+`"}}]);
sp.quarters.start();`)

	// The reference: epoch-aligned 90-day buckets of the rows, by symbol.
	const bucket = 90 * 24 * time.Hour
	type agg struct {
		n             int
		sum, max, min float64
	}
	type key struct {
		start  int64 // ms
		symbol string
	}
	want := map[key]*agg{}
	for _, r := range rows {
		ms := r.Time.UnixMilli()
		k := key{ms - ms%bucket.Milliseconds(), r.Symbol}
		a := want[k]
		if a == nil {
			a = &agg{max: math.Inf(-1), min: math.Inf(1)}
			want[k] = a
		}
		a.n++
		a.sum += r.Value
		a.max = max(a.max, r.Value)
		a.min = min(a.min, r.Value)
	}

	waitUntil(t, fmt.Sprintf("%d window results", len(want)), func() bool { return topicEnds(t, k, out)[0] >= int64(len(want)) })
	// kcat, an independent client, reads the results; the topic holds no more than those.
	got := kcatConsume(t, k, out, len(want), time.Minute)
	if n := topicEnds(t, k, out)[0]; n != int64(len(want)) {
		t.Errorf("the output topic holds %d window results, the CSV gives %d", n, len(want))
	}
	seen := map[key]bool{}
	rowsSeen := 0
	for _, m := range got {
		var d struct {
			ID   string          `json:"_id"`
			N    json.RawMessage `json:"n"`
			Avg  json.Number     `json:"avg"`
			Max  json.Number     `json:"max"`
			Min  json.Number     `json:"min"`
			Meta struct {
				Window struct {
					Start json.RawMessage `json:"start"`
					End   json.RawMessage `json:"end"`
				} `json:"window"`
			} `json:"_stream_meta"`
		}
		if err := json.Unmarshal(m.Value, &d); err != nil {
			t.Errorf("window result is not the expected JSON (%v): %s", err, m.Value)
			continue
		}
		start, ok1 := jsonDate(d.Meta.Window.Start)
		end, ok2 := jsonDate(d.Meta.Window.End)
		n, ok3 := jsonInt(d.N)
		if !ok1 || !ok2 || !ok3 {
			t.Errorf("window result without a window start and end or a count: %s", m.Value)
			continue
		}
		k := key{start.UnixMilli(), d.ID}
		if seen[k] {
			t.Errorf("window %s %s was output twice", start.Format(time.DateOnly), d.ID)
		}
		seen[k] = true
		w := want[k]
		if w == nil {
			t.Errorf("window %s %s is not one the CSV has: %s", start.Format(time.DateOnly), d.ID, m.Value)
			continue
		}
		rowsSeen += int(n)
		if end.Sub(start) != bucket {
			t.Errorf("window %s %s ends at %s, want 90 days later", start.Format(time.DateOnly), d.ID, end)
		}
		num := func(v json.Number) float64 { f, _ := v.Float64(); return f }
		avg := w.sum / float64(w.n)
		if int(n) != w.n || num(d.Max) != w.max || num(d.Min) != w.min || math.Abs(num(d.Avg)-avg) > 1e-9*math.Abs(avg) {
			t.Errorf("window %s %s: got n %d, avg %s, max %s, min %s; the CSV gives n %d, avg %v, max %v, min %v",
				start.Format(time.DateOnly), d.ID, n, d.Avg, d.Max, d.Min, w.n, avg, w.max, w.min)
		}
	}
	for k, w := range want {
		if !seen[k] {
			t.Errorf("window %s %s (%d rows) is missing from the output", time.UnixMilli(k.start).UTC().Format(time.DateOnly), k.symbol, w.n)
		}
	}
	if rowsSeen != len(rows) {
		t.Errorf("the window results count %d rows, the CSV has %d", rowsSeen, len(rows))
	}
	t.Logf("%d rows of %s in %d window results", len(rows), stocksCSV, len(want))
}
