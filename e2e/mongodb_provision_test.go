package e2e

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// provisionConn is a Cluster connection with provisionExecuteAsUser: the administrator logs in
// with PLAIN (what FerretDB accepts; MongoDB Enterprise's LDAP on a genuine deployment).
func provisionConn(name, uri, role, typ, adminPW string) map[string]any {
	return map[string]any{"name": name, "type": "Cluster", "clusterName": "ferret", "connectionString": uri,
		"dbRoleToExecute": map[string]any{"role": role, "type": typ}, "provisionExecuteAsUser": true,
		"authentication": map[string]any{"mechanism": "PLAIN", "username": "uadmin", "password": adminPW}}
}

// mergePipe is inline documents $merge'd into db.coll through connection conn.
func mergePipe(conn, db, coll string) bson.A {
	return bson.A{
		bson.D{{Key: "$source", Value: bson.D{{Key: "documents", Value: bson.A{bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: "a"}}, bson.D{{Key: "_id", Value: 2}, {Key: "v", Value: "b"}}}}}}},
		bson.D{{Key: "$merge", Value: bson.D{{Key: "into", Value: bson.D{{Key: "connectionName", Value: conn}, {Key: "db", Value: db}, {Key: "coll", Value: coll}}}}}},
	}
}

// systemDoc reads one document of FerretDB's admin.system.users or admin.system.roles.
func systemDoc(t *testing.T, fc *mongo.Client, coll, id string) bson.M {
	t.Helper()
	var m bson.M
	err := fc.Database("admin").Collection(coll).FindOne(t.Context(), bson.D{{Key: "_id", Value: id}}).Decode(&m)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func rolesOf(m bson.M) string {
	b, _ := json.Marshal(m["roles"])
	return string(b)
}

// Execute-as layer 2 (issue 11): with provisionExecuteAsUser, spid logs in to the deployment
// as the user administrator only to keep the user spi-<workspace>-<connection> holding exactly
// the execute-as role, and processors connect as that user.
//
// FerretDB 1.24 has no user management (createUser, usersInfo, updateUser are unknown
// commands embedded, and refuse roles with its experimental new authentication), so
// userAdminProxy answers those commands as the MongoDB manual documents them, storing users in
// FerretDB's admin.system.users; FerretDB remains the peer of every login and write. What this
// cannot show — the provisioned user's own SCRAM login succeeding and the deployment enforcing
// its role — needs a genuine MongoDB (README). FerretDB refuses SCRAM logins, which here is
// useful: the processor's failing login shows the mechanism and user it used.
func TestProvisionExecuteAsUser(t *testing.T) {
	t.Parallel()
	uri := startFerretDB(t)
	fc := connectFerret(t, uri)
	proxy := startUserAdminProxy(t, uri, fc, "uadmin")
	puri := "mongodb://" + proxy.Addr + "/"
	s := startSpid(t, "--log-level", "debug", "--checkpoint-interval", "300ms", "--processor-retry-timeout", "2s")
	a := newAPI(t, s.Creds(t))
	const adminPW = "uadmin-Secret-8086"
	var replies []string
	reply := func(m any) {
		b, _ := json.Marshal(m)
		replies = append(replies, string(b))
	}

	// A CUSTOM role is mirrored by a deployment role of the user's name.
	a.ok("POST", "/customDBRoles/roles", map[string]any{"roleName": "ordersWriter", "actions": []any{
		map[string]any{"action": "FIND", "resources": []any{map[string]any{"db": "prov", "collection": "orders"}}},
		map[string]any{"action": "INSERT", "resources": []any{map[string]any{"db": "prov", "collection": "orders"}}},
		map[string]any{"action": "UPDATE", "resources": []any{map[string]any{"db": "prov", "collection": "orders"}}},
		map[string]any{"action": "CREATE_COLLECTION", "resources": []any{map[string]any{"db": "prov"}}},
	}})
	created := a.ok("POST", "/streams/default/connections", provisionConn("deploy", puri, "readWriteAnyDatabase", "BUILT_IN", adminPW))
	reply(created)
	eu, _ := created["executeAsUser"].(map[string]any)
	if created["provisionExecuteAsUser"] != true || eu["username"] != "spi-default-deploy" || eu["passwordRotatedAt"] == nil {
		t.Fatalf("created connection: %v", created)
	}
	reply(a.ok("POST", "/streams/default/connections", provisionConn("custom", puri, "ordersWriter", "CUSTOM", adminPW)))

	c := connectGo(t, s.Admin(t, "", ""))
	for _, p := range []struct{ name, conn, coll string }{{"p", "deploy", "target"}, {"pc", "custom", "orders"}} {
		mustAdmin(t, c, bson.D{{Key: "createStreamProcessor", Value: p.name}, {Key: "pipeline", Value: mergePipe(p.conn, "prov", p.coll)}})
		mustAdmin(t, c, bson.D{{Key: "startStreamProcessor", Value: p.name}})
	}

	// The user exists with exactly the execute-as role, SCRAM-SHA-256 only.
	var user bson.M
	waitUntil(t, "the execute-as user on the deployment", func() bool {
		user = systemDoc(t, fc, "system.users", "admin.spi-default-deploy")
		return user != nil
	})
	if got := rolesOf(user); got != `[{"role":"readWriteAnyDatabase","db":"admin"}]` {
		t.Errorf("execute-as user's roles: %s", got)
	}
	if m, _ := json.Marshal(user["mechanisms"]); string(m) != `["SCRAM-SHA-256"]` {
		t.Errorf("mechanisms: %s", m)
	}
	// The custom role's user holds the mirror role, which holds the role's privileges in MongoDB
	// spelling.
	var role bson.M
	waitUntil(t, "the custom role's mirror", func() bool {
		role = systemDoc(t, fc, "system.roles", "admin.spi-default-custom")
		return role != nil && systemDoc(t, fc, "system.users", "admin.spi-default-custom") != nil
	})
	if got := rolesOf(systemDoc(t, fc, "system.users", "admin.spi-default-custom")); got != `[{"role":"spi-default-custom","db":"admin"}]` {
		t.Errorf("custom execute-as user's roles: %s", got)
	}
	privs, _ := json.Marshal(role["privileges"])
	if want := `[{"resource":{"db":"prov","collection":"orders"},"actions":["find","insert","update"]},{"resource":{"db":"prov","collection":""},"actions":["createCollection"]}]`; string(privs) != want {
		t.Errorf("mirror role privileges\n got %s\nwant %s", privs, want)
	}

	// The processor connects as the execute-as user with SCRAM-SHA-256, which FerretDB refuses:
	// a retryable 421 naming the deployment, and nothing written. The administrator's
	// connections send only user management commands.
	waitUntil(t, "the processor's login as the execute-as user", func() bool {
		for _, pc := range proxy.Conns() {
			if pc.Mech == "SCRAM-SHA-256" && pc.User == "spi-default-deploy" {
				return true
			}
		}
		return false
	})
	waitUntil(t, "the processor to report the refused login", func() bool {
		_, code, msg := processorState(t, c, "p")
		if msg != "" && (code != 421 || !strings.Contains(msg, proxy.Addr) || !strings.Contains(msg, "prov.target")) {
			t.Fatalf("processor error %d %q", code, msg)
		}
		return msg != ""
	})
	if logs := s.Stderr.String() + s.Stdout.String(); !regexp.MustCompile(`connecting as the execute-as user.*user=spi-default-deploy mechanism=SCRAM-SHA-256`).MatchString(logs) {
		t.Error("no debug line names the execute-as user the processor connects as")
	}
	writes := []string{"insert", "update", "delete", "findAndModify", "bulkWrite", "aggregate", "create"}
	for i, pc := range proxy.Conns() {
		if pc.Mech == "PLAIN" && pc.User != "uadmin" || pc.Mech == "SCRAM-SHA-256" && !strings.HasPrefix(pc.User, "spi-default-") {
			t.Errorf("connection %d logged in as %s %s", i, pc.Mech, pc.User)
		}
		if pc.Mech == "PLAIN" {
			for _, cmd := range pc.Commands {
				if slices.Contains(writes, cmd) {
					t.Errorf("the administrator's connection %d sent %s: %v", i, cmd, pc.Commands)
				}
			}
		}
	}
	if n, _ := fc.Database("prov").Collection("target").CountDocuments(t.Context(), bson.D{}); n != 0 {
		t.Errorf("%d documents written although the execute-as user could not log in", n)
	}

	// A tampered role set is put back at the next start, with a warning.
	if _, err := fc.Database("admin").Collection("system.users").UpdateOne(t.Context(), bson.D{{Key: "_id", Value: "admin.spi-default-deploy"}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "roles", Value: bson.A{bson.D{{Key: "role", Value: "readWriteAnyDatabase"}, {Key: "db", Value: "admin"}}, bson.D{{Key: "role", Value: "root"}, {Key: "db", Value: "admin"}}}}}}}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the processor to stop retrying", func() bool { st, _, _ := processorState(t, c, "p"); return st == "FAILED" })
	mustAdmin(t, c, bson.D{{Key: "startStreamProcessor", Value: "p"}})
	waitUntil(t, "the role set put back", func() bool {
		return rolesOf(systemDoc(t, fc, "system.users", "admin.spi-default-deploy")) == `[{"role":"readWriteAnyDatabase","db":"admin"}]`
	})
	waitUntil(t, "the warning", func() bool {
		return strings.Contains(s.Stderr.String()+s.Stdout.String(), "execute-as user held other roles")
	})

	// Rotation sets a new password (new stored SCRAM credentials) and the reply shows when.
	before := systemDoc(t, fc, "system.users", "admin.spi-default-deploy")["credentials"]
	pwBefore := proxy.Passwords("spi-default-deploy")
	rotated := a.ok("POST", "/streams/default/connections/deploy:rotateExecuteAsUserPassword", nil)
	reply(rotated)
	after := systemDoc(t, fc, "system.users", "admin.spi-default-deploy")["credentials"]
	pwAfter := proxy.Passwords("spi-default-deploy")
	// (The failing processor retries, and each attempt provisions too: the rotation's password
	// is the last one set when the action returns, and none set before it.)
	if reflect.DeepEqual(before, after) || len(pwAfter) <= len(pwBefore) || slices.Contains(pwBefore, pwAfter[len(pwAfter)-1]) {
		t.Errorf("rotation: credentials changed %v, passwords before %d after %d", !reflect.DeepEqual(before, after), len(pwBefore), len(pwAfter))
	}
	if ru, _ := rotated["executeAsUser"].(map[string]any); ru["passwordRotatedAt"] == nil {
		t.Errorf("rotation reply: %v", rotated)
	}
	// The running processor's next attempt provisions and logs in with the new password.
	waitUntil(t, "a provisioning with the new password", func() bool {
		pws := proxy.Passwords("spi-default-deploy")
		for _, pw := range pws[len(pwAfter):] {
			if pw != pwAfter[len(pwAfter)-1] {
				t.Fatal("a provisioning after the rotation set another password")
			}
		}
		return len(pws) > len(pwAfter)
	})

	// No password appears in replies, logs or audit records.
	for _, cmd := range []bson.D{{{Key: "getStreamProcessor", Value: "p"}}, {{Key: "getStreamProcessorStats", Value: "p"}}, {{Key: "listStreamConnections", Value: 1}}} {
		m, err := runAdmin(t, c, cmd)
		if err != nil {
			t.Fatalf("%v: %v", cmd, err)
		}
		reply(m)
	}
	for _, path := range []string{"/streams/default/connections", "/streams/default/connections/deploy", "/streams/default/processor/p"} {
		_, body := a.call("GET", path, nil)
		replies = append(replies, string(body))
	}
	replies = append(replies, s.Stdout.String(), s.Stderr.String())
	audited := false
	_ = filepath.WalkDir(filepath.Join(s.DataDir, "audit"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".jsonl") {
			b, _ := os.ReadFile(p)
			replies = append(replies, string(b))
			audited = audited || strings.Contains(string(b), "rotateExecuteAsUserPassword")
		}
		return nil
	})
	if !audited {
		t.Error("the audit log has no record of the rotation")
	}
	secrets := append([]string{adminPW}, proxy.Passwords("spi-default-deploy")...)
	secrets = append(secrets, proxy.Passwords("spi-default-custom")...)
	for i, r := range replies {
		for _, sec := range secrets {
			if strings.Contains(r, sec) {
				t.Errorf("reply, log or audit record %d carries a password", i)
			}
		}
	}
	if len(secrets) < 4 {
		t.Fatalf("only %d passwords seen", len(secrets))
	}
}

