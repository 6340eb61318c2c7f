package e2e

import (
	"bytes"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/wire"
)

// sentCommands returns the command documents a client sent through the proxy, in order.
func sentCommands(t *testing.T, p *wireProxy) []bson.Raw {
	t.Helper()
	var out []bson.Raw
	all := wire.Negotiate([]string{"snappy", "zlib", "zstd"})
	for _, f := range p.Frames() {
		if !f.FromClient {
			continue
		}
		req, _, err := wire.ReadMessage(bytes.NewReader(f.Raw), nil, &all)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, bson.Raw(append([]byte(nil), req.Body...)))
	}
	return out
}

// sessionResult is what each client script prints: the stream command's reply inside an
// explicit session, and the error of a command inside a transaction.
type sessionResult struct {
	Conns   int    `json:"conns"`
	TxnCode int    `json:"txnCode"`
	TxnMsg  string `json:"txnMsg"`
}

// Explicit sessions work in mongosh, the Node driver and pymongo, because hello reports
// logicalSessionTimeoutMinutes as a standalone mongod does: startSession(), a stream command
// inside the session (it carries lsid), endSession(). A transaction is refused as a standalone
// mongod refuses it: IllegalOperation (20).
func TestSessionsEveryClient(t *testing.T) {
	s := startSpid(t)
	clients := map[string]func(t *testing.T, uri string) sessionResult{
		"mongosh": func(t *testing.T, uri string) sessionResult {
			r := runMongosh(t, uri, "--quiet", "--eval", `
const s = db.getMongo().startSession();
const o = {conns: s.getDatabase('admin').runCommand({listStreamConnections: 1}).connections.length};
s.startTransaction();
try { s.getDatabase('admin').runCommand({listStreamConnections: 1}); } catch (e) { o.txnCode = e.code; o.txnMsg = e.message; }
s.endSession();
print(JSON.stringify(o));
`)
			var o sessionResult
			lastJSON(t, r, &o)
			return o
		},
		"node": func(t *testing.T, uri string) sessionResult {
			r := runNode(t, `
const c = new MongoClient(argv[0]);
const admin = c.db('admin');
const s = c.startSession();
const o = {conns: (await admin.command({listStreamConnections: 1}, {session: s})).connections.length};
s.startTransaction();
try { await admin.command({listStreamConnections: 1}, {session: s}); } catch (e) { o.txnCode = e.code; o.txnMsg = e.message; }
await s.endSession();
await c.close();
console.log(JSON.stringify(o));
`, uri)
			var o sessionResult
			lastJSON(t, r, &o)
			return o
		},
		"pymongo": func(t *testing.T, uri string) sessionResult {
			r := runPython(t, `
import json, sys, pymongo
c = pymongo.MongoClient(sys.argv[1], serverSelectionTimeoutMS=10000)
s = c.start_session()
o = {"conns": len(c.admin.command("listStreamConnections", session=s)["connections"])}
s.start_transaction()
try:
    c.admin.command("listStreamConnections", session=s)
except pymongo.errors.OperationFailure as e:
    o["txnCode"], o["txnMsg"] = e.code, e.details["errmsg"]
s.end_session()
c.close()
print(json.dumps(o))
`, uri)
			var o sessionResult
			lastJSON(t, r, &o)
			return o
		},
	}
	for _, name := range []string{"mongosh", "node", "pymongo"} {
		t.Run(name, func(t *testing.T) {
			p := startProxy(t, s.Addr)
			o := clients[name](t, s.Admin(t, p.Addr, ""))
			if o.Conns != 1 {
				t.Errorf("listStreamConnections in the session gave %d connections, want 1", o.Conns)
			}
			if o.TxnCode != 20 || !strings.Contains(o.TxnMsg, "does not support transactions") {
				t.Errorf("in a transaction: code %d %q, want 20 and a message saying transactions are not supported", o.TxnCode, o.TxnMsg)
			}
			withLSID := 0
			for _, cmd := range sentCommands(t, p) {
				first, _ := cmd.IndexErr(0)
				if first.Key() == "listStreamConnections" {
					if _, err := cmd.LookupErr("lsid", "id"); err == nil {
						withLSID++
					}
				}
			}
			if withLSID != 2 {
				t.Errorf("%d listStreamConnections commands carried lsid, want 2", withLSID)
			}
		})
	}
}

