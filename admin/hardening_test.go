package admin

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
)

// auditLines reads the control-plane audit log of env.
func (e *testEnv) auditLines() []AuditRecord {
	e.t.Helper()
	f, err := os.Open(e.auditPath)
	if err != nil {
		e.t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	var out []AuditRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var r AuditRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			e.t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

// Every list endpoint, over pageNum x itemsPerPage including values that overflow int
// arithmetic, answers 200 with a well-formed page or 400 naming the parameter; nothing panics.
func TestPageArithmetic(t *testing.T) {
	env := newEnv(t)
	nums := []string{"", "0", "1", "2", "-1", "500", "501", "4611686018427387904", "9223372036854775807",
		"9223372036854775808", "-9223372036854775808", "99999999999999999999999", "1e3", "abc", "%00"}
	lists := []string{"/streams", "/streams/default/connections", "/databaseUsers", "/apiKeys"}
	for _, path := range lists {
		for _, pn := range nums {
			for _, per := range nums {
				q := "?pageNum=" + pn + "&itemsPerPage=" + per
				status, out := env.do("GROUP_OWNER", "GET", path+q, "")
				switch status {
				case http.StatusOK:
					if _, ok := out["results"].([]any); !ok {
						t.Fatalf("GET %s%s: 200 without results: %v", path, q, out)
					}
				case http.StatusBadRequest:
					if out["errorCode"] != "INVALID_QUERY_PARAMETER" {
						t.Fatalf("GET %s%s: 400 %v", path, q, out)
					}
				default:
					t.Fatalf("GET %s%s: %d %v", path, q, status, out)
				}
			}
		}
	}
	_, out := env.do("GROUP_READ_ONLY", "GET", "/databaseUsers?pageNum=9223372036854775807", "")
	if res, _ := out["results"].([]any); res == nil || len(res) != 0 {
		t.Errorf("the last possible page is not an empty page: %v", out)
	}
}

// A digest session of successful calls writes one audit line per call and none for the
// challenges; a wrong key writes one failure line with its reason; a forbidden role one.
func TestAuditRecordsOnlyRealFailures(t *testing.T) {
	env := newEnv(t)
	before := len(env.auditLines())
	for i := range 10 {
		env.must("POST", "/streams/default/connections", `{"name":"h`+strconv.Itoa(i)+`","type":"Https","url":"https://e.com"}`)
		env.must("GET", "/streams/default/connections/h"+strconv.Itoa(i), "")
	}
	lines := env.auditLines()[before:]
	if len(lines) != 20 {
		t.Fatalf("10 POSTs and 10 GETs wrote %d audit lines: %+v", len(lines), lines)
	}
	for _, l := range lines {
		if l.Outcome != "success" || l.Caller == "" || strings.HasPrefix(l.Caller, "unauthenticated") {
			t.Errorf("unexpected line %+v", l)
		}
	}
	before += len(lines)
	if status, _ := env.do("wrong key", "GET", "/streams", ""); status != http.StatusUnauthorized {
		t.Fatalf("wrong key: %d", status)
	}
	lines = env.auditLines()[before:]
	if len(lines) != 1 || lines[0].Outcome != "failure" || lines[0].Reason != "wrong API key" || !strings.HasPrefix(lines[0].Caller, "unauthenticated:") {
		t.Fatalf("a wrong-key call wrote %+v", lines)
	}
	before++
	if status, _ := env.do("GROUP_READ_ONLY", "POST", "/streams", `{"name":"x"}`); status != http.StatusForbidden {
		t.Fatalf("read-only POST: %d", status)
	}
	if status, _ := env.do("GROUP_DATA_ACCESS_ADMIN", "GET", "/apiKeys", ""); status != http.StatusForbidden {
		t.Fatalf("GET apiKeys as data access admin: %d", status)
	}
	lines = env.auditLines()[before:]
	if len(lines) != 2 || lines[0].Status != 403 || lines[1].Status != 403 {
		t.Fatalf("two forbidden calls wrote %+v", lines)
	}
}

// A request with a path and user name of 300 KB each costs the audit log a few hundred bytes.
func TestAuditFieldsBounded(t *testing.T) {
	env := newEnv(t)
	st0, _ := os.Stat(env.auditPath)
	long := strings.Repeat("a", 300<<10) // two of them stay under net/http's 1 MB header limit
	for range 5 {
		req, _ := http.NewRequest("POST", env.srv.URL+"/api/atlas/v2/groups/"+env.group+"/streams/"+long, strings.NewReader("{}"))
		req.Header.Set("Authorization", `Digest username="`+long+`", realm="spi", nonce="x", uri="/", response="0", qop=auth, nc=00000001, cnonce="c"`)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
	}
	st1, _ := os.Stat(env.auditPath)
	if grown := st1.Size() - st0.Size(); grown == 0 || grown > 5*600 {
		t.Fatalf("5 requests with 300 KB paths and user names grew the audit log by %d bytes", grown)
	}
	for _, l := range env.auditLines() {
		if len(l.Path) > 300 || len(l.Caller) > 100 {
			t.Errorf("unbounded field in %+v", l)
		}
	}
}

// Duplicate digest parameters are refused: one value could be checked and another audited.
func TestDuplicateDigestParameters(t *testing.T) {
	env := newEnv(t)
	req, _ := http.NewRequest("GET", env.srv.URL+"/api/atlas/v2/groups/"+env.group+"/streams", nil)
	req.Header.Set("Authorization", `Digest username="a", username="b", realm="spi", nonce="x", uri="/", response="0", qop=auth, nc=00000001, cnonce="c"`)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d", resp.StatusCode)
	}
	lines := env.auditLines()
	last := lines[len(lines)-1]
	if !strings.Contains(last.Reason, "username given more than once") {
		t.Errorf("audit: %+v", last)
	}
}

// Names that a URL path cannot carry are refused, and a bad user name blames the user name.
func TestNames(t *testing.T) {
	env := newEnv(t)
	for _, name := range []string{".", ".."} {
		status, out := env.do("owner", "POST", "/streams/default/connections", `{"name":"`+name+`","type":"Https","url":"https://e.com"}`)
		if status != 400 || out["parameters"].([]any)[0] != "name" {
			t.Errorf("connection %q: %d %v", name, status, out)
		}
		status, out = env.do("owner", "POST", "/databaseUsers", `{"databaseName":"admin","username":"`+name+`","password":"a-long-password","roles":[{"roleName":"readAnyDatabase","databaseName":"admin"}]}`)
		if status != 400 || out["parameters"].([]any)[0] != "username" {
			t.Errorf("user %q: %d %v", name, status, out)
		}
	}
	// U+0221 is unassigned in Unicode 3.2, so SASLprep prohibits it.
	status, out := env.do("owner", "POST", "/databaseUsers", `{"databaseName":"admin","username":"bad\u0221name","password":"a-long-password","roles":[{"roleName":"readAnyDatabase","databaseName":"admin"}]}`)
	if status != 400 || out["parameters"].([]any)[0] != "username" {
		t.Errorf("SASLprep-prohibited user name: %d %v", status, out)
	}
}

// A stored secret does not follow a changed destination or a weaker transport.
func TestSecretsBoundToDestination(t *testing.T) {
	env := newEnv(t)
	env.must("POST", "/streams/default/connections", `{"name":"k","type":"Kafka","bootstrapServers":"a:9092",
		"authentication":{"mechanism":"SCRAM-256","username":"u","password":"p"},"security":{"protocol":"SASL_SSL"}}`)
	env.must("POST", "/streams/default/connections", `{"name":"c","type":"Cluster","clusterName":"c0","connectionString":"mongodb://db:27017/?tls=true",
		"dbRoleToExecute":{"role":"readAnyDatabase","type":"BUILT_IN"},"authentication":{"username":"u","password":"p"}}`)
	env.must("POST", "/streams/default/connections", `{"name":"h","type":"Https","url":"https://a.example","headers":{"Authorization":"Bearer t"}}`)
	for _, tc := range []struct {
		name, path, body, field string
	}{
		{"kafka host", "/k", `{"bootstrapServers":"evil:9092"}`, "authentication.password"},
		{"kafka downgrade", "/k", `{"security":{"protocol":"SASL_PLAINTEXT"}}`, "authentication.password"},
		{"cluster host", "/c", `{"connectionString":"mongodb://evil:27017/"}`, "authentication.password"},
		{"https host", "/h", `{"url":"https://evil.example"}`, "headers"},
		{"https downgrade masked", "/h", `{"url":"http://a.example","headers":{"Authorization":"********"}}`, "headers.Authorization"},
		{"https userinfo", "/h", `{"url":"https://user:pw@a.example","headers":{"Authorization":"x"}}`, "url"},
		{"cluster key password", "/c", `{"connectionString":"mongodb://db:27017/?tlsCertificateKeyFilePassword=s3cret","authentication":{"password":"p"}}`, "connectionString"},
	} {
		status, out := env.do("owner", "PATCH", "/streams/default/connections"+tc.path, tc.body)
		if status != 400 || out["parameters"].([]any)[0] != tc.field {
			t.Errorf("%s: %d %v", tc.name, status, out)
		}
		if strings.Contains(strings.ToLower(out["detail"].(string)), "s3cret") {
			t.Errorf("%s: the error repeats the secret", tc.name)
		}
	}
	// With the secret again, each change is accepted.
	env.must("PATCH", "/streams/default/connections/k", `{"bootstrapServers":"b:9092","security":{"protocol":"SASL_PLAINTEXT"},"authentication":{"password":"p2"}}`)
	env.must("PATCH", "/streams/default/connections/c", `{"connectionString":"mongodb://db2:27017/","authentication":{"password":"p2"}}`)
	env.must("PATCH", "/streams/default/connections/h", `{"url":"https://b.example","headers":{"Authorization":"Bearer u"}}`)
	// Changes that move nothing need no secret.
	env.must("PATCH", "/streams/default/connections/k", `{"config":{"auto.offset.reset":"earliest"}}`)
	env.must("PATCH", "/streams/default/connections/h", `{"headers":{"Authorization":"********"}}`)
}

// A workspace in a user's scopes cannot be deleted, so a namesake cannot inherit the scope.
func TestScopedWorkspaceDelete(t *testing.T) {
	env := newEnv(t)
	env.must("POST", "/streams", `{"name":"w"}`)
	env.must("POST", "/databaseUsers", `{"databaseName":"admin","username":"alice","password":"a-long-password","roles":[{"roleName":"readAnyDatabase","databaseName":"admin"}],"scopes":[{"name":"w","type":"STREAM"}]}`)
	status, out := env.do("owner", "DELETE", "/streams/w", "")
	if status != http.StatusConflict || !strings.Contains(out["detail"].(string), "admin/alice") {
		t.Fatalf("delete of a scoped workspace: %d %v", status, out)
	}
	env.must("PATCH", "/databaseUsers/admin/alice", `{"scopes":[{"name":"default","type":"STREAM"}]}`)
	if status, out := env.do("owner", "DELETE", "/streams/w", ""); status != http.StatusAccepted {
		t.Fatalf("delete after unscoping: %d %v", status, out)
	}
}

// A workspace cannot ask for a port outside the configured range; without an address it gets
// one inside it.
func TestWorkspacePortRange(t *testing.T) {
	env := newEnv(t)
	api, err := New(Options{Store: env.st, Listeners: env.listeners, WorkspacePorts: PortRange{Lo: 20000, Hi: 20010}})
	if err != nil {
		t.Fatal(err)
	}
	env.srv.Config.Handler = api
	for _, port := range []string{"80", "1023", "19999", "20011"} {
		status, out := env.do("owner", "POST", "/streams", `{"name":"p`+port+`","hostnames":["127.0.0.1:`+port+`"]}`)
		if status != 400 || out["parameters"].([]any)[0] != "hostnames[0]" || !strings.Contains(out["detail"].(string), "20000-20010") {
			t.Errorf("port %s: %d %v", port, status, out)
		}
	}
	env.must("POST", "/streams", `{"name":"inside","hostnames":["127.0.0.1:20005"]}`)
	out := env.must("POST", "/streams", `{"name":"any"}`)
	host := out["hostnames"].([]any)[0].(string)
	port, _ := strconv.Atoi(host[strings.LastIndexByte(host, ':')+1:])
	if port < 20000 || port > 20010 {
		t.Errorf("a workspace without an address got %s, outside the range", host)
	}
	if _, err := ParsePortRange("80-70"); err == nil {
		t.Errorf("ParsePortRange accepted 80-70")
	}
	if r, err := ParsePortRange("1024-65535"); err != nil || r != DefaultWorkspacePorts {
		t.Errorf("ParsePortRange(1024-65535) = %v, %v", r, err)
	}
}
