package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
)

// cpAudit reads the control-plane audit log.
func cpAudit(t *testing.T, s *spid) []map[string]any {
	t.Helper()
	f, err := os.Open(filepath.Join(s.DataDir, "audit", "control-plane.jsonl"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// 20 successful spictl calls (each its own digest session, challenge included) write 20
// audit lines; one call with a wrong key writes one failure line.
func TestControlPlaneAuditSession(t *testing.T) {
	s := startSpid(t)
	c := s.Creds(t)
	before := len(cpAudit(t, s))
	calls := [][]string{}
	for i := range 5 {
		name := fmt.Sprintf("h%d", i)
		calls = append(calls,
			[]string{"conn", "create", "--name", name, "--type", "Https", "--url", "https://e.example"},
			[]string{"conn", "get", name},
			[]string{"conn", "list"},
			[]string{"conn", "delete", name})
	}
	for _, args := range calls {
		if r := runSpictl(t, c, args...); r.Exit != 0 {
			t.Fatalf("spictl %v: %+v", args, r)
		}
	}
	lines := cpAudit(t, s)[before:]
	if len(lines) != 20 {
		t.Fatalf("20 spictl calls wrote %d audit lines:\n%v", len(lines), lines)
	}
	for _, l := range lines {
		if l["outcome"] != "success" || l["caller"] != c.PublicKey {
			t.Errorf("line %v", l)
		}
	}
	bad := c
	bad.PrivateKey = "00000000-0000-4000-8000-000000000000"
	if r := runSpictl(t, bad, "ws", "list"); r.Exit != 1 {
		t.Fatalf("wrong key: %+v", r)
	}
	lines = cpAudit(t, s)[before+20:]
	if len(lines) != 1 || lines[0]["outcome"] != "failure" || lines[0]["reason"] != "wrong API key" {
		t.Fatalf("a wrong-key call wrote %v", lines)
	}
}

// 100 unauthenticated requests with megabyte-long paths, queries and headers cost the audit
// log less than 100 KB, and spid stays up; an idle keep-alive connection is closed.
func TestUnauthenticatedRequestsAreCheap(t *testing.T) {
	s := startSpid(t, "--admin-idle-timeout", "1s")
	host := strings.TrimPrefix(s.AdminURL, "http://")
	auditPath := filepath.Join(s.DataDir, "audit", "control-plane.jsonl")
	size := func() int64 {
		st, err := os.Stat(auditPath)
		if err != nil {
			return 0
		}
		return st.Size()
	}
	before := size()
	mb := strings.Repeat("a", 1<<20)
	small := strings.Repeat("b", 60<<10) // under the header limit: these reach the handler
	for i := range 100 {
		var req string
		switch i % 4 {
		case 0:
			req = "POST /api/atlas/v2/groups/" + mb + " HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
		case 1:
			req = "GET /api/atlas/v2/groups/x/streams?q=" + mb + " HTTP/1.1\r\nHost: x\r\n\r\n"
		case 2:
			req = "DELETE /api/atlas/v2/groups/x/streams/" + small + " HTTP/1.1\r\nHost: x\r\n" +
				`Authorization: Digest username="` + small[:1000] + `", realm="spi", nonce="n", uri="/", response="0", qop=auth, nc=00000001, cnonce="c"` + "\r\n\r\n"
		case 3:
			req = "POST /api/atlas/v2/groups/x/streams HTTP/1.1\r\nHost: x\r\nX-Junk: " + mb + "\r\nContent-Length: 0\r\n\r\n"
		}
		conn, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		_, _ = io.WriteString(conn, req)
		status, _ := bufio.NewReader(conn).ReadString('\n')
		_ = conn.Close()
		if !strings.HasPrefix(status, "HTTP/1.1 4") {
			t.Fatalf("request %d: %q", i, status)
		}
	}
	grown := size() - before
	t.Logf("100 unauthenticated requests grew the audit log by %d bytes", grown)
	if grown >= 100<<10 {
		t.Errorf("the audit log grew by %d bytes", grown)
	}
	if grown == 0 {
		t.Errorf("the requests with digest credentials were not audited at all")
	}
	// spid is still up and serving.
	if status, _ := newAPI(t, s.Creds(t)).call("GET", "/streams", nil); status != 200 {
		t.Fatalf("after the flood: %d", status)
	}

	// An idle keep-alive connection is closed by the server after --admin-idle-timeout.
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	_, _ = io.WriteString(conn, "GET /api/atlas/v2/groups/x/streams HTTP/1.1\r\nHost: x\r\n\r\n")
	rd := bufio.NewReader(conn)
	_ = conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the reply: %v", err)
		}
		if line == "\r\n" {
			break
		}
	}
	_, err = io.Copy(io.Discard, rd) // returns when the server closes the idle connection
	if err != nil {
		t.Fatalf("the idle connection was not closed by the server: %v", err)
	}
}

// A login refused because the workspace is outside the user's scopes gets the generic
// failure; the audit record gives the true reason.
func TestScopeRefusalAuditedWithTrueReason(t *testing.T) {
	s := startSpid(t)
	a := newAPI(t, s.Creds(t))
	a.ok("POST", "/streams", map[string]any{"name": "w1"})
	createUser(t, a, map[string]any{"username": "scoped", "password": "scoped-password",
		"scopes": []any{map[string]any{"name": "w1", "type": "STREAM"}}})
	err := connectGo(t, userURI(s.Addr, "scoped", "scoped-password", "")).Ping(t.Context(), nil)
	if err == nil || !strings.Contains(err.Error(), "Authentication failed.") {
		t.Fatalf("login outside the scopes: %v", err)
	}
	var reasons []string
	for _, e := range readAudit(t, s) {
		if e.Event == "authenticate" && e.User == "scoped" {
			reasons = append(reasons, e.Reason)
		}
	}
	if len(reasons) == 0 || reasons[len(reasons)-1] != "workspace outside the user's scopes" {
		t.Fatalf("audited reasons %q", reasons)
	}
	// A wrong password keeps its own reason.
	_ = connectGo(t, userURI(s.Addr, "alice-unknown", "x-password", "")).Ping(t.Context(), nil)
	last := readAudit(t, s)
	if r := last[len(last)-1].Reason; r != "wrong password or unknown user" {
		t.Errorf("an unknown user is audited as %q", r)
	}
}

// Deleting a workspace in a user's scopes is refused (409, naming the user); once the scope is
// gone and the workspace deleted, a namesake does not let the user in.
func TestDeletedWorkspaceNamesake(t *testing.T) {
	s := startSpid(t)
	a := newAPI(t, s.Creds(t))
	a.ok("POST", "/streams", map[string]any{"name": "w1"})
	createUser(t, a, map[string]any{"username": "bob", "password": "bobs-password",
		"scopes": []any{map[string]any{"name": "w1", "type": "STREAM"}, map[string]any{"name": "default", "type": "STREAM"}}})
	status, body := a.call("DELETE", "/streams/w1", nil)
	if status != 409 || !bytes.Contains(body, []byte("admin/bob")) {
		t.Fatalf("delete of a scoped workspace: %d %s", status, body)
	}
	a.ok("PATCH", "/databaseUsers/admin/bob", map[string]any{"scopes": []any{map[string]any{"name": "default", "type": "STREAM"}}})
	if status, body := a.call("DELETE", "/streams/w1", nil); status != 202 {
		t.Fatalf("delete: %d %s", status, body)
	}
	ws := a.ok("POST", "/streams", map[string]any{"name": "w1"})
	addr := ws["hostnames"].([]any)[0].(string)
	err := connectGo(t, userURI(addr, "bob", "bobs-password", "")).Ping(t.Context(), nil)
	if err == nil || !strings.Contains(err.Error(), "Authentication failed.") {
		t.Fatalf("bob logged in to the namesake: %v", err)
	}
	if err := connectGo(t, userURI(s.Addr, "bob", "bobs-password", "")).Ping(t.Context(), nil); err != nil {
		t.Fatalf("bob on default: %v", err)
	}
}

// spictl sets a connection's security with flags only: a SASL_SSL SCRAM-256 Kafka connection
// with the brokers' CA, and a Cluster connection with an execute-as role; neither password is
// printed. An unknown flag prints the command's own usage.
func TestSpictlConnectionSecurityFlags(t *testing.T) {
	s := startSpid(t)
	c := s.Creds(t)
	pki := newPKI(t)
	kpw, cpw := secret(t, "kafka"), secret(t, "cluster")
	run := func(env []string, args ...string) result {
		t.Helper()
		cmd := exec.Command(spictlBin, args...)
		cmd.Env = append(os.Environ(), "SPI_ADMIN_URL="+c.AdminURL, "SPI_GROUP_ID="+c.GroupID,
			"SPI_PUBLIC_KEY="+c.PublicKey, "SPI_PRIVATE_KEY="+c.PrivateKey, "HOME="+t.TempDir())
		cmd.Env = append(cmd.Env, env...)
		return runCmd(t, cmd)
	}
	r := run([]string{"KAFKA_PW=" + kpw}, "conn", "create", "--name", "events", "--type", "Kafka",
		"--bootstrap-servers", "kafka1:9093", "--mechanism", "SCRAM-256", "--username", "spi",
		"--password-env", "KAFKA_PW", "--protocol", "SASL_SSL", "--ca-file", pki.CAFile)
	if r.Exit != 0 {
		t.Fatalf("kafka: %+v", r)
	}
	r2 := run([]string{"CLUSTER_PW=" + cpw}, "conn", "create", "--name", "db", "--cluster-name", "c0",
		"--connection-string", "mongodb://db:27017/", "--execute-as", "readAnyDatabase:BUILT_IN",
		"--username", "runner", "--password-env", "CLUSTER_PW")
	if r2.Exit != 0 {
		t.Fatalf("cluster: %+v", r2)
	}
	for _, out := range []string{r.Stdout + r.Stderr, r2.Stdout + r2.Stderr} {
		if strings.Contains(out, kpw) || strings.Contains(out, cpw) {
			t.Fatalf("spictl printed a password:\n%s", out)
		}
	}
	a := newAPI(t, c)
	k := a.ok("GET", "/streams/default/connections/events", nil)
	sec := k["security"].(map[string]any)
	auth := k["authentication"].(map[string]any)
	if sec["protocol"] != "SASL_SSL" || !strings.Contains(sec["brokerPublicCertificate"].(string), "BEGIN CERTIFICATE") ||
		auth["mechanism"] != "SCRAM-256" || auth["username"] != "spi" {
		t.Errorf("kafka connection %v", k)
	}
	cl := a.ok("GET", "/streams/default/connections/db", nil)
	if role := cl["dbRoleToExecute"].(map[string]any); role["role"] != "readAnyDatabase" || role["type"] != "BUILT_IN" ||
		cl["authentication"].(map[string]any)["username"] != "runner" {
		t.Errorf("cluster connection %v", cl)
	}
	// Mutual TLS: --ssl-cert-file and --ssl-key-file (here one PEM file holding both); the key
	// is write-only.
	r = run(nil, "conn", "create", "--name", "mtls", "--bootstrap-servers", "kafka1:9094", "--protocol", "SSL",
		"--ca-file", pki.CAFile, "--ssl-cert-file", pki.ClientFile, "--ssl-key-file", pki.ClientFile)
	if r.Exit != 0 {
		t.Fatalf("mtls: %+v", r)
	}
	m := a.ok("GET", "/streams/default/connections/mtls", nil)
	if mauth, _ := m["authentication"].(map[string]any); mauth == nil || !strings.Contains(fmt.Sprint(mauth["sslCertificate"]), "BEGIN CERTIFICATE") ||
		strings.Contains(fmt.Sprint(m), "PRIVATE KEY") {
		t.Errorf("mtls connection %v", m)
	}
	r = run(nil, "conn", "create", "--no-such-flag")
	if r.Exit != 2 || !strings.Contains(r.Stderr, "usage: spictl connections") || !strings.Contains(r.Stderr, "--mechanism") {
		t.Errorf("an unknown flag: %+v", r)
	}
}

// The Admin API serves TLS; spictl verifies its certificate with --ca-file and refuses one it
// cannot verify; plain HTTP on a non-loopback address needs --allow-insecure.
func TestAdminAPITLS(t *testing.T) {
	cmd := exec.Command(spidBin, "--listen", "127.0.0.1:0", "--admin-listen", "0.0.0.0:0", "--data-dir", t.TempDir())
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not a loopback address") || !strings.Contains(string(out), "--admin-tls-cert") {
		t.Fatalf("a plain-HTTP Admin API on 0.0.0.0: %v\n%s", err, out)
	}
	pki := newPKI(t)
	s := startSpid(t, "--admin-tls-cert", pki.ServerCert, "--admin-tls-key", pki.ServerKey)
	if !strings.HasPrefix(s.AdminURL, "https://127.0.0.1:") {
		t.Fatalf("admin URL %q", s.AdminURL)
	}
	c := s.Creds(t)
	r := runSpictl(t, c, "--ca-file", pki.CAFile, "ws", "list")
	if r.Exit != 0 || !strings.Contains(r.Stdout, "default") {
		t.Fatalf("spictl --ca-file: %+v", r)
	}
	r = runSpictl(t, c, "ws", "list")
	if r.Exit != 1 || !strings.Contains(r.Stderr, "certificate") {
		t.Fatalf("spictl without the CA: %+v", r)
	}
	other := newPKI(t) // another CA: its certificate does not sign spid's
	r = runSpictl(t, c, "--ca-file", other.CAFile, "ws", "list")
	if r.Exit != 1 || !strings.Contains(r.Stderr, "certificate") {
		t.Fatalf("spictl with a foreign CA: %+v", r)
	}
	// Plain HTTP to the TLS port gets nothing useful.
	plain := c
	plain.AdminURL = strings.Replace(s.AdminURL, "https://", "http://", 1)
	if r := runSpictl(t, plain, "ws", "list"); r.Exit == 0 {
		t.Fatalf("plain HTTP to the TLS Admin API worked: %+v", r)
	}
	// --allow-insecure lets a non-loopback plain-HTTP Admin API start.
	startSpid(t, "--admin-listen", "0.0.0.0:0", "--allow-insecure")
}

