package e2e

import (
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// curlAPI calls the control plane with curl --digest: an HTTP client independent of spid's own
// digest code. It returns the status and the decoded JSON reply.
func curlAPI(t *testing.T, c credentials, method, path, body string) (int, map[string]any) {
	t.Helper()
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatal("curl is not installed; `make test` installs it (apt-get install curl)")
	}
	args := []string{"-sS", "--digest", "-u", c.PublicKey + ":" + c.PrivateKey, "-X", method,
		"-H", "Accept: application/vnd.atlas.2023-02-01+json", "-w", "\n%{http_code}"}
	if body != "" {
		args = append(args, "-H", "Content-Type: application/json", "--data-binary", body)
	}
	args = append(args, c.AdminURL+"/api/atlas/v2/groups/"+c.GroupID+path)
	out, err := exec.Command(curl, args...).Output()
	if err != nil {
		t.Fatalf("curl %s %s: %v", method, path, err)
	}
	s := string(out)
	i := strings.LastIndexByte(s, '\n')
	status, err := strconv.Atoi(strings.TrimSpace(s[i+1:]))
	if err != nil {
		t.Fatalf("curl %s %s: no status in %q", method, path, s)
	}
	var m map[string]any
	if b := strings.TrimSpace(s[:i]); strings.HasPrefix(b, "{") {
		if err := json.Unmarshal([]byte(b), &m); err != nil {
			t.Fatalf("curl %s %s: %v", method, path, err)
		}
	} else if strings.HasPrefix(b, "[") {
		var arr []any
		if err := json.Unmarshal([]byte(b), &arr); err != nil {
			t.Fatal(err)
		}
		m = map[string]any{"array": arr}
	}
	return status, m
}

// Every endpoint works through a plain HTTP client doing digest authentication (curl), and
// lists paginate.
func TestEveryEndpointWithCurl(t *testing.T) {
	s := startSpid(t)
	c := s.Creds(t)
	steps := []struct {
		method, path, body string
		status             int
		check              func(m map[string]any) bool
	}{
		{"POST", "/streams", `{"name":"w1","streamConfig":{"tier":"SP5"}}`, 200, func(m map[string]any) bool { return m["name"] == "w1" }},
		{"POST", "/streams:withSampleConnections", `{"name":"w2"}`, 200, func(m map[string]any) bool { return len(m["connections"].([]any)) == 1 }},
		{"GET", "/streams?itemsPerPage=1&pageNum=2", "", 200, func(m map[string]any) bool {
			return m["totalCount"] == float64(3) && len(m["results"].([]any)) == 1
		}},
		{"GET", "/streams/w1?includeConnections=true", "", 200, func(m map[string]any) bool { return m["name"] == "w1" }},
		{"PATCH", "/streams/w1", `{"streamConfig":{"tier":"SP10"}}`, 200, func(m map[string]any) bool {
			return m["streamConfig"].(map[string]any)["tier"] == "SP10"
		}},
		{"POST", "/streams/w1/connections", `{"name":"k","type":"Kafka","bootstrapServers":"localhost:9092"}`, 200, func(m map[string]any) bool { return m["type"] == "Kafka" }},
		{"POST", "/streams/w1/connections", `{"name":"h","type":"Https","url":"https://example.com"}`, 200, nil},
		{"GET", "/streams/w1/connections?itemsPerPage=1&pageNum=2", "", 200, func(m map[string]any) bool {
			return m["totalCount"] == float64(2) && len(m["results"].([]any)) == 1
		}},
		{"GET", "/streams/w1/connections/k", "", 200, func(m map[string]any) bool { return m["bootstrapServers"] == "localhost:9092" }},
		{"PATCH", "/streams/w1/connections/k", `{"config":{"auto.offset.reset":"earliest"}}`, 200, func(m map[string]any) bool {
			return m["config"].(map[string]any)["auto.offset.reset"] == "earliest"
		}},
		{"DELETE", "/streams/w1/connections/h", "", 202, nil},
		{"POST", "/customDBRoles/roles", `{"roleName":"viewer","actions":[{"action":"LIST_STREAM_PROCESSORS","resources":[{"cluster":true}]}]}`, 200, nil},
		{"GET", "/customDBRoles/roles", "", 200, func(m map[string]any) bool { return len(m["array"].([]any)) == 1 }},
		{"GET", "/customDBRoles/roles/viewer", "", 200, func(m map[string]any) bool { return m["roleName"] == "viewer" }},
		{"PATCH", "/customDBRoles/roles/viewer", `{"actions":[{"action":"GET_STREAM_PROCESSOR"}]}`, 200, nil},
		{"POST", "/databaseUsers", `{"databaseName":"admin","username":"bob","password":"bobs-password","roles":[{"roleName":"viewer","databaseName":"admin"}],"scopes":[{"name":"w1","type":"STREAM"}]}`, 201, nil},
		{"POST", "/databaseUsers", `{"databaseName":"$external","username":"CN=client,OU=SPI,O=TestOrg,C=US","x509Type":"CUSTOMER","roles":[{"roleName":"readAnyDatabase","databaseName":"admin"}]}`, 201, nil},
		{"GET", "/databaseUsers?itemsPerPage=2&pageNum=2", "", 200, func(m map[string]any) bool {
			return m["totalCount"] == float64(3) && len(m["results"].([]any)) == 1
		}},
		{"GET", "/databaseUsers/%24external/CN=client,OU=SPI,O=TestOrg,C=US", "", 200, func(m map[string]any) bool { return m["x509Type"] == "CUSTOMER" }},
		{"PATCH", "/databaseUsers/admin/bob", `{"password":"a-new-password","scopes":[]}`, 200, func(m map[string]any) bool { return len(m["scopes"].([]any)) == 0 }},
		{"DELETE", "/databaseUsers/admin/bob", "", 204, nil},
		{"DELETE", "/customDBRoles/roles/viewer", "", 204, nil},
		{"POST", "/apiKeys", `{"desc":"ci","roles":["GROUP_READ_ONLY"]}`, 200, func(m map[string]any) bool { return len(m["privateKey"].(string)) == 36 }},
		{"GET", "/apiKeys?itemsPerPage=1", "", 200, func(m map[string]any) bool {
			return m["totalCount"] == float64(2) && len(m["results"].([]any)) == 1
		}},
		{"DELETE", "/streams/w2", "", 202, nil},
	}
	var keyID string
	for _, st := range steps {
		status, m := curlAPI(t, c, st.method, st.path, st.body)
		if status != st.status || (st.check != nil && !st.check(m)) {
			t.Fatalf("%s %s: %d %v", st.method, st.path, status, m)
		}
		if st.path == "/apiKeys" && st.method == "POST" {
			keyID = m["id"].(string)
		}
	}
	for _, st := range []struct {
		method, path, body string
		status             int
	}{
		{"GET", "/apiKeys/" + keyID, "", 200},
		{"PATCH", "/apiKeys/" + keyID, `{"desc":"renamed","roles":["GROUP_DATA_ACCESS_ADMIN"]}`, 200},
		{"DELETE", "/apiKeys/" + keyID, "", 204},
		{"GET", "/apiKeys/" + keyID, "", 404},
	} {
		if status, m := curlAPI(t, c, st.method, st.path, st.body); status != st.status {
			t.Fatalf("%s %s: %d %v", st.method, st.path, status, m)
		}
	}
}

