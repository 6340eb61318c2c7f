// Package digest implements HTTP Digest access authentication (RFC 7616, qop "auth") as the
// Atlas Admin API uses it with API keys: the public key is the user name, the private key the
// password. The server side verifies against stored HA1 values, never the private key; the
// client side is an http.RoundTripper.
package digest

import (
	"crypto/hmac"
	"crypto/md5" // RFC 7616 keeps MD5 for compatibility; curl --digest uses it by default.
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Algorithms the server offers, strongest first.
const (
	SHA256 = "SHA-256"
	MD5    = "MD5"
)

func newHash(alg string) func() hash.Hash {
	if strings.EqualFold(alg, SHA256) {
		return sha256.New
	}
	return md5.New
}

func h(alg string, s string) string {
	x := newHash(alg)()
	x.Write([]byte(s))
	return hex.EncodeToString(x.Sum(nil))
}

// HA1 is H(username:realm:password), what a server stores instead of the password.
func HA1(alg, username, realm, password string) string {
	return h(alg, username+":"+realm+":"+password)
}

// response computes the request digest for qop=auth.
func response(alg, ha1, nonce, nc, cnonce, method, uri string) string {
	ha2 := h(alg, method+":"+uri)
	return h(alg, ha1+":"+nonce+":"+nc+":"+cnonce+":auth:"+ha2)
}

// parseParams parses the comma-separated auth-params of a Digest header. dup names a parameter
// given more than once (RFC 7616 §3.4: each appears at most once), "" if none is.
func parseParams(s string) (out map[string]string, dup string) {
	out = map[string]string{}
	for len(s) > 0 {
		s = strings.TrimLeft(s, " ,\t")
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			break
		}
		key := strings.ToLower(strings.TrimSpace(s[:eq]))
		s = strings.TrimLeft(s[eq+1:], " \t")
		var val string
		if strings.HasPrefix(s, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(s); i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
					b.WriteByte(s[i])
					continue
				}
				if s[i] == '"' {
					break
				}
				b.WriteByte(s[i])
			}
			val = b.String()
			if i < len(s) {
				i++
			}
			s = s[i:]
		} else {
			end := strings.IndexByte(s, ',')
			if end < 0 {
				end = len(s)
			}
			val = strings.TrimSpace(s[:end])
			s = s[end:]
		}
		if _, seen := out[key]; seen && dup == "" {
			dup = key
		}
		out[key] = val
	}
	return out, dup
}

func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// Verifier checks Digest Authorization headers. It issues stateless nonces (a timestamp and
// random bytes, MACed with a per-process key) and remembers the highest nonce count seen for
// each, so a captured request cannot be replayed.
type Verifier struct {
	Realm string
	// NonceLifetime is how long a nonce is accepted; after that the client is told stale=true.
	NonceLifetime time.Duration
	// Lookup returns the stored HA1 for a user name and algorithm, or ok=false.
	Lookup func(username, alg string) (ha1 string, ok bool)

	key  []byte
	once sync.Once

	mu   sync.Mutex
	seen map[string]seenNonce
}

type seenNonce struct {
	nc      uint64
	expires time.Time
}

func (v *Verifier) init() {
	v.once.Do(func() {
		v.key = make([]byte, 32)
		if _, err := rand.Read(v.key); err != nil {
			panic("digest: no randomness: " + err.Error())
		}
		v.seen = map[string]seenNonce{}
		if v.NonceLifetime == 0 {
			v.NonceLifetime = 5 * time.Minute
		}
	})
}

func (v *Verifier) newNonce(now time.Time) string {
	b := make([]byte, 8+12, 8+12+32)
	binary.BigEndian.PutUint64(b, uint64(now.UnixNano()))
	if _, err := rand.Read(b[8:20]); err != nil {
		panic("digest: no randomness: " + err.Error())
	}
	mac := hmac.New(sha256.New, v.key)
	mac.Write(b)
	return base64.RawURLEncoding.EncodeToString(mac.Sum(b))
}