// A connection authenticates once, as on mongod 6.0 and later: after logging in as one user,
// authenticating as another is refused with mongod's text and the connection keeps its
// identity; the same user may authenticate again. Both are audited.
func TestOneIdentityPerConnection(t *testing.T) {
	s := startSpid(t)
	c := s.Creds(t)
	createUser(t, newAPI(t, c), map[string]any{"username": "bob", "password": "bob-password-1"})
	// mongosh's db.auth() opens a new client; SCRAM by hand (explicitSCRAM) runs on the
	// connection the shell already authenticated as the admin user. One pooled connection, so
	// saslStart and saslContinue travel on the same one.
	r := runMongosh(t, s.Admin(t, "", "&maxPoolSize=1"), "--quiet", "--eval", `
const o = {};
try {
`+explicitSCRAM("bob", "bob-password-1")+`
	o.second = 'accepted';
} catch (e) { o.secondCode = e.code; o.second = e.message; }
o.after = db.runCommand({connectionStatus: 1}).authInfo.authenticatedUsers;
{
`+explicitSCRAM(c.Username, c.Password)+`
	o.again = 1;
}
o.final = db.runCommand({connectionStatus: 1}).authInfo.authenticatedUsers;
print(JSON.stringify(o));
`)
	var o struct {
		SecondCode int                 `json:"secondCode"`
		Second     string              `json:"second"`
		After      []map[string]string `json:"after"`
		Again      float64             `json:"again"`
		Final      []map[string]string `json:"final"`
	}
	lastJSON(t, r, &o)
	want := "Each client connection may only be authenticated once. Previously authenticated as: " + c.Username + "@admin"
	if o.SecondCode != 5626701 || o.Second != want {
		t.Errorf("second user: %d %q, want 5626701 %q", o.SecondCode, o.Second, want)
	}
	for _, users := range [][]map[string]string{o.After, o.Final} {
		if len(users) != 1 || users[0]["user"] != c.Username {
			t.Errorf("authenticatedUsers = %v, want only %s", users, c.Username)
		}
	}
	if o.Again != 1 {
		t.Errorf("re-authenticating as the same user: ok = %v", o.Again)
	}
	var refused, reauth bool
	for _, e := range readAudit(t, s) {
		if e.Event != "authenticate" {
			continue
		}
		refused = refused || e.User == "bob" && e.Outcome == "failure" && strings.Contains(e.Reason, "already authenticated as "+c.Username+"@admin")
		reauth = reauth || e.User == c.Username && e.Outcome == "success" && e.Reason == "re-authentication as the same user"
	}
	if !refused || !reauth {
		t.Errorf("audit: second user refused recorded %v, re-authentication recorded %v", refused, reauth)
	}

	// Under apiStrict even the same user may not authenticate again (mongod's 5626703).
	r = runMongosh(t, s.Admin(t, "", "&maxPoolSize=1"), "--apiVersion", "1", "--apiStrict", "--quiet", "--eval", `
const o = {};
try {
`+explicitSCRAM(c.Username, c.Password)+`
	o.msg = 'accepted';
} catch (e) { o.code = e.code; o.msg = e.message; }
print(JSON.stringify(o));
`)
	var strict struct {
		Code int    `json:"code"`
		Msg  string `json:"msg"`
	}
	lastJSON(t, r, &strict)
	if strict.Code != 5626703 || strict.Msg != "Each client connection may only be authenticated once" {
		t.Errorf("re-authentication under apiStrict: %d %q", strict.Code, strict.Msg)
	}
}