// A truncated store, a missing master key and a wrong one each stop spid with a clear message,
// and no new key is written.
func TestStoreFailsLoudly(t *testing.T) {
	dir := t.TempDir()
	s := startSpidIn(t, dir)
	a := newAPI(t, s.Creds(t))
	for i := range 60 {
		a.ok("POST", "/streams/default/connections", map[string]any{"name": fmt.Sprintf("h%02d", i), "type": "Https",
			"url": "https://example.com/" + strings.Repeat("p", 400)})
	}
	s.Stop(t)
	keyPath := filepath.Join(dir, "master.key")
	key, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "spi.db")
	whole, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	runSpid := func() (string, int) {
		cmd := exec.Command(spidBin, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--data-dir", dir)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				t.Fatalf("spid died of %v:\n%s", ws.Signal(), out)
			}
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}

	if err := os.WriteFile(db, whole[:len(whole)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := runSpid(); code != 1 || !strings.Contains(out, "truncated") {
		t.Errorf("truncated store: exit %d\n%s", code, out)
	}
	if err := os.WriteFile(db, whole, 0o600); err != nil {
		t.Fatal(err)
	}

	if err := os.Remove(keyPath); err != nil {
		t.Fatal(err)
	}
	if out, code := runSpid(); code != 1 || !strings.Contains(out, "master key is missing") {
		t.Errorf("missing key: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(keyPath); !os.IsNotExist(err) {
		t.Errorf("spid wrote a new master key (%v)", err)
	}

	wrong := bytes.Repeat([]byte("A"), 43)
	if err := os.WriteFile(keyPath, append(wrong, "=\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := runSpid(); code != 1 || !strings.Contains(strings.ToLower(out), "master key") {
		t.Errorf("wrong key: exit %d\n%s", code, out)
	}
	// With the right key back, everything is there.
	if err := os.WriteFile(keyPath, key, 0o600); err != nil {
		t.Fatal(err)
	}
	s = startSpidIn(t, dir)
	if out := newAPI(t, s.Creds(t)).ok("GET", "/streams/default/connections?itemsPerPage=1", nil); out["totalCount"] != float64(61) {
		t.Errorf("after restoring the key: %v", out["totalCount"])
	}
}

// A workspace port outside --workspace-ports is refused; after a restart the banner lists
// every workspace's address.
func TestWorkspacePortsAndBanner(t *testing.T) {
	dir := t.TempDir()
	// A free port for the range: bind, note it, release it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	free := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	rng := fmt.Sprintf("%d-%d", free, free)
	s := startSpidIn(t, dir, "--workspace-ports", rng)
	a := newAPI(t, s.Creds(t))
	for _, hp := range []string{"127.0.0.1:80", "127.0.0.1:1023", fmt.Sprintf("127.0.0.1:%d", free+1)} {
		status, body := a.call("POST", "/streams", map[string]any{"name": "low", "hostnames": []any{hp}})
		if status != 400 || !bytes.Contains(body, []byte(rng)) {
			t.Errorf("%s: %d %s", hp, status, body)
		}
	}
	ws := a.ok("POST", "/streams", map[string]any{"name": "inrange"})
	addr := ws["hostnames"].([]any)[0].(string)
	if addr != fmt.Sprintf("127.0.0.1:%d", free) {
		t.Errorf("workspace got %s, outside %s", addr, rng)
	}
	s.Stop(t)
	s = startSpidIn(t, dir, "--workspace-ports", rng)
	banner := s.Stdout.String()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(banner, "make shell") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		banner = s.Stdout.String()
	}
	if !strings.Contains(banner, "inrange") || !strings.Contains(banner, "mongodb://"+addr+"/") {
		t.Errorf("the banner after a restart does not list workspace inrange at %s:\n%s", addr, banner)
	}
}

// `make shell` opens the pinned mongosh on the spid `make run` started, as the first-start
// admin, in a terminal.
func TestMakeShell(t *testing.T) {
	data := t.TempDir()
	s := startSpidIn(t, data) // what `make run` starts, on this test's ports
	cmd := exec.Command("make", "--no-print-directory", "shell")
	cmd.Dir = ".."
	cmd.Env = append(mongoshEnv(t), "TERM=xterm", "SPI_DATA_DIR="+data)
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 50, Cols: 200})
	if err != nil {
		t.Fatal(err)
	}
	term := &terminal{t: t, pty: f, cmd: cmd}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := f.Read(buf)
			term.mu.Lock()
			term.out.Write(buf[:n])
			term.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = f.Close()
	})
	startup := term.waitFor(0, "test> ")
	if !strings.Contains(startup, "Connecting to spid at "+s.Addr) {
		t.Errorf("make shell did not say where it connects:\n%s", startup)
	}
	off := len(startup)
	term.send("db.runCommand({connectionStatus: 1}).authInfo.authenticatedUsers[0].user")
	term.waitFor(off, "admin")
	term.send("exit")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("make shell exited with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("make shell did not exit; screen:\n%s", term.screen())
	}
}