// checkNonce reports whether the nonce is one of ours and whether it is still fresh.
func (v *Verifier) checkNonce(nonce string, now time.Time) (ours, fresh bool) {
	b, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(b) != 8+12+32 {
		return false, false
	}
	mac := hmac.New(sha256.New, v.key)
	mac.Write(b[:20])
	if !hmac.Equal(mac.Sum(nil), b[20:]) {
		return false, false
	}
	issued := time.Unix(0, int64(binary.BigEndian.Uint64(b)))
	return true, now.Sub(issued) <= v.NonceLifetime
}

// Challenge sets the WWW-Authenticate headers of a 401 reply: one per algorithm.
func (v *Verifier) Challenge(w http.ResponseWriter, stale bool) {
	v.init()
	nonce := v.newNonce(time.Now())
	st := "false"
	if stale {
		st = "true"
	}
	for _, alg := range []string{SHA256, MD5} {
		w.Header().Add("WWW-Authenticate", fmt.Sprintf(`Digest realm=%s, qop="auth", algorithm=%s, nonce=%s, stale=%s`,
			quote(v.Realm), alg, quote(nonce), st))
	}
}

// Failure says why a request was not authenticated.
type Failure struct {
	// Stale is set when the only problem is an expired nonce: the client should retry.
	Stale  bool
	Reason string
	// NoCredentials is set when the request carried no Authorization header at all: the
	// first leg of every digest exchange, not an attempt that failed.
	NoCredentials bool
	// User is the user name the credentials claimed (a public key, not a secret), cut to 64
	// bytes; "" if none was parsed.
	User string
}

// clip bounds a client-supplied value that may reach a log or audit record.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

func (f *Failure) Error() string { return f.Reason }

// Verify authenticates r and returns the user name.
func (v *Verifier) Verify(r *http.Request) (string, error) {
	v.init()
	hdr := r.Header.Get("Authorization")
	if !strings.HasPrefix(strings.ToLower(hdr), "digest ") {
		return "", &Failure{Reason: "no digest credentials", NoCredentials: hdr == ""}
	}
	if len(r.Header.Values("Authorization")) > 1 {
		return "", &Failure{Reason: "more than one Authorization header"}
	}
	p, dup := parseParams(hdr[len("digest "):])
	if dup != "" {
		// One value could be checked and another audited: refuse rather than pick one.
		return "", &Failure{Reason: "digest parameter " + clip(dup) + " given more than once"}
	}
	user, nonce, uri, resp := p["username"], p["nonce"], p["uri"], p["response"]
	fail := func(f *Failure) (string, error) { f.User = clip(user); return "", f }
	alg := p["algorithm"]
	if alg == "" {
		alg = MD5
	}
	if !strings.EqualFold(alg, MD5) && !strings.EqualFold(alg, SHA256) {
		return fail(&Failure{Reason: "unsupported digest algorithm"})
	}
	if user == "" || nonce == "" || resp == "" || p["realm"] != v.Realm || p["qop"] != "auth" || p["cnonce"] == "" {
		return fail(&Failure{Reason: "incomplete digest credentials"})
	}
	if uri != r.RequestURI {
		return fail(&Failure{Reason: "digest uri does not match the request"})
	}
	now := time.Now()
	ours, fresh := v.checkNonce(nonce, now)
	if !ours {
		return fail(&Failure{Reason: "unknown nonce"})
	}
	ha1, ok := v.Lookup(user, strings.ToUpper(alg))
	// Compute the digest even for an unknown user, so timing does not reveal which keys exist.
	if !ok {
		ha1 = strings.Repeat("0", len(h(alg, "")))
	}
	want := response(alg, ha1, nonce, p["nc"], p["cnonce"], r.Method, uri)
	if subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(resp))) != 1 || !ok {
		return fail(&Failure{Reason: "wrong API key"})
	}
	if !fresh {
		return fail(&Failure{Stale: true, Reason: "nonce expired"})
	}
	var nc uint64
	if _, err := fmt.Sscanf(p["nc"], "%x", &nc); err != nil || nc == 0 {
		return fail(&Failure{Reason: "bad nonce count"})
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	for k, s := range v.seen {
		if now.After(s.expires) {
			delete(v.seen, k)
		}
	}
	if s, ok := v.seen[nonce]; ok && nc <= s.nc {
		return fail(&Failure{Reason: "replayed request"})
	}
	v.seen[nonce] = seenNonce{nc: nc, expires: now.Add(v.NonceLifetime)}
	return user, nil
}

