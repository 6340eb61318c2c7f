package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Helpers shared by the stream processor tests (issue 9): mongosh scripts, the Go driver on
// admin, Prometheus scrapes, the __testLog lines of spid's log, and bounded polling.

// solarSource is a $source stage of the seeded sample generator: document n has event time
// 2024-01-01T00:00:00Z + n/rate, so every run with the same seed and rate sees one stream.
func solarSource(rate, seed int) string {
	return fmt.Sprintf(`{$source: {connectionName: "sample_stream_solar", config: {rate: %d, seed: %d}}}`, rate, seed)
}

// solarSourceD is solarSource for the Go driver.
func solarSourceD(rate, seed int) bson.D {
	return bson.D{{Key: "$source", Value: bson.D{{Key: "connectionName", Value: "sample_stream_solar"},
		{Key: "config", Value: bson.D{{Key: "rate", Value: rate}, {Key: "seed", Value: seed}}}}}}
}

// emitD is {$emit: {connectionName: name}}.
func emitD(name string) bson.D {
	return bson.D{{Key: "$emit", Value: bson.D{{Key: "connectionName", Value: name}}}}
}

// mongoshScript runs a script with mongosh --quiet --eval against uri; the script must end
// normally (exit 0), so every expected failure inside it is caught and printed by the script.
func mongoshScript(t *testing.T, uri, script string) string {
	t.Helper()
	r := runMongosh(t, uri, "--quiet", "--eval", script)
	if r.Exit != 0 {
		t.Fatalf("mongosh exited with %d\nstdout:\n%s\nstderr:\n%s", r.Exit, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// markedLines returns the lines of out that start with "<marker> ", without the marker.
func markedLines(out, marker string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(l, marker+" "); ok {
			lines = append(lines, rest)
		}
	}
	return lines
}

// runAdmin runs a command on admin and decodes the reply; a command error is returned as is.
func runAdmin(t *testing.T, c *mongo.Client, cmd bson.D) (bson.M, error) {
	t.Helper()
	var m bson.M
	err := c.Database("admin").RunCommand(t.Context(), cmd).Decode(&m)
	return m, err
}

// mustAdmin is runAdmin for commands that must succeed.
func mustAdmin(t *testing.T, c *mongo.Client, cmd bson.D) bson.M {
	t.Helper()
	m, err := runAdmin(t, c, cmd)
	if err != nil {
		t.Fatalf("%v: %v", cmd, err)
	}
	return m
}

// processorState reads getStreamProcessor's state, errorCode and errorMsg.
func processorState(t *testing.T, c *mongo.Client, name string) (state string, code int32, msg string) {
	t.Helper()
	m := mustAdmin(t, c, bson.D{{Key: "getStreamProcessor", Value: name}})
	state, _ = m["state"].(string)
	code, _ = m["errorCode"].(int32)
	msg, _ = m["errorMsg"].(string)
	return state, code, msg
}

// waitUntil polls cond every 50 ms for up to a minute, a bound far beyond what a healthy run
// needs; it is a limit on a hung test, not a timing assertion.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// scrape fetches url (a /metrics endpoint) and parses it with the Prometheus text parser,
// failing the test on anything the parser rejects.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	// The legacy scheme is the strictest: every name must be a classic Prometheus name.
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("/metrics is not valid Prometheus text exposition: %v\n%s", err, body)
	}
	return fams
}

// metricValue finds the sample of family name whose labels include want, as a float (a
// counter's, gauge's or untyped value).
func metricValue(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		match := 0
		for _, lp := range m.GetLabel() {
			if v, ok := want[lp.GetName()]; ok && v == lp.GetValue() {
				match++
			}
		}
		if match != len(want) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

// goroutines is spid's go_goroutines gauge.
func goroutines(t *testing.T, s *spid) int {
	t.Helper()
	v, ok := metricValue(scrape(t, s.AdminURL+"/metrics"), "go_goroutines", nil)
	if !ok {
		t.Fatal("/metrics has no go_goroutines")
	}
	return int(v)
}

// stableGoroutines waits until go_goroutines reads the same five times in a row, 100 ms
// apart, and returns that count.
func stableGoroutines(t *testing.T, s *spid) int {
	t.Helper()
	last, same := -1, 0
	for i := 0; i < 300 && same < 5; i++ {
		n := goroutines(t, s)
		if n == last {
			same++
		} else {
			last, same = n, 1
		}
		time.Sleep(100 * time.Millisecond)
	}
	return last
}

// logDoc is one output of the __testLog sink, in the order spid logged it.
type logDoc struct {
	Line int    // the line number in spid's stderr
	Doc  string // relaxed Extended JSON as logged
}

var testLogDoc = regexp.MustCompile(`^time=\S+ level=INFO msg=__testLog workspace=(\S+) processor=(\S+) doc=(".*")$`)

// testLogOutputs returns processor's __testLog outputs from a text-format log. Only whole
// lines count: spid may be writing the last one.
func testLogOutputs(t *testing.T, log, processor string) []logDoc {
	t.Helper()
	var out []logDoc
	lines := strings.Split(log, "\n")
	for i, l := range lines[:len(lines)-1] {
		m := testLogDoc.FindStringSubmatch(l)
		if m == nil || m[2] != processor {
			continue
		}
		doc, err := strconv.Unquote(m[3])
		if err != nil {
			t.Fatalf("log line %d: doc is not a quoted string: %v\n%s", i, err, l)
		}
		out = append(out, logDoc{Line: i, Doc: doc})
	}
	return out
}

// windowKey is a window result's (window start, group _id), read from its Extended JSON; the
// start is formatted with milliseconds, as 2024-01-01T00:00:00.100Z.
func windowKey(t *testing.T, doc string) (start string, id string) {
	t.Helper()
	var d struct {
		ID   json.RawMessage `json:"_id"`
		Meta struct {
			Window struct {
				Start struct {
					Date string `json:"$date"`
				} `json:"start"`
			} `json:"window"`
		} `json:"_stream_meta"`
	}
	if err := json.Unmarshal([]byte(doc), &d); err != nil {
		t.Fatalf("window output %s: %v", doc, err)
	}
	ts, err := time.Parse(time.RFC3339Nano, d.Meta.Window.Start.Date)
	if err != nil {
		t.Fatalf("window output without a _stream_meta.window.start date: %s", doc)
	}
	// A fixed-width form, so that starts sort as strings.
	return ts.UTC().Format("2006-01-02T15:04:05.000Z"), string(d.ID)
}
