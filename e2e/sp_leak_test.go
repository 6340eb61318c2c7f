package e2e

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// sampleCursorID finds, among the replies spid sent through the proxy, the one to
// startSampleStreamProcessor: {cursorId, ok} without messages (getMore replies carry them).
func sampleCursorID(t *testing.T, p *wireProxy) int64 {
	t.Helper()
	for _, f := range p.Frames() {
		if f.FromClient || f.OpCode != 2013 || len(f.Raw) < 21 || f.Raw[20] != 0 {
			continue
		}
		doc := bson.Raw(f.Raw[21:])
		if _, err := doc.LookupErr("messages"); err == nil {
			continue
		}
		if v, err := doc.LookupErr("cursorId"); err == nil {
			if id, ok := v.Int64OK(); ok {
				return id
			}
		}
	}
	t.Fatal("no startSampleStreamProcessor reply went through the proxy")
	return 0
}

// sample() left open in an interactive mongosh whose terminal is then killed (issue 9,
// acceptance 5): mongosh sends nothing on its way out, so spid must notice the closed
// connections. Afterwards the sample cursor is gone (a getMore on it is CursorNotFound), spid's
// goroutines and open connections are back to what they were before mongosh started, and the
// processor runs on unharmed.
func TestSampleLeavesNothingBehind(t *testing.T) {
	t.Parallel()
	s := startSpid(t)
	c := connectGo(t, s.Admin(t, "", ""))
	mustAdmin(t, c, bson.D{{Key: "createStreamProcessor", Value: "leaky"}, {Key: "pipeline", Value: bson.A{solarSourceD(1000, 9), emitD("__discard")}}})
	mustAdmin(t, c, bson.D{{Key: "startStreamProcessor", Value: "leaky"}})
	mustAdmin(t, c, bson.D{{Key: "ping", Value: 1}})
	wsConns := map[string]string{"workspace": "default"}
	base := stableGoroutines(t, s)
	baseConns, _ := metricValue(scrape(t, s.AdminURL+"/metrics"), "spi_wire_connections", wsConns)

	p := startProxy(t, s.Addr)
	term := startTerminal(t, s.Admin(t, p.Addr, ""))
	off := len(term.waitFor(0, "test> "))
	term.send("sp.leaky.sample()")
	term.waitFor(off, "device_id: 'device_")
	id := sampleCursorID(t, p)
	during := goroutines(t, s)
	duringConns, _ := metricValue(scrape(t, s.AdminURL+"/metrics"), "spi_wire_connections", wsConns)
	if duringConns <= baseConns {
		t.Errorf("spi_wire_connections did not count mongosh's connections: %v before, %v during", baseConns, duringConns)
	}

	// The terminal goes away: mongosh is killed and its pseudo-terminal closed.
	if err := term.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = term.cmd.Wait()
	_ = term.pty.Close()

	var now int
	waitUntil(t, "spid's goroutines to return to their baseline", func() bool {
		now = goroutines(t, s)
		return now <= base
	})
	var conns float64
	waitUntil(t, "spid's open connections to return to their baseline", func() bool {
		conns, _ = metricValue(scrape(t, s.AdminURL+"/metrics"), "spi_wire_connections", wsConns)
		return conns == baseConns
	})
	_, err := runAdmin(t, c, bson.D{{Key: "getMoreSampleStreamProcessor", Value: "leaky"}, {Key: "cursorId", Value: id}})
	if code, _, _ := commandError(err); code != 43 {
		t.Errorf("getMore on the abandoned sample cursor %d: want CursorNotFound, got %v", id, err)
	}
	stats := mustAdmin(t, c, bson.D{{Key: "getStreamProcessorStats", Value: "leaky"}})
	if stats["state"] != "STARTED" {
		t.Errorf("the sampled processor is %v after its sampler went away", stats["state"])
	}
	t.Logf("goroutines: %d before mongosh, %d while sampling, %d after; connections %v, %v, %v", base, during, now, baseConns, duringConns, conns)
}
