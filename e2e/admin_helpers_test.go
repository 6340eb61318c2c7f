package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/spi-streams/spi/admin/digest"
)

// api is a plain HTTP client of spid's control plane doing digest authentication.
type api struct {
	t     *testing.T
	base  string
	group string
	http  *http.Client
}

func newAPI(t *testing.T, c credentials) *api {
	return &api{t: t, base: c.AdminURL, group: c.GroupID,
		http: &http.Client{Transport: &digest.Transport{Username: c.PublicKey, Password: c.PrivateKey}}}
}

// call sends a request under /api/atlas/v2/groups/{groupId} and returns the status and body.
func (a *api) call(method, path string, body any) (int, []byte) {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			a.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, a.base+"/api/atlas/v2/groups/"+a.group+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Accept", "application/vnd.atlas.2023-02-01+json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.http.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	return resp.StatusCode, out
}

// callNoFail is call for requests that may meet a dead server: a transport error is status 0.
func (a *api) callNoFail(method, path string, body any) (int, []byte) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, nil
	}
	req, err := http.NewRequest(method, a.base+"/api/atlas/v2/groups/"+a.group+path, bytes.NewReader(b))
	if err != nil {
		return 0, nil
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.http.Do(req)
	if err != nil {
		return 0, nil
	}
	defer func() { _ = resp.Body.Close() }()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// ok sends a request that must succeed and decodes its JSON reply (if any).
func (a *api) ok(method, path string, body any) map[string]any {
	a.t.Helper()
	status, out := a.call(method, path, body)
	if status >= 300 {
		a.t.Fatalf("%s %s: %d %s", method, path, status, out)
	}
	var m map[string]any
	if len(bytes.TrimSpace(out)) > 0 && out[0] == '{' {
		if err := json.Unmarshal(out, &m); err != nil {
			a.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return m
}
