package e2e

import (
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// A workspace created through the API is reachable on its own address by mongosh; deleting it
// closes its listener and its connections; a restart serves surviving workspaces again.
func TestWorkspaceListeners(t *testing.T) {
	dir := t.TempDir()
	s := startSpidIn(t, dir)
	a := newAPI(t, s.Creds(t))
	ws := a.ok("POST", "/streams", map[string]any{"name": "analytics"})
	hosts, _ := ws["hostnames"].([]any)
	if len(hosts) != 1 {
		t.Fatalf("hostnames %v", ws["hostnames"])
	}
	addr := hosts[0].(string)
	if addr == s.Addr {
		t.Fatalf("the new workspace shares the default address %s", addr)
	}
	r := runMongosh(t, s.Admin(t, addr, ""), "--quiet", "--eval", "db.runCommand({ping: 1}).ok")
	if r.Exit != 0 || strings.TrimSpace(r.Stdout) != "1" {
		t.Fatalf("ping on the new workspace: %+v", r)
	}

	// Restart: the workspace comes back on the same address, and nothing secret is printed.
	creds := s.Creds(t)
	if !strings.Contains(s.Stdout.String(), creds.Password) {
		t.Fatalf("the first start did not print the admin password")
	}
	s.Stop(t)
	s = startSpidIn(t, dir)
	for _, secret := range []string{creds.Password, creds.PrivateKey} {
		if strings.Contains(s.Stdout.String()+s.Stderr.String(), secret) {
			t.Errorf("a later start printed a first-start secret")
		}
	}
	r = runMongosh(t, s.Admin(t, addr, ""), "--quiet", "--eval", "db.runCommand({ping: 1}).ok")
	if r.Exit != 0 || strings.TrimSpace(r.Stdout) != "1" {
		t.Fatalf("ping after restart: %+v", r)
	}

	open, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = open.Close() }()
	a = newAPI(t, s.Creds(t))
	if status, body := a.call("DELETE", "/streams/analytics", nil); status != 202 {
		t.Fatalf("delete: %d %s", status, body)
	}
	_ = open.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := open.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("a connection to the deleted workspace stayed open (%v)", err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		_ = c.Close()
		t.Errorf("the deleted workspace's address still accepts connections")
	}
	// The default workspace is untouched.
	r = runMongosh(t, s.Admin(t, "", ""), "--quiet", "--eval", "db.runCommand({ping: 1}).ok")
	if r.Exit != 0 || strings.TrimSpace(r.Stdout) != "1" {
		t.Fatalf("ping on the default workspace: %+v", r)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// SIGKILL while metadata is written in a loop: after a restart every acknowledged write is
// there and the store reads back whole.
func TestCrashSafety(t *testing.T) {
	dir := t.TempDir()
	s := startSpidIn(t, dir)
	creds := s.Creds(t)
	a := newAPI(t, creds)

	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
	)
	stop := make(chan struct{})
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("w%d-%d", w, i)
				status, _ := a.callNoFail("POST", "/streams/default/connections",
					map[string]any{"name": name, "type": "Https", "url": "https://example.com/" + name})
				if status == 0 {
					return // spid is gone
				}
				if status == 200 {
					mu.Lock()
					acked = append(acked, name)
					mu.Unlock()
				}
			}
		}()
	}
	// Kill once a good number of writes are acknowledged, while the writers are still going.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 150 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.Kill(t)
	close(stop)
	wg.Wait()
	mu.Lock()
	names := append([]string(nil), acked...)
	mu.Unlock()
	if len(names) < 150 {
		t.Fatalf("only %d writes were acknowledged before the kill", len(names))
	}

	s2 := startSpidIn(t, dir)
	a2 := newAPI(t, s2.Creds(t))
	for _, name := range names {
		if status, body := a2.call("GET", "/streams/default/connections/"+name, nil); status != 200 {
			t.Fatalf("acknowledged connection %s is missing after the crash: %d %s", name, status, body)
		}
	}
	// The whole registry reads back: every record decrypts and decodes.
	list := a2.ok("GET", "/streams/default/connections?itemsPerPage=500", nil)
	total := int(list["totalCount"].(float64))
	if total < len(names)+1 {
		t.Errorf("registry lists %d connections, fewer than the %d acknowledged plus the sample", total, len(names))
	}
	t.Logf("%d writes acknowledged before SIGKILL; %d connections after restart", len(names), total)
}

// Plain TCP on a non-loopback address needs --allow-insecure: without it spid refuses to start
// and says why.
func TestNonLoopbackNeedsTLSOrAllowInsecure(t *testing.T) {
	cmd := exec.Command(spidBin, "--listen", "0.0.0.0:0", "--admin-listen", "127.0.0.1:0", "--data-dir", t.TempDir())
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not a loopback address") || !strings.Contains(string(out), "--allow-insecure") {
		t.Fatalf("spid on 0.0.0.0 without TLS: %v\n%s", err, out)
	}
	s := startSpid(t, "--listen", "0.0.0.0:0", "--allow-insecure")
	if err := connectGo(t, s.Admin(t, "", "")).Ping(t.Context(), nil); err != nil {
		t.Fatalf("with --allow-insecure: %v", err)
	}
}