// Every resource and verb works through spictl, with table and JSON output.
func TestEveryEndpointWithSpictl(t *testing.T) {
	s := startSpid(t)
	c := s.Creds(t)
	run := func(want string, args ...string) string {
		t.Helper()
		r := runSpictl(t, c, args...)
		if r.Exit != 0 || !strings.Contains(r.Stdout, want) {
			t.Fatalf("spictl %v: exit %d\nstdout: %s\nstderr: %s", args, r.Exit, r.Stdout, r.Stderr)
		}
		return r.Stdout
	}
	run("w1", "workspaces", "create", "--name", "w1", "--tier", "SP5")
	run("w2", "workspaces", "create", "--name", "w2", "--sample")
	run("w1", "workspaces", "list", "--limit", "1", "--page", "2")
	run("SP5", "workspaces", "get", "w1")
	run("SP30", "workspaces", "update", "w1", "--tier", "SP30")
	run("events", "connections", "create", "--workspace", "w1", "--name", "events", "--type", "Kafka", "--bootstrap-servers", "localhost:9092")
	run("c0", "connections", "create", "--workspace", "w1", "--name", "db", "--type", "Cluster", "--cluster-name", "c0",
		"--connection-string", "mongodb://localhost:27017", "--role", "readWriteAnyDatabase")
	run("db", "connections", "list", "--workspace", "w1")
	run(`"bootstrapServers"`, "connections", "get", "events", "--workspace", "w1", "--json")
	run("kafka2:9092", "connections", "update", "events", "--workspace", "w1", "--bootstrap-servers", "kafka2:9092")
	run("", "connections", "delete", "db", "--workspace", "w1")
	run("viewer", "roles", "create", "--name", "viewer", "--action", "LIST_STREAM_PROCESSORS")
	run("viewer", "roles", "list")
	run("LIST_STREAM_PROCESSORS", "roles", "get", "viewer")
	run("GET_STREAM_PROCESSOR", "roles", "update", "viewer", "--action", "GET_STREAM_PROCESSOR")
	run("carol", "users", "create", "--username", "carol", "--password", "carols-password", "--role", "viewer", "--scope", "w1")
	run("carol", "users", "list")
	run("w1", "users", "get", "carol")
	run("readAnyDatabase", "users", "update", "carol", "--role", "readAnyDatabase")
	run("", "users", "delete", "carol")
	run("", "roles", "delete", "viewer")
	out := run("Private key", "keys", "create", "--desc", "ci", "--role", "GROUP_READ_ONLY")
	run("ci", "keys", "list")
	var keys struct {
		Results []struct{ ID, Desc string }
	}
	if err := json.Unmarshal([]byte(run(`"id"`, "keys", "list", "--json")), &keys); err != nil {
		t.Fatal(err)
	}
	var id string
	for _, k := range keys.Results {
		if k.Desc == "ci" {
			id = k.ID
		}
	}
	if id == "" {
		t.Fatalf("no key id in keys list; create said:\n%s", out)
	}
	run("", "keys", "get", id)
	run("", "keys", "update", id, "--desc", "renamed")
	run("", "keys", "delete", id)
	run("", "workspaces", "delete", "w2")
	// Errors are reported with the Atlas code and a non-zero exit.
	r := runSpictl(t, c, "workspaces", "get", "nope")
	if r.Exit != 1 || !strings.Contains(r.Stderr, "404 RESOURCE_NOT_FOUND") {
		t.Errorf("spictl on a missing workspace: exit %d, stderr %q", r.Exit, r.Stderr)
	}
}
