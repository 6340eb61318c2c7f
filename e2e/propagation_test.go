package e2e

import (
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Control-plane changes take effect for new logins at once and for open connections at their
// next command: a new password, a removed role, a changed scope, a deleted user.
func TestControlPlaneChangesApply(t *testing.T) {
	s := startSpid(t)
	a := newAPI(t, s.Creds(t))
	a.ok("POST", "/streams", map[string]any{"name": "other"})
	a.ok("POST", "/customDBRoles/roles", map[string]any{"roleName": "starter", "actions": []any{map[string]any{"action": "START_STREAM_PROCESSOR"}}})
	for _, u := range []string{"pat", "rob", "sam", "dee"} {
		createUser(t, a, map[string]any{"username": u, "password": u + "-password-1"})
	}
	list := bson.D{{Key: "listStreamConnections", Value: 1}}
	open := map[string]*mongo.Client{}
	for _, u := range []string{"pat", "rob", "sam", "dee"} {
		// One pooled connection, so "the open connection" is a single authenticated session.
		open[u] = connectGo(t, userURI(s.Addr, u, u+"-password-1", "&maxPoolSize=1"))
		if err := open[u].Database("admin").RunCommand(t.Context(), list).Err(); err != nil {
			t.Fatalf("%s before any change: %v", u, err)
		}
	}
	expect := func(who, want string) {
		t.Helper()
		err := open[who].Database("admin").RunCommand(t.Context(), list).Err()
		code, msg, _ := commandError(err)
		if code != 13 || !strings.Contains(msg, want) {
			t.Errorf("%s after the change: %v; want code 13 with %q", who, err, want)
		}
	}

	a.ok("PATCH", "/databaseUsers/admin/pat", map[string]any{"password": "pat-password-2"})
	expect("pat", "requires authentication")
	if err := connectGo(t, userURI(s.Addr, "pat", "pat-password-1", "")).Ping(t.Context(), nil); err == nil {
		t.Error("the old password still logs in")
	}
	if err := connectGo(t, userURI(s.Addr, "pat", "pat-password-2", "")).Ping(t.Context(), nil); err != nil {
		t.Errorf("the new password does not log in: %v", err)
	}

	a.ok("PATCH", "/databaseUsers/admin/rob", map[string]any{"roles": []any{map[string]any{"roleName": "starter", "databaseName": "admin"}}})
	expect("rob", "missing privilege for action listStreamConnections on resource default")

	a.ok("PATCH", "/databaseUsers/admin/sam", map[string]any{"scopes": []any{map[string]any{"name": "other", "type": "STREAM"}}})
	expect("sam", "may not use workspace default")
	if err := connectGo(t, userURI(s.Addr, "sam", "sam-password-1", "")).Ping(t.Context(), nil); err == nil {
		t.Error("a user scoped to another workspace still logs in here")
	}

	if status, body := a.call("DELETE", "/databaseUsers/admin/dee", nil); status != 204 {
		t.Fatalf("delete: %d %s", status, body)
	}
	expect("dee", "requires authentication")
}
