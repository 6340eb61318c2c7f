package digest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func server(t *testing.T, v *Verifier) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, err := v.Verify(r)
		if err != nil {
			f, _ := err.(*Failure)
			v.Challenge(w, f != nil && f.Stale)
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, err.Error())
			return
		}
		body, _ := io.ReadAll(r.Body)
		_, _ = io.WriteString(w, user+" "+r.Method+" "+string(body))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func verifier(alg string) *Verifier {
	return &Verifier{Realm: "spi", Lookup: func(user, a string) (string, bool) {
		if user != "pubkey" {
			return "", false
		}
		return HA1(a, "pubkey", "spi", "private-key"), true
	}}
}

func TestTransportAuthenticates(t *testing.T) {
	srv := server(t, verifier(""))
	c := &http.Client{Transport: &Transport{Username: "pubkey", Password: "private-key"}}
	for i := range 3 {
		resp, err := c.Post(srv.URL+"/api/x?pageNum=2", "application/json", strings.NewReader(`{"i":1}`))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != `pubkey POST {"i":1}` {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, b)
		}
	}
	for _, pw := range []string{"wrong", ""} {
		c := &http.Client{Transport: &Transport{Username: "pubkey", Password: pw}}
		resp, err := c.Get(srv.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("password %q: status %d", pw, resp.StatusCode)
		}
	}
	c = &http.Client{Transport: &Transport{Username: "nobody", Password: "private-key"}}
	resp, err := c.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unknown user: status %d", resp.StatusCode)
	}
}

// A captured Authorization header cannot be replayed, and expired nonces are reported stale,
// which the transport handles by re-authenticating.
func TestReplayAndStale(t *testing.T) {
	v := verifier("")
	srv := server(t, v)
	var captured string
	tr := &Transport{Username: "pubkey", Password: "private-key", Base: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if a := r.Header.Get("Authorization"); a != "" {
			captured = a
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
	c := &http.Client{Transport: tr}
	resp, err := c.Get(srv.URL + "/a")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("first request: %v %v", resp, err)
	}
	_ = resp.Body.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/a", nil)
	req.Header.Set("Authorization", captured)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("replayed request: status %d", resp.StatusCode)
	}
	// Another URI with the captured header fails too.
	req, _ = http.NewRequest(http.MethodGet, srv.URL+"/b", nil)
	req.Header.Set("Authorization", strings.Replace(captured, "nc=00000001", "nc=00000009", 1))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("header moved to another URI: status %d", resp.StatusCode)
	}

	v.NonceLifetime = time.Nanosecond
	resp, err = c.Get(srv.URL + "/a")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(strings.Join(resp.Header.Values("WWW-Authenticate"), " "), "stale=true") {
		t.Errorf("expired nonce: status %d, challenge %v", resp.StatusCode, resp.Header.Values("WWW-Authenticate"))
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestParseParams(t *testing.T) {
	p, _ := parseParams(`username="a\"b", realm="spi", nc=00000001, qop=auth, uri="/x?a=1,2"`)
	if p["username"] != `a"b` || p["realm"] != "spi" || p["nc"] != "00000001" || p["qop"] != "auth" || p["uri"] != "/x?a=1,2" {
		t.Errorf("parsed %v", p)
	}
}
