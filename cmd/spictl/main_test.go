package main

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/spi-streams/spi/admin/client"
	"github.com/spi-streams/spi/admin/digest"
)

const (
	group   = "65f0c0ffee0000000000abcd"
	pubKey  = "abcdefgh"
	privKey = "0b5e3c1a-7f2d-4e9b-8c6a-12ab34cd56ef"
	root    = "/api/atlas/v2/groups/" + group
)

// request is what the fake server saw of one authenticated request.
type seenRequest struct{ method, uri, body string }

// fakeSpid verifies digest auth with the one API key (pubKey, privKey), records each
// authenticated request and answers status and reply.
type fakeSpid struct {
	*httptest.Server
	mu     sync.Mutex
	seen   []seenRequest
	status int
	reply  string
}

func newFakeSpid(t *testing.T, status int, reply string) *fakeSpid {
	t.Helper()
	v := &digest.Verifier{Realm: "spi", Lookup: func(user, alg string) (string, bool) {
		if user != pubKey {
			return "", false
		}
		return digest.HA1(alg, user, "spi", privKey), true
	}}
	f := &fakeSpid{status: status, reply: reply}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := v.Verify(r); err != nil {
			var fail *digest.Failure
			v.Challenge(w, errors.As(err, &fail) && fail.Stale)
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"detail":"wrong API key","error":401,"errorCode":"UNAUTHORIZED","parameters":[],"reason":"Unauthorized"}`)
			return
		}
		if r.Header.Get("Accept") != client.MediaType {
			http.Error(w, `{"errorCode":"NOT_ACCEPTABLE"}`, http.StatusNotAcceptable)
			return
		}
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.seen = append(f.seen, seenRequest{r.Method, r.RequestURI, string(b)})
		f.mu.Unlock()
		w.WriteHeader(f.status)
		_, _ = io.WriteString(w, f.reply)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeSpid) requests() []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.seen)
}

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// Replies as spid sends them: write-only values are never in them, and a listed API key's
// private key is masked.
const (
	wsDefault = `{"_id":"w1","groupId":"` + group + `","name":"default","dataProcessRegion":{"cloudProvider":"AWS","region":"VIRGINIA_USA"},"streamConfig":{"tier":"SP10","maxTierSize":"SP50"},"hostnames":["127.0.0.1:27017"],"links":[]}`
	wsList    = `{"results":[` + wsDefault + `,{"name":"dev","streamConfig":{"tier":"SP30","maxTierSize":"SP50"},"hostnames":["127.0.0.1:27018"]}],"totalCount":3,"links":[]}`
	connList  = `{"results":[{"id":"c1","name":"events","type":"Kafka","bootstrapServers":"kafka:9092","state":"READY"},{"name":"sample_stream_solar","type":"Sample"},{"name":"hook","type":"Https","url":"https://example.com/h","headers":{"Authorization":"********"}}],"totalCount":3}`
	userAlice = `{"databaseName":"admin","username":"alice","groupId":"` + group + `","roles":[{"roleName":"readAnyDatabase","databaseName":"admin"}],"scopes":[{"name":"dev","type":"STREAM"}],"x509Type":"NONE","ldapAuthType":"NONE","awsIAMType":"NONE","oidcAuthType":"NONE","links":[]}`
	roleList  = `[{"roleName":"spReader","actions":[{"action":"LIST_STREAM_PROCESSORS","resources":[{"cluster":true}]},{"action":"FIND","resources":[{"db":"sales","collection":"orders"}]}],"inheritedRoles":[{"db":"admin","role":"readAnyDatabase"}]}]`
	maskedKey = "********-****-****-****-12ab34cd56ef"
	keyList   = `{"results":[{"id":"k1","desc":"owner","publicKey":"` + pubKey + `","privateKey":"` + maskedKey + `","roles":[{"groupId":"` + group + `","roleName":"GROUP_OWNER"}]}],"totalCount":1}`
	newKey    = `{"id":"k2","desc":"CI","publicKey":"qwertyui","privateKey":"f81d4fae-7dec-11d0-a765-00a0c91e6bf6","roles":[{"groupId":"` + group + `","roleName":"GROUP_READ_ONLY"}]}`
	conflict  = `{"detail":"a workspace named default already exists","error":409,"errorCode":"DUPLICATE_NAME","parameters":["default"],"reason":"Conflict"}`
)

func TestRun(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		env    map[string]string // over the working credentials
		files  map[string]string // written to a temporary directory, named in args as $DIR/<name>
		stdin  string
		status int
		reply  string

		code       int
		stdout     string   // exact, if set
		contains   []string // in stdout
		stderr     string   // exact, if set
		errHas     []string // in stderr
		notInOut   []string // secrets: in neither stdout nor stderr
		method     string   // "" means no request may reach the server
		uri        string
		body       string // JSON, compared structurally
		noBodySent bool
	}{
		{
			name: "workspaces list as a table", args: []string{"workspaces", "list"}, status: 200, reply: wsList,
			method: "GET", uri: root + "/streams",
			stdout: "NAME     TIER  MAX TIER  REGION            HOSTNAMES\n" +
				"default  SP10  SP50      AWS VIRGINIA_USA  127.0.0.1:27017\n" +
				"dev      SP30  SP50      -                 127.0.0.1:27018\n" +
				"2 of 3 workspaces shown; see --page and --limit.\n",
		},
		{
			name: "ws list with paging", args: []string{"ws", "list", "--limit", "2", "--page", "2"}, status: 200, reply: `{"results":[],"totalCount":0}`,
			method: "GET", uri: root + "/streams?itemsPerPage=2&pageNum=2", stdout: "No workspaces.\n",
		},
		{
			name: "flags after the name; --json prints the reply indented", args: []string{"ws", "get", "default", "--json"}, status: 200, reply: `{"name":"default","hostnames":["a:1"]}`,
			method: "GET", uri: root + "/streams/default",
			stdout: "{\n  \"name\": \"default\",\n  \"hostnames\": [\n    \"a:1\"\n  ]\n}\n",
		},
		{
			name: "global flags before the resource", args: []string{"--json", "ws", "get", "default"}, status: 200, reply: `{}`,
			method: "GET", uri: root + "/streams/default", stdout: "{}\n",
		},
		{
			name: "ws get as key/value lines, with connections", args: []string{"ws", "get", "--connections", "default"}, status: 200,
			reply:  `{"_id":"w1","name":"default","streamConfig":{"tier":"SP10","maxTierSize":"SP50"},"hostnames":["127.0.0.1:27017"],"connections":[{"name":"events","type":"Kafka"}]}`,
			method: "GET", uri: root + "/streams/default?includeConnections=true",
			stdout: "Name:         default\nID:           w1\nTier:         SP10\nMax tier:     SP50\nHostnames:    127.0.0.1:27017\nConnections:  events (Kafka)\n",
		},
		{
			name: "ws create from flags", args: []string{"ws", "create", "--name", "dev", "--tier", "sp10"}, status: 200, reply: wsDefault,
			method: "POST", uri: root + "/streams", body: `{"name":"dev","streamConfig":{"tier":"SP10"}}`,
			contains: []string{"Name:", "default"},
		},
		{
			name:   "flags are merged over --file",
			args:   []string{"ws", "create", "--file", "$DIR/ws.json", "--tier", "SP30"},
			files:  map[string]string{"ws.json": `{"name":"dev","streamConfig":{"tier":"SP10","maxTierSize":"SP50"},"hostnames":["127.0.0.1:27999"],"n":12345678901234567890}`},
			status: 200, reply: wsDefault, method: "POST", uri: root + "/streams",
			body: `{"name":"dev","streamConfig":{"tier":"SP30","maxTierSize":"SP50"},"hostnames":["127.0.0.1:27999"],"n":12345678901234567890}`,
		},
		{
			name: "--file - reads stdin; --sample uses the sample endpoint", args: []string{"ws", "create", "--sample", "--file", "-"}, stdin: `{"name":"s"}`,
			status: 200, reply: wsDefault, method: "POST", uri: root + "/streams:withSampleConnections", body: `{"name":"s"}`,
		},
		{
			name: "ws update", args: []string{"ws", "update", "dev", "--tier", "SP50"}, status: 200, reply: wsDefault,
			method: "PATCH", uri: root + "/streams/dev", body: `{"streamConfig":{"tier":"SP50"}}`,
		},
		{
			name: "ws delete", args: []string{"ws", "delete", "dev"}, status: 202,
			method: "DELETE", uri: root + "/streams/dev", noBodySent: true, stdout: "Deleted workspace \"dev\".\n",
		},
		{
			name: "connections list: header names only, no values", args: []string{"conn", "list", "--workspace", "my ws"}, status: 200, reply: connList,
			method: "GET", uri: root + "/streams/my%20ws/connections",
			stdout: "NAME                 TYPE    TARGET\n" +
				"events               Kafka   kafka:9092\n" +
				"sample_stream_solar  Sample  -\n" +
				"hook                 Https   https://example.com/h\n",
		},
		{
			name: "connection create: type spelled in any case", args: []string{"conn", "create", "--type", "kafka", "--name", "events", "--bootstrap-servers", "k:9092"},
			status: 200, reply: `{"name":"events","type":"Kafka","bootstrapServers":"k:9092"}`,
			method: "POST", uri: root + "/streams/default/connections", body: `{"name":"events","type":"Kafka","bootstrapServers":"k:9092"}`,
			stdout: "Name:               events\nType:               Kafka\nBootstrap servers:  k:9092\n",
		},
		{
			name:   "Cluster connection: type and role type inferred",
			args:   []string{"conn", "create", "--workspace", "dev", "--name", "db", "--cluster-name", "c0", "--connection-string", "mongodb://h:27017", "--role", "atlasAdmin"},
			status: 200, reply: `{}`, method: "POST", uri: root + "/streams/dev/connections",
			body: `{"name":"db","type":"Cluster","clusterName":"c0","connectionString":"mongodb://h:27017","dbRoleToExecute":{"role":"atlasAdmin","type":"BUILT_IN"}}`,
		},
		{
			name: "Sample connection gets its one name", args: []string{"conn", "create", "--type", "Sample"}, status: 200, reply: `{}`,
			method: "POST", uri: root + "/streams/default/connections", body: `{"name":"sample_stream_solar","type":"Sample"}`,
		},
		{
			name: "connections --url is the Https URL; the server is --admin-url",
			args: []string{"conn", "update", "hook", "--url", "https://h.example/x", "--admin-url", "$URL"}, env: map[string]string{"SPI_ADMIN_URL": "http://127.0.0.1:1"},
			status: 200, reply: `{}`, method: "PATCH", uri: root + "/streams/default/connections/hook", body: `{"url":"https://h.example/x"}`,
		},
		{
			name: "connections list --url is a usage error naming --admin-url", args: []string{"conn", "list", "--url", "http://x"},
			code: 2, errHas: []string{"--url applies to connections create and update, not list", "--admin-url"},
		},
		{
			name: "users get: USERNAME alone is in admin; no secret in the output", args: []string{"users", "get", "alice"}, status: 200, reply: userAlice,
			method: "GET", uri: root + "/databaseUsers/admin/alice",
			stdout: "Username:        alice\nDatabase:        admin\nAuthentication:  SCRAM\nRoles:           readAnyDatabase\nWorkspaces:      dev\n",
		},
		{
			name: "users get: an X.509 subject is one escaped segment", args: []string{"users", "get", "$external", "CN=alice,O=Acme Corp"},
			status: 200, reply: `{"databaseName":"$external","username":"CN=alice,O=Acme Corp","x509Type":"CUSTOMER","roles":[]}`,
			method: "GET", uri: root + "/databaseUsers/$external/CN=alice%2CO=Acme%20Corp",
			contains: []string{"X.509 (CUSTOMER)", "Workspaces:      all"},
		},
		{
			name: "users list", args: []string{"users", "list"}, status: 200, reply: `{"results":[` + userAlice + `],"totalCount":1}`,
			method: "GET", uri: root + "/databaseUsers",
			stdout: "DATABASE  USERNAME  AUTH   ROLES            SCOPES\nadmin     alice     SCRAM  readAnyDatabase  dev\n",
		},
		{
			name: "users create: password from the environment, never printed",
			args: []string{"users", "create", "--username", "alice", "--password-env", "ALICE_PW", "--role", "readAnyDatabase", "--role", "spReader", "--scope", "dev"},
			env:  map[string]string{"ALICE_PW": "correct horse battery"}, status: 201, reply: userAlice,
			method: "POST", uri: root + "/databaseUsers",
			body:     `{"username":"alice","password":"correct horse battery","databaseName":"admin","roles":[{"roleName":"readAnyDatabase","databaseName":"admin"},{"roleName":"spReader","databaseName":"admin"}],"scopes":[{"name":"dev","type":"STREAM"}]}`,
			notInOut: []string{"correct horse battery"},
		},
		{
			name: "users create --x509 lives in $external", args: []string{"users", "create", "--x509", "--username", "CN=bob", "--role", "readAnyDatabase"},
			status: 201, reply: `{}`, method: "POST", uri: root + "/databaseUsers",
			body: `{"username":"CN=bob","x509Type":"CUSTOMER","databaseName":"$external","roles":[{"roleName":"readAnyDatabase","databaseName":"admin"}]}`,
		},
		{
			name: "users delete DATABASE USERNAME", args: []string{"users", "delete", "$external", "CN=bob"}, status: 204,
			method: "DELETE", uri: root + "/databaseUsers/$external/CN=bob", stdout: "Deleted database user $external/CN=bob.\n",
		},
		{
			name: "--password-env naming an unset variable", args: []string{"users", "update", "alice", "--password-env", "NOPE"},
			code: 2, errHas: []string{"--password-env NOPE: the variable is not set"},
		},
		{
			name: "--password and --password-env together", args: []string{"users", "update", "alice", "--password", "x", "--password-env", "ALICE_PW"},
			env: map[string]string{"ALICE_PW": "y"}, code: 2, errHas: []string{"not both"},
		},
		{
			name: "roles list: a plain array", args: []string{"roles", "list"}, status: 200, reply: roleList,
			method: "GET", uri: root + "/customDBRoles/roles",
			stdout: "NAME      ACTIONS                                    INHERITED ROLES\nspReader  LIST_STREAM_PROCESSORS, FIND@sales.orders  readAnyDatabase\n",
		},
		{
			name: "roles create", args: []string{"roles", "create", "--name", "spReader", "--action", "LIST_STREAM_PROCESSORS", "--action", "FIND@sales.orders", "--inherit", "readAnyDatabase"},
			status: 200, reply: `{"roleName":"spReader"}`, method: "POST", uri: root + "/customDBRoles/roles",
			body:   `{"roleName":"spReader","actions":[{"action":"LIST_STREAM_PROCESSORS","resources":[{"cluster":true}]},{"action":"FIND","resources":[{"db":"sales","collection":"orders"}]}],"inheritedRoles":[{"db":"admin","role":"readAnyDatabase"}]}`,
			stdout: "Name:  spReader\n",
		},
		{
			name: "keys list never shows a private key, even masked", args: []string{"keys", "list"}, status: 200, reply: keyList,
			method: "GET", uri: root + "/apiKeys",
			stdout:   "ID  PUBLIC KEY  DESCRIPTION  ROLES\nk1  abcdefgh    owner        GROUP_OWNER\n",
			notInOut: []string{"12ab34cd56ef", "****"},
		},
		{
			name: "keys get", args: []string{"keys", "get", "k1"}, status: 200, reply: `{"id":"k1","publicKey":"p","privateKey":"` + maskedKey + `"}`,
			method: "GET", uri: root + "/apiKeys/k1", stdout: "ID:          k1\nPublic key:  p\n", notInOut: []string{"12ab34cd56ef"},
		},
		{
			name: "keys create prints the private key once", args: []string{"keys", "create", "--desc", "CI", "--role", "group_read_only"}, status: 200, reply: newKey,
			method: "POST", uri: root + "/apiKeys", body: `{"desc":"CI","roles":["GROUP_READ_ONLY"]}`,
			stdout: "ID:           k2\nPublic key:   qwertyui\nDescription:  CI\nRoles:        GROUP_READ_ONLY\n" +
				"Private key (shown once): f81d4fae-7dec-11d0-a765-00a0c91e6bf6\nSave it now: spid keeps only a hash of it.\n",
		},
		{
			name: "keys create --json: the reply holds the key", args: []string{"keys", "create", "--json", "--desc", "CI"}, status: 200, reply: newKey,
			method: "POST", uri: root + "/apiKeys", body: `{"desc":"CI"}`, contains: []string{`"privateKey": "f81d4fae-7dec-11d0-a765-00a0c91e6bf6"`},
		},
		{
			name: "an API error: status, code and detail; exit 1", args: []string{"ws", "create", "--name", "default"}, status: 409, reply: conflict,
			method: "POST", uri: root + "/streams", body: `{"name":"default"}`,
			code: 1, stdout: "", stderr: "spictl: 409 DUPLICATE_NAME: a workspace named default already exists\n",
		},
		{
			name: "a wrong private key", args: []string{"ws", "list"}, env: map[string]string{"SPI_PRIVATE_KEY": "wrong"},
			code: 1, errHas: []string{"spictl: 401 UNAUTHORIZED: wrong API key\n", "check the API key"},
		},
		{
			name: "--file that is not a JSON object", args: []string{"ws", "create", "--file", "$DIR/bad.json"}, files: map[string]string{"bad.json": `["x"]`},
			code: 1, errHas: []string{"bad.json: want one JSON object"},
		},
		{
			name: "--file that does not exist", args: []string{"ws", "create", "--file", "$DIR/none.json"},
			code: 1, errHas: []string{"none.json: no such file"},
		},
		{name: "help", args: []string{"help"}, contains: []string{"Resources and verbs:", "SPI_ADMIN_URL", "SPI_GROUP_ID", "SPI_PUBLIC_KEY", "SPI_PRIVATE_KEY", "SPI_CONFIG"}},
		{name: "-h", args: []string{"-h"}, contains: []string{"Usage:"}},
		{name: "-h after a resource", args: []string{"ws", "list", "-h"}, contains: []string{"Usage:"}},
		{name: "no arguments", args: nil, code: 2, errHas: []string{"spictl: missing resource\nusage: spictl <resource> <verb>"}},
		{name: "unknown resource", args: []string{"clusters", "list"}, code: 2, errHas: []string{`unknown resource "clusters"`}},
		{name: "unknown verb", args: []string{"ws", "show"}, code: 2, errHas: []string{`unknown verb "show" for workspaces`}},
		{name: "missing verb", args: []string{"ws"}, code: 2, errHas: []string{"missing verb"}},
		{name: "get without a name", args: []string{"ws", "get"}, code: 2, errHas: []string{"want one argument, the workspace name"}},
		{name: "users get with three arguments", args: []string{"users", "get", "a", "b", "c"}, code: 2, errHas: []string{"want [DATABASE] USERNAME"}},
		{name: "list with an argument", args: []string{"ws", "list", "x"}, code: 2, errHas: []string{"takes no arguments"}},
		{name: "a body flag on get", args: []string{"ws", "get", "x", "--tier", "SP10"}, code: 2, errHas: []string{"--tier applies to workspaces create and update, not get"}},
		{name: "no renaming", args: []string{"roles", "update", "r", "--name", "s"}, code: 2, errHas: []string{"--name applies to roles create, not update"}},
		{name: "update with nothing to send", args: []string{"ws", "update", "x"}, code: 2, errHas: []string{"workspaces update needs a body"}},
		{name: "an unknown flag", args: []string{"ws", "list", "--nope"}, code: 2, errHas: []string{"flag provided but not defined: -nope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeSpid(t, tt.status, tt.reply)
			dir := t.TempDir()
			for name, content := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			env := map[string]string{"HOME": dir, "SPI_ADMIN_URL": srv.URL, "SPI_GROUP_ID": group, "SPI_PUBLIC_KEY": pubKey, "SPI_PRIVATE_KEY": privKey}
			for k, v := range tt.env {
				env[k] = v
			}
			args := make([]string, len(tt.args))
			for i, a := range tt.args {
				args[i] = strings.NewReplacer("$DIR", dir, "$URL", srv.URL).Replace(a)
			}
			var stdout, stderr strings.Builder
			code := cli{env: envOf(env), stdin: strings.NewReader(tt.stdin), stdout: &stdout, stderr: &stderr}.run(args)

			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.code, stderr.String())
			}
			if tt.stdout != "" && stdout.String() != tt.stdout {
				t.Errorf("stdout\n%s\nwant\n%s", stdout.String(), tt.stdout)
			}
			for _, s := range tt.contains {
				if !strings.Contains(stdout.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout.String())
				}
			}
			if tt.stderr != "" && stderr.String() != tt.stderr {
				t.Errorf("stderr %q, want %q", stderr.String(), tt.stderr)
			}
			for _, s := range tt.errHas {
				if !strings.Contains(stderr.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr.String())
				}
			}
			if tt.code == 0 && stderr.Len() > 0 {
				t.Errorf("stderr on success: %s", stderr.String())
			}
			// The API key spictl authenticates with is never printed, whatever the command.
			for _, s := range append(tt.notInOut, privKey) {
				if strings.Contains(stdout.String()+stderr.String(), s) {
					t.Errorf("output contains secret %q:\n%s%s", s, stdout.String(), stderr.String())
				}
			}

			reqs := srv.requests()
			if tt.method == "" {
				if len(reqs) > 0 {
					t.Errorf("server got %+v, want no request", reqs)
				}
				return
			}
			if len(reqs) != 1 {
				t.Fatalf("server got %d requests, want 1: %+v", len(reqs), reqs)
			}
			r := reqs[0]
			if r.method != tt.method || r.uri != tt.uri {
				t.Errorf("request %s %s, want %s %s", r.method, r.uri, tt.method, tt.uri)
			}
			switch {
			case tt.body != "":
				if !jsonEqual(t, r.body, tt.body) {
					t.Errorf("body\n got %s\nwant %s", r.body, tt.body)
				}
			case tt.noBodySent && r.body != "":
				t.Errorf("body %q, want none", r.body)
			}
		})
	}
}

func jsonEqual(t *testing.T, a, b string) bool {
	t.Helper()
	var x, y any
	for _, s := range []struct {
		in  string
		out *any
	}{{a, &x}, {b, &y}} {
		dec := json.NewDecoder(strings.NewReader(s.in))
		dec.UseNumber()
		if err := dec.Decode(s.out); err != nil {
			t.Fatalf("%s: %v", s.in, err)
		}
	}
	return reflect.DeepEqual(x, y)
}

// Each of the URL, project and API key comes from flags, else the environment, else the
// config file; spid's initial-credentials.json is a config file.
func TestCredentials(t *testing.T) {
	const (
		spictlJSON  = `{"url":"http://file:1","groupId":"fileGroup","publicKey":"filePub","privateKey":"filePriv"}`
		initialJSON = `{"groupId":"initGroup","publicKey":"initPub","privateKey":"initPriv","username":"admin","password":"dbUserPassword","adminUrl":"http://127.0.0.1:9999"}`
	)
	fromFile := client.Config{BaseURL: "http://file:1", GroupID: "fileGroup", PublicKey: "filePub", PrivateKey: "filePriv"}
	allEnv := map[string]string{"SPI_ADMIN_URL": "http://env:2", "SPI_GROUP_ID": "envGroup", "SPI_PUBLIC_KEY": "envPub", "SPI_PRIVATE_KEY": "envPriv"}
	fromEnv := client.Config{BaseURL: "http://env:2", GroupID: "envGroup", PublicKey: "envPub", PrivateKey: "envPriv"}
	tests := []struct {
		name    string
		o       options
		env     map[string]string
		files   map[string]string // relative to HOME
		want    client.Config
		wantErr string
		code    int
	}{
		{
			name: "flags win over everything",
			o:    options{url: "http://flag:3", group: "flagGroup", publicKey: "flagPub", privateKey: "flagPriv"},
			env:  allEnv, files: map[string]string{".config/spi/spictl.json": spictlJSON},
			want: client.Config{BaseURL: "http://flag:3", GroupID: "flagGroup", PublicKey: "flagPub", PrivateKey: "flagPriv"},
		},
		{
			name: "environment wins over the config file",
			env:  allEnv, files: map[string]string{".config/spi/spictl.json": spictlJSON},
			want: fromEnv,
		},
		{
			name:  "the default config file",
			files: map[string]string{".config/spi/spictl.json": spictlJSON},
			want:  fromFile,
		},
		{
			name:  "each value from its own source",
			o:     options{publicKey: "flagPub"},
			env:   map[string]string{"SPI_PRIVATE_KEY": "envPriv"},
			files: map[string]string{".config/spi/spictl.json": spictlJSON},
			want:  client.Config{BaseURL: "http://file:1", GroupID: "fileGroup", PublicKey: "flagPub", PrivateKey: "envPriv"},
		},
		{
			name:  "--config wins over SPI_CONFIG",
			o:     options{config: "$HOME/a.json"},
			env:   map[string]string{"SPI_CONFIG": "$HOME/b.json"},
			files: map[string]string{"a.json": spictlJSON, "b.json": initialJSON},
			want:  fromFile,
		},
		{
			name:  "SPI_CONFIG with spid's first-start file",
			env:   map[string]string{"SPI_CONFIG": "$HOME/data/initial-credentials.json"},
			files: map[string]string{"data/initial-credentials.json": initialJSON},
			want:  client.Config{BaseURL: "http://127.0.0.1:9999", GroupID: "initGroup", PublicKey: "initPub", PrivateKey: "initPriv"},
		},
		{
			name:  "first-start file without adminUrl: the default URL",
			o:     options{config: "$HOME/c.json"},
			files: map[string]string{"c.json": `{"groupId":"g","publicKey":"p","privateKey":"k","username":"u","password":"pw"}`},
			want:  client.Config{BaseURL: client.DefaultBaseURL, GroupID: "g", PublicKey: "p", PrivateKey: "k"},
		},
		{
			name: "a URL without a scheme, as --admin-listen is written",
			o:    options{url: "127.0.0.1:8081"},
			env:  map[string]string{"SPI_GROUP_ID": "g", "SPI_PUBLIC_KEY": "p", "SPI_PRIVATE_KEY": "k"},
			want: client.Config{BaseURL: "http://127.0.0.1:8081", GroupID: "g", PublicKey: "p", PrivateKey: "k"},
		},
		{
			name:    "nothing configured: a usage error that says where to put it",
			env:     map[string]string{"SPI_GROUP_ID": "g"},
			wantErr: "missing public key, private key: give --public-key, --private-key, or set SPI_PUBLIC_KEY, SPI_PRIVATE_KEY, or put publicKey, privateKey in $HOME/.config/spi/spictl.json",
			code:    2,
		},
		{
			name:    "an explicit config file that is missing",
			o:       options{config: "$HOME/none.json"},
			wantErr: "none.json: no such file", code: 1,
		},
		{
			name:    "a config file that is not JSON",
			files:   map[string]string{".config/spi/spictl.json": `url=x`},
			wantErr: "spictl.json: invalid character", code: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := t.TempDir()
			expand := strings.NewReplacer("$HOME", home).Replace
			for name, content := range tt.files {
				p := filepath.Join(home, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			env := map[string]string{"HOME": home}
			for k, v := range tt.env {
				env[k] = expand(v)
			}
			o := tt.o
			o.config = expand(o.config)
			got, err := cli{env: envOf(env)}.credentials(&o)
			if tt.wantErr != "" {
				var ue usageError
				isUsage := errors.As(err, &ue)
				if err == nil || !strings.Contains(err.Error(), expand(tt.wantErr)) || isUsage != (tt.code == 2) {
					t.Fatalf("error %v (usage error: %v), want %q (exit %d)", err, isUsage, expand(tt.wantErr), tt.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// Credentials from spid's first-start file authenticate end to end, and the database user's
// password in that file is never used or printed.
func TestInitialCredentialsFile(t *testing.T) {
	srv := newFakeSpid(t, 200, wsList)
	dir := t.TempDir()
	path := filepath.Join(dir, "initial-credentials.json")
	creds := `{"groupId":"` + group + `","publicKey":"` + pubKey + `","privateKey":"` + privKey + `","username":"admin","password":"dbUserPassword","adminUrl":"` + srv.URL + `"}`
	if err := os.WriteFile(path, []byte(creds), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr strings.Builder
	if code := run([]string{"ws", "list", "--config", path}, envOf(map[string]string{"HOME": dir}), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if out := stdout.String() + stderr.String(); strings.Contains(out, "dbUserPassword") || strings.Contains(out, privKey) {
		t.Errorf("output holds a secret:\n%s", out)
	}
	if reqs := srv.requests(); len(reqs) != 1 || reqs[0].uri != root+"/streams" {
		t.Errorf("requests %+v", reqs)
	}
}
