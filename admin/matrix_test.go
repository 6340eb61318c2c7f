package admin

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
)

// endpoint is one Admin API operation. setup prepares what the call needs (as the owner) and
// returns the path and body; n makes names unique per call.
type endpoint struct {
	name    string
	method  string
	res     resource
	write   bool
	success int
	setup   func(e *testEnv, n int) (path, body string)
}

func fixed(path, body string) func(*testEnv, int) (string, string) {
	return func(*testEnv, int) (string, string) { return path, body }
}

func endpoints() []endpoint {
	ws := func(e *testEnv, n int) string {
		name := fmt.Sprintf("ws%d", n)
		e.must("POST", "/streams", `{"name":"`+name+`"}`)
		return name
	}
	conn := func(e *testEnv, n int) string {
		name := fmt.Sprintf("h%d", n)
		e.must("POST", "/streams/default/connections", `{"name":"`+name+`","type":"Https","url":"https://example.com/x"}`)
		return name
	}
	user := func(e *testEnv, n int) string {
		name := fmt.Sprintf("u%d", n)
		e.must("POST", "/databaseUsers", `{"databaseName":"admin","username":"`+name+`","password":"password-123","roles":[{"roleName":"readAnyDatabase","databaseName":"admin"}]}`)
		return name
	}
	role := func(e *testEnv, n int) string {
		name := fmt.Sprintf("r%d", n)
		e.must("POST", "/customDBRoles/roles", `{"roleName":"`+name+`","actions":[{"action":"LIST_STREAM_PROCESSORS"}]}`)
		return name
	}
	key := func(e *testEnv, n int) string {
		out := e.must("POST", "/apiKeys", fmt.Sprintf(`{"desc":"k%d","roles":["GROUP_READ_ONLY"]}`, n))
		return out["id"].(string)
	}
	return []endpoint{
		{"list workspaces", "GET", resStreams, false, 200, fixed("/streams", "")},
		{"create workspace", "POST", resStreams, true, 200, func(_ *testEnv, n int) (string, string) {
			return "/streams", fmt.Sprintf(`{"name":"new%d"}`, n)
		}},
		{"create workspace with samples", "POST", resStreams, true, 200, func(_ *testEnv, n int) (string, string) {
			return "/streams:withSampleConnections", fmt.Sprintf(`{"name":"sam%d"}`, n)
		}},
		{"get workspace", "GET", resStreams, false, 200, fixed("/streams/default?includeConnections=true", "")},
		{"update workspace", "PATCH", resStreams, true, 200, func(e *testEnv, n int) (string, string) {
			return "/streams/" + ws(e, n), `{"streamConfig":{"tier":"SP30"}}`
		}},
		{"delete workspace", "DELETE", resStreams, true, 202, func(e *testEnv, n int) (string, string) { return "/streams/" + ws(e, n), "" }},
		{"list connections", "GET", resStreams, false, 200, fixed("/streams/default/connections", "")},
		{"create connection", "POST", resStreams, true, 200, func(_ *testEnv, n int) (string, string) {
			return "/streams/default/connections", fmt.Sprintf(`{"name":"c%d","type":"Https","url":"https://example.com"}`, n)
		}},
		{"get connection", "GET", resStreams, false, 200, fixed("/streams/default/connections/sample_stream_solar", "")},
		{"update connection", "PATCH", resStreams, true, 200, func(e *testEnv, n int) (string, string) {
			return "/streams/default/connections/" + conn(e, n), `{"url":"https://example.org/y"}`
		}},
		{"delete connection", "DELETE", resStreams, true, 202, func(e *testEnv, n int) (string, string) {
			return "/streams/default/connections/" + conn(e, n), ""
		}},
		{"list users", "GET", resAccess, false, 200, fixed("/databaseUsers", "")},
		{"create user", "POST", resAccess, true, 201, func(_ *testEnv, n int) (string, string) {
			return "/databaseUsers", fmt.Sprintf(`{"databaseName":"admin","username":"nu%d","password":"password-123","roles":[{"roleName":"atlasAdmin","databaseName":"admin"}]}`, n)
		}},
		{"get user", "GET", resAccess, false, 200, fixed("/databaseUsers/admin/admin", "")},
		{"update user", "PATCH", resAccess, true, 200, func(e *testEnv, n int) (string, string) {
			return "/databaseUsers/admin/" + user(e, n), `{"description":"changed"}`
		}},
		{"delete user", "DELETE", resAccess, true, 204, func(e *testEnv, n int) (string, string) { return "/databaseUsers/admin/" + user(e, n), "" }},
		{"list roles", "GET", resAccess, false, 200, fixed("/customDBRoles/roles", "")},
		{"create role", "POST", resAccess, true, 200, func(_ *testEnv, n int) (string, string) {
			return "/customDBRoles/roles", fmt.Sprintf(`{"roleName":"nr%d","actions":[{"action":"START_STREAM_PROCESSOR"}]}`, n)
		}},
		{"get role", "GET", resAccess, false, 200, func(e *testEnv, n int) (string, string) { return "/customDBRoles/roles/" + role(e, n), "" }},
		{"update role", "PATCH", resAccess, true, 200, func(e *testEnv, n int) (string, string) {
			return "/customDBRoles/roles/" + role(e, n), `{"actions":[{"action":"STOP_STREAM_PROCESSOR"}]}`
		}},
		{"delete role", "DELETE", resAccess, true, 204, func(e *testEnv, n int) (string, string) { return "/customDBRoles/roles/" + role(e, n), "" }},
		{"list keys", "GET", resKeys, false, 200, fixed("/apiKeys", "")},
		{"create key", "POST", resKeys, true, 200, fixed("/apiKeys", `{"desc":"made in a test","roles":["GROUP_READ_ONLY"]}`)},
		{"get key", "GET", resKeys, false, 200, func(e *testEnv, n int) (string, string) { return "/apiKeys/" + key(e, n), "" }},
		{"update key", "PATCH", resKeys, true, 200, func(e *testEnv, n int) (string, string) { return "/apiKeys/" + key(e, n), `{"desc":"renamed"}` }},
		{"delete key", "DELETE", resKeys, true, 204, func(e *testEnv, n int) (string, string) { return "/apiKeys/" + key(e, n), "" }},
	}
}