// Transport is an http.RoundTripper that answers Digest challenges with an API key. It reuses a
// nonce for later requests (incrementing the nonce count) and re-authenticates when the server
// calls it stale. Request bodies must be replayable (GetBody set, as http.NewRequest does for
// in-memory bodies).
type Transport struct {
	Username, Password string
	// Base is the underlying transport; nil means http.DefaultTransport.
	Base http.RoundTripper

	mu        sync.Mutex
	challenge map[string]string
	nc        uint64
}

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

// RoundTrip sends req, authenticating when challenged.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if auth, ok := t.authorize(req); ok {
		r2 := req.Clone(req.Context())
		r2.Header.Set("Authorization", auth)
		resp, err := t.base().RoundTrip(r2)
		if err != nil || resp.StatusCode != http.StatusUnauthorized {
			return resp, err
		}
		if !t.learn(resp) {
			return resp, nil
		}
		_ = resp.Body.Close()
		return t.retry(req)
	}
	resp, err := t.base().RoundTrip(cloneWithBody(req))
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	if !t.learn(resp) {
		return resp, nil
	}
	_ = resp.Body.Close()
	return t.retry(req)
}

func (t *Transport) retry(req *http.Request) (*http.Response, error) {
	auth, ok := t.authorize(req)
	if !ok {
		return nil, errors.New("digest: server sent no usable challenge")
	}
	r2 := cloneWithBody(req)
	r2.Header.Set("Authorization", auth)
	return t.base().RoundTrip(r2)
}

func cloneWithBody(req *http.Request) *http.Request {
	r2 := req.Clone(req.Context())
	if req.GetBody != nil {
		if b, err := req.GetBody(); err == nil {
			r2.Body = b
		}
	}
	return r2
}

// learn records the strongest challenge in a 401 reply.
func (t *Transport) learn(resp *http.Response) bool {
	var best map[string]string
	for _, v := range resp.Header.Values("WWW-Authenticate") {
		if !strings.HasPrefix(strings.ToLower(v), "digest ") {
			continue
		}
		p, _ := parseParams(v[len("digest "):])
		alg := p["algorithm"]
		if alg == "" {
			alg = MD5
		}
		if !strings.EqualFold(alg, SHA256) && !strings.EqualFold(alg, MD5) {
			continue
		}
		if best == nil || strings.EqualFold(alg, SHA256) {
			best = p
			best["algorithm"] = alg
		}
	}
	if best == nil {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.challenge = best
	t.nc = 0
	return true
}

func (t *Transport) authorize(req *http.Request) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.challenge == nil {
		return "", false
	}
	t.nc++
	c := t.challenge
	alg := c["algorithm"]
	cnonceBytes := make([]byte, 16)
	if _, err := rand.Read(cnonceBytes); err != nil {
		return "", false
	}
	cnonce := hex.EncodeToString(cnonceBytes)
	nc := fmt.Sprintf("%08x", t.nc)
	uri := req.URL.RequestURI()
	ha1 := HA1(alg, t.Username, c["realm"], t.Password)
	resp := response(alg, ha1, c["nonce"], nc, cnonce, req.Method, uri)
	return fmt.Sprintf(`Digest username=%s, realm=%s, nonce=%s, uri=%s, algorithm=%s, qop=auth, nc=%s, cnonce=%s, response=%s`,
		quote(t.Username), quote(c["realm"]), quote(c["nonce"]), quote(uri), alg, nc, quote(cnonce), quote(resp)), true
}
