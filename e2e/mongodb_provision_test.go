package e2e

import (
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
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

// A deployment on which spid cannot manage users fails the processor at start with 420 naming
// the deployment, the command and the execute-as user, and no credential: embedded FerretDB 1.24
// has no user management (usersInfo is an unknown command). A rotation against it is refused
// and changes nothing, and nothing is written with the administrator's credentials.
//
// No peer here can store a user with a role (FerretDB 1.24's experimental new authentication
// refuses roles in createUser), so the success path — the user created with exactly the role,
// a tampered role set put back, rotation, processors logging in as that user — needs a genuine
// MongoDB to verify (README); unit tests hold the commands and the credentials spid uses.
func TestProvisionRefused(t *testing.T) {
	t.Parallel()
	uri := startFerretDB(t)
	fc := connectFerret(t, uri)
	s := startSpid(t, "--checkpoint-interval", "300ms", "--processor-retry-timeout", "2s")
	a := newAPI(t, s.Creds(t))
	const adminPW = "refused-Secret-1234"
	a.ok("POST", "/streams/default/connections", provisionConn("ferret", uri, "readWriteAnyDatabase", "BUILT_IN", adminPW))
	c := connectGo(t, s.Admin(t, "", ""))
	for _, tc := range []struct{ conn, host, want string }{
		{"ferret", strings.TrimSuffix(strings.TrimPrefix(uri, "mongodb://"), "/"), "usersInfo refused"},
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
