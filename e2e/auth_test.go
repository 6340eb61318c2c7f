package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/spi-streams/spi/wire"
)

// auditEvent is one line of the data-plane audit log.
type auditEvent struct {
	Event, User, DB, Mechanism, Command, Workspace, Outcome, Reason string
}

func readAudit(t *testing.T, s *spid) []auditEvent {
	t.Helper()
	f, err := os.Open(filepath.Join(s.DataDir, "audit", "data-plane.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	var out []auditEvent
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e auditEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

// lastLogin is the mechanism of the user's latest successful authentication.
func lastLogin(t *testing.T, s *spid, user string) string {
	t.Helper()
	mech := ""
	for _, e := range readAudit(t, s) {
		if e.Event == "authenticate" && e.User == user && e.Outcome == "success" {
			mech = e.Mechanism
		}
	}
	return mech
}

// userURI is a mongodb:// URI logging in as user with password on addr.
func userURI(addr, user, password, extra string) string {
	return "mongodb://" + url.UserPassword(user, password).String() + "@" + addr + "/?authSource=admin" + extra
}

// commandsSent lists the command names a client sent through the proxy, in order.
func commandsSent(t *testing.T, p *wireProxy) []string {
	t.Helper()
	var names []string
	all := wire.Negotiate([]string{"snappy", "zlib", "zstd"})
	for _, f := range p.Frames() {
		if !f.FromClient {
			continue
		}
		req, _, err := wire.ReadMessage(bytes.NewReader(f.Raw), nil, &all)
		if err != nil {
			t.Fatal(err)
		}
		if first, err := bson.Raw(req.Body).IndexErr(0); err == nil {
			names = append(names, first.Key())
		}
	}
	return names
}

func createUser(t *testing.T, a *api, body map[string]any) {
	t.Helper()
	if _, ok := body["databaseName"]; !ok {
		body["databaseName"] = "admin"
	}
	if _, ok := body["roles"]; !ok {
		body["roles"] = []any{map[string]any{"roleName": "readAnyDatabase", "databaseName": "admin"}}
	}
	a.ok("POST", "/databaseUsers", body)
}

// mongosh logs in with SCRAM-SHA-256 speculatively (inside hello) and explicitly (db.auth), with
// SCRAM-SHA-1 when asked; a wrong password and an unknown user fail identically.
func TestMongoshSCRAM(t *testing.T) {
	s := startSpid(t)
	a := newAPI(t, s.Creds(t))
	createUser(t, a, map[string]any{"username": "alice", "password": "alice-password"})
	users := `printjson(db.runCommand({connectionStatus: 1}).authInfo.authenticatedUsers.map(u => u.user + "@" + u.db))`

	p := startProxy(t, s.Addr)
	r := runMongosh(t, userURI(p.Addr, "alice", "alice-password", ""), "--quiet", "--eval", users)
	if r.Exit != 0 || r.Stderr != "" || !strings.Contains(r.Stdout, "alice@admin") {
		t.Fatalf("speculative SCRAM-SHA-256: %+v", r)
	}
	sent := commandsSent(t, p)
	if strings.Contains(strings.Join(sent, " "), "saslStart") || !strings.Contains(strings.Join(sent, " "), "saslContinue") {
		t.Errorf("expected speculative authentication (saslContinue, no saslStart); mongosh sent %v", sent)
	}
	if m := lastLogin(t, s, "alice"); m != "SCRAM-SHA-256" {
		t.Errorf("speculative login used %q", m)
	}

	// Explicit SCRAM-SHA-256: every driver speculates when it has credentials, so mongosh runs
	// the saslStart/saslContinue conversation itself, as a script, on its one pooled connection
	// and without skipEmptyExchange (so the final empty saslContinue is exercised too).
	p = startProxy(t, s.Addr)
	r = runMongosh(t, "mongodb://"+p.Addr+"/?maxPoolSize=1", "--quiet", "--eval", explicitSCRAM("alice", "alice-password")+users)
	if r.Exit != 0 || !strings.Contains(r.Stdout, "alice@admin") || !strings.Contains(r.Stdout, "verified server signature") {
		t.Fatalf("explicit SCRAM-SHA-256: %+v", r)
	}
	if got := strings.Join(commandsSent(t, p), " "); !strings.Contains(got, "saslStart saslContinue saslContinue") {
		t.Errorf("explicit conversation: mongosh sent %s", got)
	}

	// A user with only SCRAM-SHA-1 credentials: the speculative SHA-256 attempt is declined and
	// mongosh falls back to an explicit SCRAM-SHA-1 saslStart, as with mongod.
	createUser(t, a, map[string]any{"username": "legacy", "password": "legacy-password", "mechanisms": []any{"SCRAM-SHA-1"}})
	p = startProxy(t, s.Addr)
	r = runMongosh(t, userURI(p.Addr, "legacy", "legacy-password", ""), "--quiet", "--eval", users)
	if r.Exit != 0 || !strings.Contains(r.Stdout, "legacy@admin") {
		t.Fatalf("SHA-1-only user: %+v", r)
	}
	if !strings.Contains(strings.Join(commandsSent(t, p), " "), "saslStart") || lastLogin(t, s, "legacy") != "SCRAM-SHA-1" {
		t.Errorf("SHA-1-only user: sent %v, logged in with %q", commandsSent(t, p), lastLogin(t, s, "legacy"))
	}

	r = runMongosh(t, userURI(s.Addr, "alice", "alice-password", "&authMechanism=SCRAM-SHA-1"), "--quiet", "--eval", users)
	if r.Exit != 0 || !strings.Contains(r.Stdout, "alice@admin") {
		t.Fatalf("SCRAM-SHA-1: %+v", r)
	}
	if m := lastLogin(t, s, "alice"); m != "SCRAM-SHA-1" {
		t.Errorf("authMechanism=SCRAM-SHA-1 logged in with %q", m)
	}

	// No reply on the socket ever carries a password.
	for _, f := range p.Frames() {
		if !f.FromClient && (bytes.Contains(f.Raw, []byte("alice-password")) || bytes.Contains(f.Raw, []byte("legacy-password"))) {
			t.Errorf("a server reply contains a password")
		}
	}

	for name, uri := range map[string]string{
		"wrong password": userURI(s.Addr, "alice", "not-her-password", ""),
		"unknown user":   userURI(s.Addr, "mallory", "alice-password", ""),
	} {
		r := runMongosh(t, uri, "--quiet", "--eval", "db.runCommand({ping: 1})")
		if r.Exit == 0 || strings.TrimSpace(r.Stdout+r.Stderr) != "MongoServerError: Authentication failed." {
			t.Errorf("%s: exit %d, output %q", name, r.Exit, r.Stdout+r.Stderr)
		}
	}
}

// The Go driver: negotiation picks SCRAM-SHA-256 for a user with both credentials and SHA-1
// for a user with only SHA-1 ones; explicit mechanisms work; SASLprep applies to passwords.
func TestGoDriverSCRAM(t *testing.T) {
	s := startSpid(t, "--log-level", "debug")
	a := newAPI(t, s.Creds(t))
	const prepped = "\u2168\u2168-password" // ROMAN NUMERAL NINE: SASLprep (NFKC) maps it to "IX"
	createUser(t, a, map[string]any{"username": "both", "password": "both-password"})
	createUser(t, a, map[string]any{"username": "old", "password": "old-password", "mechanisms": []any{"SCRAM-SHA-1"}})
	createUser(t, a, map[string]any{"username": "unicode", "password": prepped})

	cases := []struct {
		user, password, extra, wantMech string
	}{
		{"both", "both-password", "", "SCRAM-SHA-256"},
		{"both", "both-password", "&authMechanism=SCRAM-SHA-1", "SCRAM-SHA-1"},
		{"both", "both-password", "&authMechanism=SCRAM-SHA-256", "SCRAM-SHA-256"},
		{"old", "old-password", "", "SCRAM-SHA-1"},
		{"unicode", prepped, "", "SCRAM-SHA-256"},
		{"unicode", prepped, "&authMechanism=SCRAM-SHA-1", "SCRAM-SHA-1"},
	}
	for _, c := range cases {
		cl := connectGo(t, userURI(s.Addr, c.user, c.password, c.extra))
		if err := cl.Ping(t.Context(), nil); err != nil {
			t.Fatalf("%s%s: %v", c.user, c.extra, err)
		}
		if m := lastLogin(t, s, c.user); m != c.wantMech {
			t.Errorf("%s%s: logged in with %s, want %s", c.user, c.extra, m, c.wantMech)
		}
	}
	for name, uri := range map[string]string{
		"wrong password":      userURI(s.Addr, "both", "wrong-password", ""),
		"unknown user":        userURI(s.Addr, "nobody", "both-password", ""),
		"unprepared password": userURI(s.Addr, "unicode", "IXIX-passwor", ""),
	} {
		cl := connectGo(t, uri)
		err := cl.Ping(t.Context(), nil)
		if err == nil || !strings.Contains(err.Error(), "Authentication failed.") {
			t.Errorf("%s: %v", name, err)
		}
	}

	// Asking for a mechanism the user has no credentials for fails as mongod fails it.
	err := connectGo(t, userURI(s.Addr, "old", "old-password", "&authMechanism=SCRAM-SHA-256")).Ping(t.Context(), nil)
	if err == nil || !strings.Contains(err.Error(), "Unable to use SCRAM-SHA-256 based authentication for user without any SCRAM-SHA-256 credentials registered") {
		t.Errorf("SHA-256 for a SHA-1-only user: %v", err)
	}

	// No password, proof or key material reaches the logs or the audit log.
	s.Stop(t)
	logs := s.Stderr.String()
	var raw []byte
	raw, err = os.ReadFile(filepath.Join(s.DataDir, "audit", "data-plane.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"both-password", "old-password", prepped, "wrong-password", s.Creds(t).Password} {
		if strings.Contains(logs, secret) || bytes.Contains(raw, []byte(secret)) {
			t.Errorf("a password appears in the logs or the data-plane audit log")
		}
	}
	for _, bad := range []string{"p=", "r=", "v=", "payload"} {
		if bytes.Contains(raw, []byte(bad)) {
			t.Errorf("SCRAM message material (%q) appears in the audit log", bad)
		}
	}
}

// explicitSCRAM is a mongosh script that authenticates with SCRAM-SHA-256 by hand (RFC 5802 /
// RFC 7677 client side, Node's crypto), printing "verified server signature" when the server
// proves it knows the password too.
func explicitSCRAM(user, password string) string {
	return `
const crypto = require("crypto");
const admin = db.getSiblingDB("admin");
const hmac = (k, m) => crypto.createHmac("sha256", k).update(m).digest();
const cnonce = crypto.randomBytes(18).toString("base64");
const bare = "n=` + user + `,r=" + cnonce;
let r = admin.runCommand({saslStart: 1, mechanism: "SCRAM-SHA-256", payload: Buffer.from("n,," + bare), autoAuthorize: 1});
const first = r.payload.toString("utf8");
const f = Object.fromEntries(first.split(",").map(kv => [kv[0], kv.slice(2)]));
if (!f.r.startsWith(cnonce)) throw new Error("server nonce does not extend ours");
const salted = crypto.pbkdf2Sync("` + password + `", Buffer.from(f.s, "base64"), parseInt(f.i), 32, "sha256");
const clientKey = hmac(salted, "Client Key");
const stored = crypto.createHash("sha256").update(clientKey).digest();
const noProof = "c=biws,r=" + f.r;
const authMsg = bare + "," + first + "," + noProof;
const sig = hmac(stored, authMsg);
const proof = Buffer.from(clientKey.map((b, i) => b ^ sig[i])).toString("base64");
r = admin.runCommand({saslContinue: 1, conversationId: r.conversationId, payload: Buffer.from(noProof + ",p=" + proof)});
const v = r.payload.toString("utf8").slice(2);
if (v !== hmac(hmac(salted, "Server Key"), authMsg).toString("base64")) throw new Error("bad server signature");
print("verified server signature");
if (!r.done) r = admin.runCommand({saslContinue: 1, conversationId: r.conversationId, payload: Buffer.alloc(0)});
if (!r.done) throw new Error("conversation not done");
`
}

// commandError extracts the server's code from a driver error.
func commandError(err error) (int32, string, bool) {
	var ce mongo.CommandError
	if errors.As(err, &ce) {
		return ce.Code, ce.Message, true
	}
	return 0, "", false
}
