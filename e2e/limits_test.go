package e2e

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/xdg-go/scram"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// Tests of the data plane's resource limits (README "Limits"). Each replays an attack from the
// issue with bounded loops and small sizes that still show its kind; `make soak` runs the same
// attacks at SPI_SOAK times the size.

// soakScale is how many times larger `make soak` makes the attacks.
func soakScale() int {
	if n, err := strconv.Atoi(os.Getenv("SPI_SOAK")); err == nil && n > 1 {
		return n
	}
	return 1
}

// metric sums the samples of a metric whose label set contains every one of labels.
func metric(t *testing.T, s *spid, name string, labels ...string) float64 {
	t.Helper()
	resp, err := http.Get(s.AdminURL + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

// procKB reads a VmRSS/VmHWM-style field of spid's /proc status, in KiB.
func procKB(t *testing.T, s *spid, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc status", field)
	return 0
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// dialFrom dials addr from a given loopback source address (the login throttle keys on it).
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// helloMsg is a hello that negotiates every compressor.
func helloMsg(t *testing.T) []byte {
	return message(1, 2013, opMsg(0, body0(doc(t, bson.D{{Key: "hello", Value: 1},
		{Key: "compression", Value: bson.A{"zstd", "zlib", "snappy"}}, {Key: "$db", Value: "admin"}}))))
}

// loginRaw opens a raw connection that negotiates every compressor and logs in with SCRAM as
// the first-start user.
func loginRaw(t *testing.T, s *spid) *rawConn {
	t.Helper()
	creds := s.Creds(t)
	rc := dialRaw(t, s.Addr)
	if _, err := rc.c.Write(helloMsg(t)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := readReply(rc.c); err != nil {
		t.Fatal(err)
	}
	client, err := scram.SHA256.NewClient(creds.Username, creds.Password, "")
	if err != nil {
		t.Fatal(err)
	}
	conv := client.NewConversation()
	first, _ := conv.Step("")
	r := rc.run(saslStartCmd(first))
	final, err := conv.Step(payloadOf(r))
	if err != nil {
		t.Fatalf("saslStart: %v (%v)", err, r)
	}
	if r := rc.run(saslContinueCmd(r.Lookup("conversationId").Int32(), final)); r.Lookup("done").Boolean() != true {
		t.Fatalf("login: %v", r)
	}
	return rc
}

// sendRecv writes msg on a new connection (after a compressing hello if negotiate) and returns
// the reply, or nil if the server closed the connection without one.
func sendRecv(t *testing.T, addr string, negotiate bool, msg []byte) bson.Raw {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if negotiate {
		if _, err := c.Write(helloMsg(t)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := readReply(c); err != nil {
			t.Fatalf("hello: %v", err)
		}
	}
	// The server may answer and close before it has read everything: write concurrently.
	go func() { _, _ = c.Write(msg) }()
	r, _, err := readReply(c)
	if err != nil {
		return nil
	}
	return r
}

func zstdBytes(t *testing.T, p []byte, withSize bool) []byte {
	t.Helper()
	if withSize {
		enc, _ := zstd.NewWriter(nil)
		return enc.EncodeAll(p, nil)
	}
	var buf bytes.Buffer
	w, err := zstd.NewWriter(&buf, zstd.WithWindowSize(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write(p)
	_ = w.Close()
	return buf.Bytes()
}

// TestPreLoginAttacks replays each attack of the issue against one spid. After each: spid is
// up, a logged-in client works and a new client logs in. At the end: spid's peak memory is
// within the budget README "Limits" documents for its settings, and log and audit growth
// within the bounds stated here.
func TestPreLoginAttacks(t *testing.T) {
	n := soakScale()
	const (
		maxConns  = 400
		pendingMB = 32
		bigDecomp = 1
	)
	s := startSpid(t, "--max-connections", strconv.Itoa(maxConns), "--max-pending-bytes", fmt.Sprintf("%dMiB", pendingMB),
		"--max-large-decompressions", strconv.Itoa(bigDecomp))
	baseKB := procKB(t, s, "VmRSS")
	witness := connectGo(t, s.Admin(t, "", ""))
	auditPath := filepath.Join(s.DataDir, "audit", "data-plane.jsonl")
	auditBefore, logBefore := fileSize(auditPath), len(s.Stderr.String())
	started := time.Now()
	after := func(what string) {
		t.Helper()
		if s.cmd.ProcessState != nil {
			t.Fatalf("spid exited during %s", what)
		}
		if err := witness.Ping(t.Context(), nil); err != nil {
			t.Errorf("after %s: the logged-in client failed: %v", what, err)
		}
		if err := connectGo(t, s.Admin(t, "", "")).Ping(t.Context(), nil); err != nil {
			t.Errorf("after %s: a new client could not log in: %v", what, err)
		}
	}
	parallel := func(k int, f func(i int)) {
		var wg sync.WaitGroup
		for i := range k {
			wg.Add(1)
			go func() { defer wg.Done(); f(i) }()
		}
		wg.Wait()
	}
	holdConns := func(k int, first []byte) {
		conns := make([]net.Conn, 0, k)
		for range k {
			c, err := net.Dial("tcp", s.Addr)
			if err != nil {
				break
			}
			if first != nil {
				_, _ = c.Write(first)
			}
			conns = append(conns, c)
		}
		time.Sleep(500 * time.Millisecond)
		for _, c := range conns {
			_ = c.Close()
		}
	}

	t.Run("idle connections", func(t *testing.T) {
		holdConns(min(300*n, maxConns-20), nil)
		after("idle connections")
	})
	t.Run("ten of sixteen header bytes", func(t *testing.T) {
		holdConns(min(300*n, maxConns-20), header(48_000_000, 1, 2013)[:10])
		after("partial headers")
	})
	t.Run("frame trickled a byte at a time", func(t *testing.T) {
		parallel(20, func(int) {
			c, err := net.Dial("tcp", s.Addr)
			if err != nil {
				return
			}
			defer func() { _ = c.Close() }()
			// Within the pre-login size limit, so that only the receive timeout ends it.
			_, _ = c.Write(header(60_000, 1, 2013))
			for range 10 * n {
				if _, err := c.Write([]byte{0}); err != nil {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
		after("trickled frames")
	})
	t.Run("unfinished 20 MiB messages before login", func(t *testing.T) {
		codes := make([]int32, 50)
		parallel(50, func(i int) {
			body := make([]byte, 1<<20)
			r := sendRecv(t, s.Addr, false, append(header(20<<20, 1, 2013), body...))
			codes[i] = codeOf(r)
		})
		for i, c := range codes {
			if c != 10334 {
				t.Fatalf("connection %d: code %d, want 10334 (message too large before authentication)", i, c)
			}
		}
		after("unfinished large messages")
	})
	t.Run("compressed messages that lie about their size", func(t *testing.T) {
		ping := opMsg(0, body0(doc(t, bson.D{{Key: "ping", Value: 1}, {Key: "$db", Value: "admin"}})))
		payloads := map[byte][]byte{1: {0x80, 0xbe, 0xf1, 0x16, 0}, 2: zlibBytes(t, ping), 3: zstdBytes(t, ping, false)}
		parallel(16, func(i int) {
			for j := range 5 * n {
				id := byte(1 + (i+j)%3)
				r := sendRecv(t, s.Addr, true, message(7, 2012, compressed(2013, 47_999_000, id, payloads[id])))
				if c := codeOf(r); c != 10334 {
					t.Errorf("compressor %d: code %d, want 10334", id, c)
					return
				}
			}
		})
		after("compressed liars")
	})
	t.Run("decompression bombs", func(t *testing.T) {
		zeros := make([]byte, 40<<20)
		bombs := []struct {
			name     string
			id       byte
			payload  []byte
			declared int32
			want     int32
		}{
			{"zstd bomb declaring its size", 3, zstdBytes(t, zeros, true), int32(len(zeros)), 10334},
			{"zstd bomb declaring 60 KB", 3, zstdBytes(t, zeros, true), 60_000, 17},
			{"zstd bomb without a content size", 3, zstdBytes(t, zeros, false), 60_000, 10334},
			{"zlib bomb declaring 60 KB", 2, zlibBytes(t, zeros[:8<<20]), 60_000, 17},
		}
		for _, b := range bombs {
			if len(b.payload) > 60_000 {
				t.Fatalf("%s: %d compressed bytes do not fit a pre-login message", b.name, len(b.payload))
			}
			parallel(16, func(int) {
				for range n {
					r := sendRecv(t, s.Addr, true, message(7, 2012, compressed(2013, b.declared, b.id, b.payload)))
					if c := codeOf(r); c != b.want {
						t.Errorf("%s: code %d, want %d", b.name, c, b.want)
						return
					}
				}
			})
		}
		after("decompression bombs")
	})
	t.Run("document sequences of empty documents", func(t *testing.T) {
		empty := []byte{5, 0, 0, 0, 0}
		body := doc(t, bson.D{{Key: "insert", Value: "c"}, {Key: "$db", Value: "admin"}})
		seq := func(k int) []byte {
			docs := bytes.Repeat(empty, k)
			return append(append([]byte{1}, le32(int32(4+len("documents")+1+len(docs)))...), append([]byte("documents\x00"), docs...)...)
		}
		// Before login the message is over the pre-login limit however well it compresses.
		big := opMsg(0, body0(body), seq(200_000))
		if c := codeOf(sendRecv(t, s.Addr, true, message(7, 2012, compressed(2013, int32(len(big)), 3, zstdBytes(t, big, true))))); c != 10334 {
			t.Errorf("before login: code %d, want 10334", c)
		}
		// Before login, 1,001 empty documents (5 KB) are refused whatever the size.
		small := opMsg(0, body0(body), seq(1001))
		if c := codeOf(sendRecv(t, s.Addr, false, message(7, 2013, small))); c != 16 {
			t.Errorf("1,001 documents before login: code %d, want 16", c)
		}
		// After login, more than 100,000 entries in one message are refused.
		rc := loginRaw(t, s)
		over := opMsg(0, body0(body), seq(100_001))
		if _, err := rc.c.Write(message(9, 2012, compressed(2013, int32(len(over)), 3, zstdBytes(t, over, true)))); err != nil {
			t.Fatal(err)
		}
		r, _, err := readReply(rc.c)
		if err != nil || codeOf(r) != 16 {
			t.Errorf("after login: %v %v, want code 16 (InvalidLength)", r, err)
		}
		after("document sequences")
	})
	t.Run("client bytes in errors logs and audit", func(t *testing.T) {
		ns := strings.Repeat("\xff", 60_000)
		q := message(7, 2004, opQuery(ns, doc(t, bson.D{{Key: "isMaster", Value: 1}})))
		r := sendRecv(t, s.Addr, false, q)
		if msg, _ := r.Lookup("errmsg").StringValueOK(); codeOf(r) != 352 || len(msg) > 1100 {
			t.Errorf("OP_QUERY with a 60 KB namespace: code %d, errmsg of %d bytes", codeOf(r), len(msg))
		}
		// After login the namespace may be 1 MB; the error stays short.
		rc := loginRaw(t, s)
		if _, err := rc.c.Write(message(8, 2004, opQuery(strings.Repeat("\xff", 1<<20), doc(t, bson.D{{Key: "isMaster", Value: 1}})))); err != nil {
			t.Fatal(err)
		}
		r, _, err := readReply(rc.c)
		if msg, _ := r.Lookup("errmsg").StringValueOK(); err != nil || len(msg) > 1100 {
			t.Errorf("OP_QUERY with a 1 MB namespace after login: %v, errmsg of %d bytes", err, len(msg))
		}
		mech := strings.Repeat("M", 60_000)
		r = sendRecv(t, s.Addr, false, message(7, 2013, opMsg(0, body0(doc(t, bson.D{{Key: "saslStart", Value: 1},
			{Key: "mechanism", Value: mech}, {Key: "payload", Value: bin("x")}, {Key: "$db", Value: "admin"}})))))
		if msg, _ := r.Lookup("errmsg").StringValueOK(); codeOf(r) != 334 || len(msg) > 1100 {
			t.Errorf("saslStart with a 60 KB mechanism: code %d, errmsg of %d bytes", codeOf(r), len(msg))
		}
		b, err := os.ReadFile(auditPath)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if len(line) > 1024 {
				t.Errorf("an audit record of %d bytes: %.200s...", len(line), line)
			}
		}
		for _, line := range strings.Split(s.Stderr.String(), "\n") {
			if len(line) > 2048 {
				t.Errorf("a log line of %d bytes: %.200s...", len(line), line)
			}
		}
		after("oversized client values")
	})
	t.Run("failed logins from another address", func(t *testing.T) {
		// From 127.0.0.2, so that the address throttle meets the attacker, not the real user.
		parallel(20, func(int) {
			for range 4 * n {
				c := dialFrom(t, "127.0.0.2", s.Addr)
				rc := &rawConn{t: t, c: c}
				r := rc.run(saslStartCmd("n,,n=" + s.Creds(t).Username + ",r=abcdefghijklmnop"))
				if id, ok := r.Lookup("conversationId").Int32OK(); ok {
					nonce := strings.TrimPrefix(strings.Split(payloadOf(r), ",")[0], "r=")
					r = rc.run(saslContinueCmd(id, "c=biws,r="+nonce+",p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="))
				}
				if codeOf(r) != 18 {
					t.Errorf("a failed login got %v, want code 18", r)
					return
				}
				_ = c.Close()
			}
		})
		if v := metric(t, s, "spi_login_throttled_total", `key="address"`); v == 0 {
			t.Errorf("no login throttling event was counted")
		}
		after("failed logins")
	})
	t.Run("more connections than the limit", func(t *testing.T) {
		conns := make([]net.Conn, 0, maxConns+50)
		defer func() {
			for _, c := range conns {
				_ = c.Close()
			}
		}()
		// Fill the server up to its limit; from a little below it on, each new connection says
		// hello at once (so no refusal waits out RefusalTimeout and the refusals never pile up
		// past MaxRefusing). Connections under the limit answer hello; the first one over it
		// must get the refusal.
		var r bson.Raw
		var err error
		for i := range maxConns + 50 {
			c, derr := net.Dial("tcp", s.Addr)
			if derr != nil {
				break
			}
			conns = append(conns, c)
			if i < maxConns-30 {
				continue
			}
			if _, err = c.Write(helloMsg(t)); err != nil {
				continue
			}
			if r, _, err = readReply(c); err == nil && codeOf(r) == 146 {
				break
			}
		}
		if msg, _ := r.Lookup("errmsg").StringValueOK(); err != nil || codeOf(r) != 146 || !strings.Contains(msg, "--max-connections") {
			t.Errorf("connection over the limit: %v %v; want code 146 naming --max-connections", r, err)
		}
		for _, c := range conns {
			_ = c.Close()
		}
		conns = nil
		// The server sees the closes asynchronously; a few tries let it catch up.
		for try := 0; ; try++ {
			if err := connectGo(t, s.Admin(t, "", "")).Ping(t.Context(), nil); err == nil || try == 20 {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		after("too many connections")
	})

	elapsed := time.Since(started).Seconds()
	// README "Limits": peak RSS <= start + 2 x (connections x 384 KiB + --max-pending-bytes +
	// --max-large-decompressions x 56 MiB); the 2 is the Go collector's headroom (GOGC=100).
	budgetKB := baseKB + 2*(maxConns*384+pendingMB<<10+bigDecomp*56<<10)
	if peak := procKB(t, s, "VmHWM"); peak > budgetKB {
		t.Errorf("peak RSS %d KiB is over the documented budget of %d KiB", peak, budgetKB)
	} else {
		t.Logf("peak RSS %d KiB (started at %d KiB); documented budget %d KiB", peak, baseKB, budgetKB)
	}
	// Rate-limited log lines (10 at once, then one a second, each under 2 KiB) and sampled
	// audit records (a throttled address writes at most one a second, each under 1 KiB), with
	// room for the handful each test step writes on its own.
	logGrowth, auditGrowth := len(s.Stderr.String())-logBefore, fileSize(auditPath)-auditBefore
	if bound := int(2048 * (60 + 4*elapsed)); logGrowth > bound {
		t.Errorf("the log grew by %d bytes in %.0f s; bound %d", logGrowth, elapsed, bound)
	}
	if bound := int64(1024 * (60 + 4*elapsed)); auditGrowth > bound {
		t.Errorf("the audit log grew by %d bytes in %.0f s; bound %d", auditGrowth, elapsed, bound)
	}
	t.Logf("in %.0f s: log +%d bytes, audit +%d bytes", elapsed, logGrowth, auditGrowth)
}

// TestAcceptSurvivesDescriptorExhaustion runs spid with `ulimit -n 128`, opens more connections
// than it has descriptors, closes them, and checks that spid accepts and serves again.
func TestAcceptSurvivesDescriptorExhaustion(t *testing.T) {
	s := startSpidWrapped(t, t.TempDir(), []string{"/bin/sh", "-c", `ulimit -n 128 && exec "$0" "$@"`})
	conns := make([]net.Conn, 0, 300)
	for range 300 {
		c, err := net.Dial("tcp", s.Addr)
		if err != nil {
			break
		}
		conns = append(conns, c)
	}
	// Wait (boundedly) until spid has run out of descriptors and said so.
	for try := 0; !strings.Contains(s.Stderr.String(), "accept failed; retrying"); try++ {
		if try == 100 {
			t.Fatalf("spid never ran out of descriptors with %d connections open:\n%s", len(conns), s.Stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, c := range conns {
		_ = c.Close()
	}
	// Every later hello gets its reply, and a driver logs in.
	for i := range 5 {
		r := sendRecv(t, s.Addr, false, message(int32(i+1), 2013, opMsg(0, body0(doc(t, bson.D{{Key: "hello", Value: 1}, {Key: "$db", Value: "admin"}})))))
		if r == nil || r.Lookup("ok").Double() != 1 {
			t.Fatalf("hello %d after the descriptors came back: %v", i, r)
		}
	}
	if err := connectGo(t, s.Admin(t, "", "")).Ping(t.Context(), nil); err != nil {
		t.Fatalf("login after the descriptors came back: %v", err)
	}
	if v := metric(t, s, "spi_wire_accept_errors_total"); v == 0 {
		t.Errorf("spi_wire_accept_errors_total is 0")
	}
	if v := metric(t, s, "spi_wire_listener_up", `workspace="default"`); v != 1 {
		t.Errorf("spi_wire_listener_up is %v after recovery, want 1", v)
	}
}

// TestConnectionLimitsAndTimeouts: an over-limit client gets a clear refusal, and each timeout
// closes the connection it is for, is counted, and spares a logged-in idle client.
func TestConnectionLimitsAndTimeouts(t *testing.T) {
	s := startSpid(t, "--max-connections", "8", "--handshake-timeout", "1s", "--unauth-idle-timeout", "2s",
		"--receive-timeout", "1s")
	// A logged-in client whose monitor sends hello more often than the idle timeout.
	witness := connectGo(t, s.Admin(t, "", "&heartbeatFrequencyMS=500&maxPoolSize=1"))
	if err := witness.Ping(t.Context(), nil); err != nil {
		t.Fatal(err)
	}

	t.Run("over the connection limit", func(t *testing.T) {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				_ = c.Close()
			}
		}()
		hello := message(1, 2013, opMsg(0, body0(doc(t, bson.D{{Key: "hello", Value: 1}, {Key: "$db", Value: "admin"}}))))
		var refused bson.Raw
		for range 12 {
			c, err := net.Dial("tcp", s.Addr)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
			if _, err := c.Write(hello); err != nil {
				t.Fatal(err)
			}
			r, _, err := readReply(c)
			if err != nil {
				t.Fatal(err)
			}
			if codeOf(r) != 0 {
				refused = r
				break
			}
		}
		msg, _ := refused.Lookup("errmsg").StringValueOK()
		name, _ := refused.Lookup("codeName").StringValueOK()
		if codeOf(refused) != 146 || name != "ExceededMemoryLimit" || !strings.Contains(msg, "at most 8 (--max-connections)") {
			t.Fatalf("over-limit reply %v; want code 146 naming --max-connections", refused)
		}
		if !closedByServer(conns[len(conns)-1]) {
			t.Errorf("the refused connection stayed open")
		}
		if v := metric(t, s, "spi_wire_connections_refused_total", `reason="max_connections"`); v == 0 {
			t.Errorf("spi_wire_connections_refused_total is 0")
		}
	})

	cases := []struct {
		name, timeout string
		do            func(c net.Conn)
	}{
		{"silent after connecting", "handshake", func(net.Conn) {}},
		{"ten of sixteen header bytes", "handshake", func(c net.Conn) { _, _ = c.Write(header(100, 1, 2013)[:10]) }},
		{"idle after hello, never logged in", "unauthenticated_idle", func(c net.Conn) {
			_, _ = c.Write(helloMsg(t))
			_, _, _ = readReply(c)
		}},
		{"body trickled a byte at a time", "receive", func(c net.Conn) {
			_, _ = c.Write(helloMsg(t))
			_, _, _ = readReply(c)
			_, _ = c.Write(header(4000, 2, 2013))
			go func() {
				for {
					if _, err := c.Write([]byte{0}); err != nil {
						return
					}
					time.Sleep(300 * time.Millisecond)
				}
			}()
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := metric(t, s, "spi_wire_connections_timed_out_total", `timeout="`+tc.timeout+`"`)
			c, err := net.Dial("tcp", s.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = c.Close() }()
			tc.do(c)
			if !closedByServer(c) {
				t.Fatalf("the server left the connection open")
			}
			for try := 0; metric(t, s, "spi_wire_connections_timed_out_total", `timeout="`+tc.timeout+`"`) == before; try++ {
				if try == 50 {
					t.Fatalf("spi_wire_connections_timed_out_total{timeout=%q} did not grow", tc.timeout)
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}

	t.Run("a logged-in connection may stay idle", func(t *testing.T) {
		rc := loginRaw(t, s)
		time.Sleep(3 * time.Second) // longer than the idle timeout
		if r := rc.run(bson.D{{Key: "ping", Value: 1}, {Key: "$db", Value: "admin"}}); r.Lookup("ok").Double() != 1 {
			t.Fatalf("ping after idling: %v", r)
		}
		if err := witness.Ping(t.Context(), nil); err != nil {
			t.Fatalf("the driver client: %v", err)
		}
	})
}

// TestPreAuthLimits: before login a message may take 64 KiB, compressed or not; after login
// the full 48 MB.
func TestPreAuthLimits(t *testing.T) {
	s := startSpid(t)
	before := metric(t, s, "spi_wire_messages_oversized_total", `authenticated="false"`)
	pad := strings.Repeat("x", 70_000)
	big := opMsg(0, body0(doc(t, bson.D{{Key: "hello", Value: 1}, {Key: "pad", Value: pad}, {Key: "$db", Value: "admin"}})))
	for _, c := range []struct {
		name      string
		negotiate bool
		msg       []byte
	}{
		{"70 KB message", false, message(7, 2013, big)},
		{"1 KB compressed to 70 KB", true, message(7, 2012, compressed(2013, int32(len(big)), 2, zlibBytes(t, big)))},
	} {
		r := sendRecv(t, s.Addr, c.negotiate, c.msg)
		msg, _ := r.Lookup("errmsg").StringValueOK()
		if codeOf(r) != 10334 || !strings.Contains(msg, "before authentication") {
			t.Errorf("%s: %v; want code 10334 saying to authenticate first", c.name, r)
		}
	}
	if v := metric(t, s, "spi_wire_messages_oversized_total", `authenticated="false"`); v < before+2 {
		t.Errorf("spi_wire_messages_oversized_total{authenticated=\"false\"} grew by %v, want 2", v-before)
	}
	// Logged in, a 1 MB command is fine, compressed or not.
	rc := loginRaw(t, s)
	cmd := doc(t, bson.D{{Key: "ping", Value: 1}, {Key: "pad", Value: strings.Repeat("y", 1<<20)}, {Key: "$db", Value: "admin"}})
	if r := rc.run(bson.D{{Key: "ping", Value: 1}, {Key: "pad", Value: strings.Repeat("y", 1<<20)}, {Key: "$db", Value: "admin"}}); r.Lookup("ok").Double() != 1 {
		t.Errorf("1 MB ping after login: %v", r)
	}
	body := opMsg(0, body0(cmd))
	if _, err := rc.c.Write(message(99, 2012, compressed(2013, int32(len(body)), 3, zstdBytes(t, body, false)))); err != nil {
		t.Fatal(err)
	}
	if r, err := readZstdReply(rc.c); err != nil || r.Lookup("ok").Double() != 1 {
		t.Errorf("1 MB zstd ping after login: %v %v", r, err)
	}
}

// readZstdReply reads an OP_COMPRESSED (zstd) OP_MSG reply.
func readZstdReply(c net.Conn) (bson.Raw, error) {
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	hdr := make([]byte, 16)
	if _, err := io.ReadFull(c, hdr); err != nil {
		return nil, err
	}
	n := int(binary.LittleEndian.Uint32(hdr))
	if op := binary.LittleEndian.Uint32(hdr[12:]); op != 2012 || n < 25 || n > 48_000_000 {
		return nil, fmt.Errorf("reply opcode %d, length %d; want a compressed reply", op, n)
	}
	body := make([]byte, n-16)
	if _, err := io.ReadFull(c, body); err != nil {
		return nil, err
	}
	dec, _ := zstd.NewReader(nil)
	defer dec.Close()
	out, err := dec.DecodeAll(body[9:], nil)
	if err != nil {
		return nil, fmt.Errorf("decompressing the reply: %w", err)
	}
	if len(out) < 5 {
		return nil, errors.New("the decompressed reply is too short")
	}
	return bson.Raw(out[5:]), nil
}

// TestLoginThrottle: failures from one address slow that address, are audited as samples with
// counts, and the real user still logs in from elsewhere.
func TestLoginThrottle(t *testing.T) {
	s := startSpid(t, "--login-failures-free", "5")
	creds := s.Creds(t)
	fail := func(src string) int32 {
		c := dialFrom(t, src, s.Addr)
		defer func() { _ = c.Close() }()
		rc := &rawConn{t: t, c: c}
		r := rc.run(saslStartCmd("n,,n=" + creds.Username + ",r=abcdefghijklmnop"))
		if id, ok := r.Lookup("conversationId").Int32OK(); ok {
			nonce := strings.TrimPrefix(strings.Split(payloadOf(r), ",")[0], "r=")
			r = rc.run(saslContinueCmd(id, "c=biws,r="+nonce+",p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="))
		}
		return codeOf(r)
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 4 {
				if c := fail("127.0.0.3"); c != 18 {
					t.Errorf("failed login: code %d, want 18", c)
				}
			}
		}()
	}
	wg.Wait()
	if v := metric(t, s, "spi_login_throttled_total", `key="address"`); v == 0 {
		t.Errorf("spi_login_throttled_total{key=\"address\"} is 0 after 40 failures from one address")
	}
	// The real user, from another address, logs in.
	if err := connectGo(t, s.Admin(t, "", "")).Ping(t.Context(), nil); err != nil {
		t.Fatalf("the real user was locked out: %v", err)
	}
	// 40 failures left far fewer records, and the samples carry counts that add up.
	failures, total := 0, 0
	for _, e := range readAuditRaw(t, s) {
		if e.Event == "authenticate" && e.Outcome == "failure" && e.Remote != "" && strings.HasPrefix(e.Remote, "127.0.0.3:") {
			failures++
			total += max(e.Count, 1)
		}
	}
	if failures >= 20 || total == failures {
		t.Errorf("%d audit records for the failures from 127.0.0.3 standing for %d; want sampled records with counts", failures, total)
	}
}

// auditLine is one data-plane audit record, as far as these tests read it.
type auditLine struct {
	Event   string `json:"event"`
	Outcome string `json:"outcome"`
	Remote  string `json:"remote"`
	Count   int    `json:"count"`
}

func readAuditRaw(t *testing.T, s *spid) []auditLine {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.DataDir, "audit", "data-plane.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var out []auditLine
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var e auditLine
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		out = append(out, e)
	}
	return out
}

// TestAuditLogBounded: with --audit-max-bytes the data-plane audit log rotates and no file
// grows past the bound, however many unauthenticated failures arrive.
func TestAuditLogBounded(t *testing.T) {
	const maxBytes = 16 << 10
	s := startSpid(t, "--audit-max-bytes", "16384", "--audit-keep", "1", "--login-failures-free", "1000000")
	mech := strings.Repeat("M", 50_000)
	for i := range 200 {
		c := dialFrom(t, fmt.Sprintf("127.0.1.%d", 1+i%200), s.Addr)
		rc := &rawConn{t: t, c: c}
		if r := rc.run(bson.D{{Key: "saslStart", Value: 1}, {Key: "mechanism", Value: mech}, {Key: "payload", Value: bin("x")}, {Key: "$db", Value: "admin"}}); codeOf(r) != 334 {
			t.Fatalf("saslStart: %v", r)
		}
		_ = c.Close()
	}
	path := filepath.Join(s.DataDir, "audit", "data-plane.jsonl")
	if fileSize(path+".1") == 0 {
		t.Errorf("the audit log was not rotated")
	}
	for _, p := range []string{path, path + ".1"} {
		if n := fileSize(p); n > maxBytes {
			t.Errorf("%s has %d bytes, over --audit-max-bytes %d", p, n, maxBytes)
		}
	}
	if _, err := os.Stat(path + ".2"); err == nil {
		t.Errorf("more rotated files than --audit-keep 1")
	}
}

// TestMemoryLimit: --memory-limit sets the Go runtime's soft memory limit, which the runtime
// reports on /metrics.
func TestMemoryLimit(t *testing.T) {
	s := startSpid(t, "--memory-limit", "200MiB")
	if v := metric(t, s, "go_gc_gomemlimit_bytes"); v != 200<<20 {
		t.Errorf("go_gc_gomemlimit_bytes is %v, want %d", v, 200<<20)
	}
}
