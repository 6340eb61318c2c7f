package e2e

import (
	"encoding/json"
	"net/http"
	"regexp"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// /metrics is valid Prometheus text exposition and its per-processor counters equal what
// stats() reports for a stopped processor (issue 9, acceptance 6). The processor divides by
// event_type, which is 0 for most readings, so it produces outputs and dead letters both.
func TestProcessorMetricsMatchStats(t *testing.T) {
	t.Parallel()
	s := startSpid(t, "--checkpoint-interval", "200ms")
	c := connectGo(t, s.Admin(t, "", ""))
	divide := bson.D{{Key: "$addFields", Value: bson.D{{Key: "ratio", Value: bson.D{{Key: "$divide", Value: bson.A{"$obs.watts", "$event_type"}}}}}}}
	mustAdmin(t, c, bson.D{{Key: "createStreamProcessor", Value: "metered"},
		{Key: "pipeline", Value: bson.A{solarSourceD(2000, 11), divide, emitD("__discard")}}})
	mustAdmin(t, c, bson.D{{Key: "startStreamProcessor", Value: "metered"}})
	labels := map[string]string{"workspace": "default", "processor": "metered"}
	waitUntil(t, "outputs and dead letters", func() bool {
		fams := scrape(t, s.AdminURL+"/metrics")
		out, _ := metricValue(fams, "spi_processor_output_messages_total", labels)
		dlq, _ := metricValue(fams, "spi_processor_dlq_messages_total", labels)
		return out > 0 && dlq > 0
	})
	mustAdmin(t, c, bson.D{{Key: "stopStreamProcessor", Value: "metered"}})

	out := mongoshScript(t, s.Admin(t, "", ""), `const s = sp.metered.stats().stats;
print("STATS", JSON.stringify([s.status, s.inputMessageCount, s.inputMessageSize, s.outputMessageCount, s.outputMessageSize, s.dlqMessageCount, s.dlqMessageSize].map(String)));`)
	lines := markedLines(out, "STATS")
	if len(lines) != 1 {
		t.Fatalf("mongosh printed:\n%s", out)
	}
	var st []string
	if err := json.Unmarshal([]byte(lines[0]), &st); err != nil {
		t.Fatal(err)
	}
	if st[0] != "stopped" {
		t.Errorf("stats().stats.status of a stopped processor is %s", st[0])
	}
	fams := scrape(t, s.AdminURL+"/metrics")
	for i, name := range []string{"spi_processor_input_messages_total", "spi_processor_input_bytes_total", "spi_processor_output_messages_total",
		"spi_processor_output_bytes_total", "spi_processor_dlq_messages_total", "spi_processor_dlq_bytes_total"} {
		v, ok := metricValue(fams, name, labels)
		if !ok {
			t.Errorf("/metrics has no %s for the processor", name)
			continue
		}
		want := float64(atoi(t, st[i+1]))
		if v != want || v == 0 {
			t.Errorf("%s = %v, stats() says %v", name, v, want)
		}
	}
	if v, _ := metricValue(fams, "spi_processor_state", map[string]string{"processor": "metered", "state": "STOPPED"}); v != 1 {
		t.Errorf(`spi_processor_state{state="STOPPED"} = %v`, v)
	}
	if v, _ := metricValue(fams, "spi_processor_state", map[string]string{"processor": "metered", "state": "STARTED"}); v != 0 {
		t.Errorf(`spi_processor_state{state="STARTED"} = %v after stop`, v)
	}
	for _, f := range []string{"spi_commands_total", "spi_wire_connections", "spi_processor_latency_seconds", "spi_processor_checkpoints_total", "go_goroutines"} {
		if _, ok := fams[f]; !ok {
			t.Errorf("/metrics lacks %s", f)
		}
	}
	if v, _ := metricValue(fams, "spi_commands_total", map[string]string{"command": "stopStreamProcessor", "outcome": "ok"}); v != 1 {
		t.Errorf(`spi_commands_total{command="stopStreamProcessor",outcome="ok"} = %v`, v)
	}
	t.Logf("stats %v", st)
}

// --metrics-listen serves /metrics on an address of its own, in the same valid format.
func TestMetricsListen(t *testing.T) {
	t.Parallel()
	s := startSpid(t, "--metrics-listen", "127.0.0.1:0")
	var m []string
	waitUntil(t, "spid to log its metrics address", func() bool {
		m = regexp.MustCompile(`msg="metrics listening" addr=(\S+)`).FindStringSubmatch(s.Stderr.String())
		return m != nil
	})
	fams := scrape(t, "http://"+m[1]+"/metrics")
	if _, ok := fams["go_goroutines"]; !ok {
		t.Errorf("/metrics on --metrics-listen lacks go_goroutines")
	}
	resp, err := http.Get(s.AdminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Errorf("the Admin API listener still serves /metrics with --metrics-listen set")
	}
}