// permitted is the documented permission table (docs/admin-api.md), written out here rather than
// read from the code under test.
var permitted = map[resource]map[bool][]string{
	resStreams: {
		false: {"GROUP_OWNER", "GROUP_STREAM_PROCESSING_OWNER", "GROUP_DATA_ACCESS_ADMIN", "GROUP_READ_ONLY"},
		true:  {"GROUP_OWNER", "GROUP_STREAM_PROCESSING_OWNER"},
	},
	resAccess: {
		false: {"GROUP_OWNER", "GROUP_STREAM_PROCESSING_OWNER", "GROUP_DATA_ACCESS_ADMIN", "GROUP_READ_ONLY"},
		true:  {"GROUP_OWNER", "GROUP_STREAM_PROCESSING_OWNER", "GROUP_DATA_ACCESS_ADMIN"},
	},
	resKeys: {false: {"GROUP_OWNER"}, true: {"GROUP_OWNER"}},
}

// Every endpoint × every project role, and no key or a wrong key: each cell gets exactly the
// expected status.
func TestRoleMatrix(t *testing.T) {
	env := newEnv(t)
	callers := append(slices.Clone(ProjectRoles), "no key", "wrong key")
	n := 0
	for _, ep := range endpoints() {
		for _, who := range callers {
			n++
			want := ep.success
			switch {
			case who == "no key" || who == "wrong key":
				want = http.StatusUnauthorized
			case !slices.Contains(permitted[ep.res][ep.write], who):
				want = http.StatusForbidden
			}
			path, body := ep.setup(env, n)
			got, out := env.do(who, ep.method, path, body)
			if got != want {
				t.Errorf("%s as %s: status %d, want %d (%v)", ep.name, who, got, want, out)
			}
			if got >= 400 && (out["errorCode"] == nil || out["detail"] == nil || out["error"] != float64(got)) {
				t.Errorf("%s as %s: error body is not Atlas-shaped: %v", ep.name, who, out)
			}
		}
	}
	if len(endpoints()) < 26 {
		t.Errorf("only %d endpoints in the matrix", len(endpoints()))
	}
}

// A request for another project's groupId is 404 even for the owner.
func TestOtherProject(t *testing.T) {
	env := newEnv(t)
	real := env.group
	env.group = "0123456789abcdef01234567"
	if got, out := env.do("owner", "GET", "/streams", ""); got != 404 || out["errorCode"] != "RESOURCE_NOT_FOUND" {
		t.Errorf("other project: %d %v", got, out)
	}
	env.group = real
}
