package e2e

import (
	"net"
	"strings"
	"testing"
)

// A user name outside ASCII is never SASLprep'd (MongoDB authentication spec): the user logs in
// with SCRAM-SHA-256 and SCRAM-SHA-1 from the Go driver, pymongo and mongosh. A SCRAM-SHA-1-only
// user may have a password SASLprep refuses, since SHA-1 does not prep; SCRAM-SHA-256 refuses
// that password with an error that names the password, not the user name.
func TestNonASCIIUserNames(t *testing.T) {
	s := startSpid(t)
	a := newAPI(t, s.Creds(t))
	const hebrew, hebrewPW = "אורית", "ascii-password-1"
	createUser(t, a, map[string]any{"username": hebrew, "password": hebrewPW})
	// U+E000 is private use: SASLprep prohibits it (RFC 4013 §2.3, RFC 3454 C.3).
	const sha1User, sha1PW = "legacy", "sha1-only-\ue000-pw"
	createUser(t, a, map[string]any{"username": sha1User, "password": sha1PW, "mechanisms": []string{"SCRAM-SHA-1"}})
	status, body := a.callNoFail("POST", "/databaseUsers", map[string]any{"databaseName": "admin", "username": "modern",
		"password": sha1PW, "roles": []any{map[string]any{"roleName": "readAnyDatabase", "databaseName": "admin"}}})
	if status != 400 || !strings.Contains(string(body), "password") || !strings.Contains(string(body), "SASLprep") {
		t.Errorf("a SCRAM-SHA-256 user with a password SASLprep refuses: %d %s", status, body)
	}

	_, port, _ := net.SplitHostPort(s.Addr)
	logins := []struct{ user, pw, mech string }{
		{hebrew, hebrewPW, "SCRAM-SHA-256"},
		{hebrew, hebrewPW, "SCRAM-SHA-1"},
		{sha1User, sha1PW, "SCRAM-SHA-1"},
	}
	for _, l := range logins {
		t.Run(l.user+"/"+l.mech+"/go", func(t *testing.T) {
			c := connectGo(t, userURI(s.Addr, l.user, l.pw, "&authMechanism="+l.mech))
			wantUser(t, c, l.user, "admin")
		})
		t.Run(l.user+"/"+l.mech+"/pymongo", func(t *testing.T) {
			r := runPython(t, `
import json, sys, pymongo
c = pymongo.MongoClient("127.0.0.1", int(sys.argv[1]), username=sys.argv[2], password=sys.argv[3], authSource="admin",
                        authMechanism=sys.argv[4], serverSelectionTimeoutMS=10000)
print(json.dumps(c.admin.command("connectionStatus")["authInfo"]["authenticatedUsers"]))
`, port, l.user, l.pw, l.mech)
			var users []map[string]string
			lastJSON(t, r, &users)
			if len(users) != 1 || users[0]["user"] != l.user {
				t.Errorf("authenticatedUsers = %v, want %q", users, l.user)
			}
		})
		t.Run(l.user+"/"+l.mech+"/mongosh", func(t *testing.T) {
			r := runMongosh(t, userURI(s.Addr, l.user, l.pw, "&authMechanism="+l.mech), "--quiet", "--eval",
				`print(JSON.stringify(db.runCommand({connectionStatus:1}).authInfo.authenticatedUsers))`)
			var users []map[string]string
			lastJSON(t, r, &users)
			if len(users) != 1 || users[0]["user"] != l.user {
				t.Errorf("authenticatedUsers = %v, want %q", users, l.user)
			}
		})
	}
	for _, l := range logins {
		found := false
		for _, e := range readAudit(t, s) {
			found = found || e.Event == "authenticate" && e.User == l.user && e.Mechanism == l.mech && e.Outcome == "success"
		}
		if !found {
			t.Errorf("no successful %s login of %s in the audit log", l.mech, l.user)
		}
	}
}
