package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// matrixCommands are the data-plane commands with the action each needs ("" for none). The
// authentication commands (saslStart, saslContinue, authenticate, logout) are exercised by the
// SCRAM and X.509 tests.
var matrixCommands = []struct {
	name   string
	db     string
	cmd    bson.D
	action string
}{
	{"hello", "admin", bson.D{{Key: "hello", Value: 1}}, "-"},
	{"isMaster", "test", bson.D{{Key: "isMaster", Value: 1}}, "-"},
	{"ismaster", "admin", bson.D{{Key: "ismaster", Value: 1}}, "-"},
	{"connectionStatus", "admin", bson.D{{Key: "connectionStatus", Value: 1}}, "-"},
	{"ping", "admin", bson.D{{Key: "ping", Value: 1}}, "-"},
	{"buildInfo", "admin", bson.D{{Key: "buildInfo", Value: 1}}, ""},
	{"buildinfo", "admin", bson.D{{Key: "buildinfo", Value: 1}}, ""},
	{"getLog", "admin", bson.D{{Key: "getLog", Value: "startupWarnings"}}, ""},
	{"getParameter", "admin", bson.D{{Key: "getParameter", Value: 1}, {Key: "featureCompatibilityVersion", Value: 1}}, ""},
	{"listDatabases", "admin", bson.D{{Key: "listDatabases", Value: 1}}, ""},
	{"listCollections", "test", bson.D{{Key: "listCollections", Value: 1}}, ""},
	{"whatsmyuri", "admin", bson.D{{Key: "whatsmyuri", Value: 1}}, ""},
	{"hostInfo", "admin", bson.D{{Key: "hostInfo", Value: 1}}, ""},
	{"endSessions", "admin", bson.D{{Key: "endSessions", Value: bson.A{}}}, ""},
	{"listStreamConnections", "admin", bson.D{{Key: "listStreamConnections", Value: 1}, {Key: "filter", Value: nil}}, "listStreamConnections"},
}

// streamActions are the privilege actions, each given to one custom role in the matrix.
var streamActions = []string{"createStreamProcessor", "dropStreamProcessor", "getStreamProcessor", "listStreamConnections",
	"listStreamProcessors", "modifyStreamProcessor", "processStreamProcessor", "sampleStreamProcessor",
	"startStreamProcessor", "stopStreamProcessor", "streamProcessorStats"}

// grants says which actions a role holds, written out from the spec (section 6.1), not read
// from the code under test.
func grants(role, action string) bool {
	switch role {
	case "atlasAdmin", "readWriteAnyDatabase":
		return true
	case "readAnyDatabase":
		return slices.Contains([]string{"getStreamProcessor", "listStreamProcessors", "streamProcessorStats", "listStreamConnections"}, action)
	}
	return role == "only-"+action
}

// Every data-plane command × built-in roles × custom roles holding exactly one action × users
// scoped to this workspace, scoped elsewhere and unscoped, plus no authentication at all.
func TestAuthorizationMatrix(t *testing.T) {
	s := startSpid(t)
	a := newAPI(t, s.Creds(t))
	a.ok("POST", "/streams", map[string]any{"name": "elsewhere"})
	roles := []string{"atlasAdmin", "readWriteAnyDatabase", "readAnyDatabase"}
	for _, act := range streamActions {
		role := "only-" + act
		a.ok("POST", "/customDBRoles/roles", map[string]any{"roleName": role, "actions": []any{map[string]any{"action": act}}})
		roles = append(roles, role)
	}
	type user struct {
		name, role, scope string
	}
	var users []user
	for i, role := range roles {
		for _, scope := range []string{"", "default", "elsewhere"} {
			u := user{fmt.Sprintf("u%d-%s", i, scope), role, scope}
			if scope == "" {
				u.name = fmt.Sprintf("u%d-unscoped", i)
			}
			body := map[string]any{"databaseName": "admin", "username": u.name, "password": "pw-" + u.name,
				"roles": []any{map[string]any{"roleName": role, "databaseName": "admin"}}}
			if scope != "" {
				body["scopes"] = []any{map[string]any{"name": scope, "type": "STREAM"}}
			}
			a.ok("POST", "/databaseUsers", body)
			users = append(users, u)
		}
	}

	cells := 0
	check := func(who string, c *mongo.Client, authenticated bool, role string) {
		for _, mc := range matrixCommands {
			cells++
			err := c.Database(mc.db).RunCommand(t.Context(), mc.cmd).Err()
			code, msg, isCmd := commandError(err)
			switch {
			case mc.action == "-": // handshake and authentication commands: anyone
				if err != nil {
					t.Errorf("%s %s: %v", who, mc.name, err)
				}
			case !authenticated:
				if !isCmd || code != 13 || msg != "command "+mc.name+" requires authentication" {
					t.Errorf("%s %s: want 13 requires authentication, got %v", who, mc.name, err)
				}
			case mc.action == "" || grants(role, mc.action):
				if err != nil {
					t.Errorf("%s %s: want success, got %v", who, mc.name, err)
				}
			default:
				want := "not authorized: missing privilege for action " + mc.action + " on resource default"
				if !isCmd || code != 13 || msg != want {
					t.Errorf("%s %s: want 13 %q, got %v", who, mc.name, want, err)
				}
			}
		}
	}
	check("unauthenticated", connectGo(t, "mongodb://"+s.Addr+"/"), false, "")
	for _, u := range users {
		c := connectGo(t, userURI(s.Addr, u.name, "pw-"+u.name, ""))
		if u.scope == "elsewhere" {
			// A user restricted to another workspace cannot authenticate to this one at all.
			cells++
			if err := c.Ping(t.Context(), nil); err == nil || !strings.Contains(err.Error(), "Authentication failed.") {
				t.Errorf("%s (scoped to another workspace): %v", u.name, err)
			}
			continue
		}
		check(u.name, c, true, u.role)
	}
	t.Logf("%d cells over %d roles and %d users", cells, len(roles), len(users))
}
