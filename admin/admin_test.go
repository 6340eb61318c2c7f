package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/spi-streams/spi/admin/digest"
	"github.com/spi-streams/spi/audit"
	"github.com/spi-streams/spi/store"
	"github.com/spi-streams/spi/store/storetest"
)

// fakeListeners stands in for the data plane: it records which workspaces are served. (The
// end-to-end tests use the real listeners.)
type fakeListeners struct {
	mu   sync.Mutex
	open map[string]string
	next int
}

func (f *fakeListeners) Open(name, addr string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	if strings.HasSuffix(addr, ":0") {
		addr = fmt.Sprintf("127.0.0.1:%d", 40000+f.next)
	}
	f.open[name] = addr
	return addr, nil
}

func (f *fakeListeners) Close(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.open, name)
}

type testEnv struct {
	t         *testing.T
	srv       *httptest.Server
	group     string
	clients   map[string]*http.Client // by project role, plus "owner"
	listeners *fakeListeners
	st        *store.Store
	auditPath string
}

func newEnv(t *testing.T) *testEnv {
	t.Helper()
	st := storetest.Open(t)
	creds, err := NewInitialCredentials()
	if err != nil {
		t.Fatal(err)
	}
	if err := Bootstrap(st, creds, "127.0.0.1:27017"); err != nil {
		t.Fatal(err)
	}
	env := &testEnv{t: t, group: creds.GroupID, clients: map[string]*http.Client{}, listeners: &fakeListeners{open: map[string]string{}}, st: st}
	env.clients["owner"] = digestClient(creds.PublicKey, creds.PrivateKey)
	for _, role := range ProjectRoles {
		k, private := NewAPIKey("test "+role, []string{role})
		if err := st.Update(func(tx *store.Txn) error { return tx.PutAPIKey(k) }); err != nil {
			t.Fatal(err)
		}
		env.clients[role] = digestClient(k.PublicKey, private)
	}
	env.clients["wrong key"] = digestClient(creds.PublicKey, "00000000-0000-4000-8000-000000000000")
	env.clients["no key"] = http.DefaultClient
	env.auditPath = t.TempDir() + "/audit/control-plane.jsonl"
	audit, err := audit.Open(env.auditPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = audit.Close() })
	api, err := New(Options{Store: st, Audit: audit, Listeners: env.listeners})
	if err != nil {
		t.Fatal(err)
	}
	env.srv = httptest.NewServer(api)
	t.Cleanup(env.srv.Close)
	return env
}

func digestClient(user, pw string) *http.Client {
	return &http.Client{Transport: &digest.Transport{Username: user, Password: pw}}
}

// do sends a request as who and returns the status and decoded body.
func (e *testEnv) do(who, method, path, body string) (int, map[string]any) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+"/api/atlas/v2/groups/"+e.group+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/vnd.atlas.2023-02-01+json")
	resp, err := e.clients[who].Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(bytes.TrimSpace(raw)) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &out); err != nil {
			e.t.Fatalf("%s %s: reply is not JSON: %s", method, path, raw)
		}
	}
	return resp.StatusCode, out
}

// must performs a setup request as the owner and fails the test unless it succeeds.
func (e *testEnv) must(method, path, body string) map[string]any {
	e.t.Helper()
	status, out := e.do("owner", method, path, body)
	if status >= 300 {
		e.t.Fatalf("setup %s %s: %d %v", method, path, status, out)
	}
	return out
}