// A deployment whose administrator may not manage users fails the processor at start with 420
// naming the deployment and the command, and no credential: real FerretDB (no user management:
// usersInfo is an unknown command), and the proxy answering Unauthorized to an administrator
// it does not know. A rotation against it is refused and changes nothing.
func TestProvisionRefused(t *testing.T) {
	t.Parallel()
	uri := startFerretDB(t)
	fc := connectFerret(t, uri)
	proxy := startUserAdminProxy(t, uri, fc, "someone-else")
	s := startSpid(t, "--checkpoint-interval", "300ms", "--processor-retry-timeout", "2s")
	a := newAPI(t, s.Creds(t))
	const adminPW = "refused-Secret-1234"
	a.ok("POST", "/streams/default/connections", provisionConn("ferret", uri, "readWriteAnyDatabase", "BUILT_IN", adminPW))
	a.ok("POST", "/streams/default/connections", provisionConn("unauth", "mongodb://"+proxy.Addr+"/", "readWriteAnyDatabase", "BUILT_IN", adminPW))
	c := connectGo(t, s.Admin(t, "", ""))
	for _, tc := range []struct{ conn, host, want string }{
		{"ferret", strings.TrimSuffix(strings.TrimPrefix(uri, "mongodb://"), "/"), "usersInfo refused"},
		{"unauth", proxy.Addr, "not authorized"},
	} {
		mustAdmin(t, c, bson.D{{Key: "createStreamProcessor", Value: tc.conn}, {Key: "pipeline", Value: mergePipe(tc.conn, "prov", "t")}})
		mustAdmin(t, c, bson.D{{Key: "startStreamProcessor", Value: tc.conn}})
		var msg string
		waitUntil(t, tc.conn+" to fail", func() bool {
			var st string
			var code int32
			st, code, msg = processorState(t, c, tc.conn)
			if st == "FAILED" && (code != 420 || !strings.Contains(msg, tc.host) || !strings.Contains(msg, tc.want) || !strings.Contains(msg, "spi-default-"+tc.conn)) {
				t.Fatalf("%s: %s %d %q", tc.conn, st, code, msg)
			}
			return st == "FAILED"
		})
		t.Logf("%s: %s", tc.conn, msg)
		status, body := a.call("POST", "/streams/default/connections/"+tc.conn+":rotateExecuteAsUserPassword", nil)
		if status != 400 || !strings.Contains(string(body), tc.host) {
			t.Errorf("rotation against %s: %d %s", tc.conn, status, body)
		}
		if strings.Contains(string(body)+msg, adminPW) {
			t.Errorf("%s: a reply carries the administrator's password", tc.conn)
		}
	}
	if n, _ := fc.Database("prov").Collection("t").CountDocuments(t.Context(), bson.D{}); n != 0 {
		t.Errorf("%d documents written with the administrator's credentials", n)
	}
	if strings.Contains(s.Stdout.String()+s.Stderr.String(), adminPW) {
		t.Error("spid's log carries the administrator's password")
	}
}
