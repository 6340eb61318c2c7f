package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/spi-streams/spi/admin/client"
	"github.com/spi-streams/spi/admin/digest"
)

const (
	group   = "65f0c0ffee0000000000abcd"
	pubKey  = "abcdefgh"
	privKey = "0b5e3c1a-7f2d-4e9b-8c6a-12ab34cd56ef"
)

// request is what the fake server saw of one authenticated request.
type request struct {
	method, uri, accept, contentType, body string
}

// recorder keeps the requests a handler saw; the handler runs on the server's goroutines.
type recorder struct {
	mu   sync.Mutex
	reqs []request
}

func (r *recorder) add(q request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, q)
}

func (r *recorder) all() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reqs)
}

// fakeServer verifies digest auth as spid does, records each authenticated request and answers
// with status and reply.
func fakeServer(t *testing.T, status int, reply string) (*httptest.Server, *recorder) {
	t.Helper()
	v := &digest.Verifier{Realm: "spi", Lookup: func(user, alg string) (string, bool) {
		if user != pubKey {
			return "", false
		}
		return digest.HA1(alg, user, "spi", privKey), true
	}}
	seen := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := v.Verify(r); err != nil {
			var f *digest.Failure
			v.Challenge(w, errors.As(err, &f) && f.Stale)
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"detail":"wrong API key","error":401,"errorCode":"UNAUTHORIZED","parameters":[],"reason":"Unauthorized"}`)
			return
		}
		b, _ := io.ReadAll(r.Body)
		seen.add(request{r.Method, r.RequestURI, r.Header.Get("Accept"), r.Header.Get("Content-Type"), string(b)})
		w.Header().Set("Content-Type", client.MediaType)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, reply)
	}))
	t.Cleanup(srv.Close)
	return srv, seen
}

func newClient(srv *httptest.Server, priv string) *client.Client {
	return client.New(client.Config{BaseURL: srv.URL + "/", GroupID: group, PublicKey: pubKey, PrivateKey: priv})
}

func TestMethods(t *testing.T) {
	const root = "/api/atlas/v2/groups/" + group
	ws := `{"_id":"w1","groupId":"` + group + `","name":"default","streamConfig":{"tier":"SP10","maxTierSize":"SP50"},"hostnames":["127.0.0.1:27017"]}`
	wantWS := &client.Workspace{ID: "w1", GroupID: group, Name: "default",
		StreamConfig: &client.StreamConfig{Tier: "SP10", MaxTierSize: "SP50"}, Hostnames: []string{"127.0.0.1:27017"}}
	kafka := `{"id":"c1","state":"READY","name":"k1","type":"Kafka","bootstrapServers":"b:9092","authentication":{"mechanism":"PLAIN","username":"u"}}`
	wantKafka := &client.Connection{ID: "c1", State: "READY", Name: "k1", Type: "Kafka", BootstrapServers: "b:9092",
		Authentication: &client.ConnectionAuth{Mechanism: "PLAIN", Username: "u"}}
	user := `{"databaseName":"$external","username":"CN=alice,O=Acme Corp","x509Type":"CUSTOMER","roles":[{"roleName":"readAnyDatabase","databaseName":"admin"}]}`
	wantUser := &client.DatabaseUser{DatabaseName: "$external", Username: "CN=alice,O=Acme Corp", X509Type: "CUSTOMER",
		Roles: []client.UserRole{{RoleName: "readAnyDatabase", DatabaseName: "admin"}}}
	role := `{"roleName":"spReader","actions":[{"action":"LIST_STREAM_PROCESSORS","resources":[{"cluster":true}]}],"inheritedRoles":[{"db":"admin","role":"readAnyDatabase"}]}`
	wantRole := client.CustomRole{RoleName: "spReader",
		Actions:        []client.RoleAction{{Action: "LIST_STREAM_PROCESSORS", Resources: []client.RoleResource{{Cluster: true}}}},
		InheritedRoles: []client.InheritedRole{{DB: "admin", Role: "readAnyDatabase"}}}
	key := `{"id":"k1","desc":"CI","publicKey":"qwertyui","privateKey":"full-private-key","roles":[{"groupId":"` + group + `","roleName":"GROUP_READ_ONLY"}]}`
	wantKey := &client.APIKey{ID: "k1", Desc: "CI", PublicKey: "qwertyui", PrivateKey: "full-private-key",
		Roles: []client.APIKeyRole{{GroupID: group, RoleName: "GROUP_READ_ONLY"}}}

	tests := []struct {
		name     string
		call     func(context.Context, *client.Client) (any, error)
		status   int
		reply    string
		method   string
		uri      string // escaped, with query
		wantBody string // JSON, compared structurally; "" means no body
		want     any
	}{
		{
			name: "list workspaces, page 3 of 2",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.ListWorkspaces(ctx, client.ListOptions{ItemsPerPage: 2, PageNum: 3})
			},
			status: 200, reply: `{"results":[` + ws + `],"totalCount":5,"links":[]}`,
			method: "GET", uri: root + "/streams?itemsPerPage=2&pageNum=3",
			want: &client.Page[client.Workspace]{Results: []client.Workspace{*wantWS}, TotalCount: 5, Links: []client.Link{}},
		},
		{
			name: "list workspaces, defaults",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.ListWorkspaces(ctx, client.ListOptions{})
			},
			status: 200, reply: `{"results":[],"totalCount":0}`,
			method: "GET", uri: root + "/streams",
			want: &client.Page[client.Workspace]{Results: []client.Workspace{}},
		},
		{
			name:   "get workspace with connections",
			call:   func(ctx context.Context, c *client.Client) (any, error) { return c.GetWorkspace(ctx, "default", true) },
			status: 200, reply: `{"name":"default","connections":[` + kafka + `]}`,
			method: "GET", uri: root + "/streams/default?includeConnections=true",
			want: &client.Workspace{Name: "default", Connections: []client.Connection{*wantKafka}},
		},
		{
			name: "create workspace",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.CreateWorkspace(ctx, &client.Workspace{Name: "default", StreamConfig: &client.StreamConfig{Tier: "SP10"}})
			},
			status: 200, reply: ws,
			method: "POST", uri: root + "/streams", wantBody: `{"name":"default","streamConfig":{"tier":"SP10"}}`,
			want: wantWS,
		},
		{
			name: "create workspace with sample connections",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.CreateWorkspaceWithSampleConnections(ctx, &client.Workspace{Name: "default"})
			},
			status: 200, reply: ws,
			method: "POST", uri: root + "/streams:withSampleConnections", wantBody: `{"name":"default"}`,
			want: wantWS,
		},
		{
			name: "update workspace",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.UpdateWorkspace(ctx, "my ws", &client.WorkspaceUpdate{CloudProvider: "AWS", Region: "VIRGINIA_USA", StreamConfig: &client.StreamConfig{Tier: "SP30"}})
			},
			status: 200, reply: ws,
			method: "PATCH", uri: root + "/streams/my%20ws", wantBody: `{"cloudProvider":"AWS","region":"VIRGINIA_USA","streamConfig":{"tier":"SP30"}}`,
			want: wantWS,
		},
		{
			name: "delete workspace",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return nil, c.DeleteWorkspace(ctx, "default")
			},
			status: 202, method: "DELETE", uri: root + "/streams/default",
		},
		{
			name: "list connections",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.ListConnections(ctx, "default", client.ListOptions{PageNum: 2})
			},
			status: 200, reply: `{"results":[` + kafka + `],"totalCount":1}`,
			method: "GET", uri: root + "/streams/default/connections?pageNum=2",
			want: &client.Page[client.Connection]{Results: []client.Connection{*wantKafka}, TotalCount: 1},
		},
		{
			name:   "get connection",
			call:   func(ctx context.Context, c *client.Client) (any, error) { return c.GetConnection(ctx, "default", "k1") },
			status: 200, reply: kafka,
			method: "GET", uri: root + "/streams/default/connections/k1",
			want: wantKafka,
		},
		{
			name: "create cluster connection",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.CreateConnection(ctx, "default", &client.Connection{Name: "db", Type: client.TypeCluster, ClusterName: "c0",
					ConnectionString: "mongodb://h:27017", DBRoleToExecute: &client.DBRoleToExecute{Role: "atlasAdmin", Type: "BUILT_IN"}})
			},
			status: 200, reply: kafka,
			method: "POST", uri: root + "/streams/default/connections",
			wantBody: `{"name":"db","type":"Cluster","clusterName":"c0","connectionString":"mongodb://h:27017","dbRoleToExecute":{"role":"atlasAdmin","type":"BUILT_IN"}}`,
			want:     wantKafka,
		},
		{
			name: "update https connection",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.UpdateConnection(ctx, "default", "hook.v1", &client.Connection{Headers: map[string]string{"Authorization": "********"}})
			},
			status: 200, reply: kafka,
			method: "PATCH", uri: root + "/streams/default/connections/hook.v1", wantBody: `{"headers":{"Authorization":"********"}}`,
			want: wantKafka,
		},
		{
			name: "delete connection",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return nil, c.DeleteConnection(ctx, "default", "k1")
			},
			status: 202, method: "DELETE", uri: root + "/streams/default/connections/k1",
		},
		{
			name: "list users",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.ListDatabaseUsers(ctx, client.ListOptions{ItemsPerPage: 500})
			},
			status: 200, reply: `{"results":[` + user + `],"totalCount":1}`,
			method: "GET", uri: root + "/databaseUsers?itemsPerPage=500",
			want: &client.Page[client.DatabaseUser]{Results: []client.DatabaseUser{*wantUser}, TotalCount: 1},
		},
		{
			name: "get X.509 user: subject escaped as one segment",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.GetDatabaseUser(ctx, "$external", "CN=alice,O=Acme Corp")
			},
			status: 200, reply: user,
			method: "GET", uri: root + "/databaseUsers/$external/CN=alice%2CO=Acme%20Corp",
			want: wantUser,
		},
		{
			name: "create SCRAM user",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.CreateDatabaseUser(ctx, &client.DatabaseUser{DatabaseName: "admin", Username: "alice", Password: "s3cret-pass",
					Roles: []client.UserRole{{RoleName: "readAnyDatabase", DatabaseName: "admin"}}})
			},
			status: 201, reply: user,
			method: "POST", uri: root + "/databaseUsers",
			wantBody: `{"databaseName":"admin","username":"alice","password":"s3cret-pass","roles":[{"roleName":"readAnyDatabase","databaseName":"admin"}]}`,
			want:     wantUser,
		},
		{
			name: "update user: empty scopes are sent to clear them",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.UpdateDatabaseUser(ctx, "admin", "a/b", &client.DatabaseUser{Scopes: []client.UserScope{}})
			},
			status: 200, reply: user,
			method: "PATCH", uri: root + "/databaseUsers/admin/a%2Fb", wantBody: `{"scopes":[]}`,
			want: wantUser,
		},
		{
			name: "delete user",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return nil, c.DeleteDatabaseUser(ctx, "$external", "CN=bob;OU=x")
			},
			status: 204, method: "DELETE", uri: root + "/databaseUsers/$external/CN=bob%3BOU=x",
		},
		{
			name:   "list roles: a plain array",
			call:   func(ctx context.Context, c *client.Client) (any, error) { return c.ListCustomRoles(ctx) },
			status: 200, reply: `[` + role + `]`,
			method: "GET", uri: root + "/customDBRoles/roles",
			want: []client.CustomRole{wantRole},
		},
		{
			name:   "get role",
			call:   func(ctx context.Context, c *client.Client) (any, error) { return c.GetCustomRole(ctx, "spReader") },
			status: 200, reply: role,
			method: "GET", uri: root + "/customDBRoles/roles/spReader",
			want: &wantRole,
		},
		{
			name:   "create role",
			call:   func(ctx context.Context, c *client.Client) (any, error) { return c.CreateCustomRole(ctx, &wantRole) },
			status: 200, reply: role,
			method: "POST", uri: root + "/customDBRoles/roles", wantBody: role,
			want: &wantRole,
		},
		{
			name: "update role",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.UpdateCustomRole(ctx, "spReader", &client.CustomRole{Actions: []client.RoleAction{{Action: "FIND", Resources: []client.RoleResource{{DB: "sales", Collection: "orders"}}}}})
			},
			status: 200, reply: role,
			method: "PATCH", uri: root + "/customDBRoles/roles/spReader",
			wantBody: `{"actions":[{"action":"FIND","resources":[{"db":"sales","collection":"orders"}]}]}`,
			want:     &wantRole,
		},
		{
			name: "delete role",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return nil, c.DeleteCustomRole(ctx, "spReader")
			},
			status: 204, method: "DELETE", uri: root + "/customDBRoles/roles/spReader",
		},
		{
			name: "list keys",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.ListAPIKeys(ctx, client.ListOptions{})
			},
			status: 200, reply: `{"results":[` + key + `],"totalCount":1}`,
			method: "GET", uri: root + "/apiKeys",
			want: &client.Page[client.APIKey]{Results: []client.APIKey{*wantKey}, TotalCount: 1},
		},
		{
			name:   "get key",
			call:   func(ctx context.Context, c *client.Client) (any, error) { return c.GetAPIKey(ctx, "k1") },
			status: 200, reply: key,
			method: "GET", uri: root + "/apiKeys/k1",
			want: wantKey,
		},
		{
			name: "create key: roles are names",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.CreateAPIKey(ctx, &client.APIKeyRequest{Desc: "CI", Roles: []string{"GROUP_READ_ONLY"}})
			},
			status: 200, reply: key,
			method: "POST", uri: root + "/apiKeys", wantBody: `{"desc":"CI","roles":["GROUP_READ_ONLY"]}`,
			want: wantKey,
		},
		{
			name: "update key",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.UpdateAPIKey(ctx, "k1", &client.APIKeyRequest{Desc: "CD"})
			},
			status: 200, reply: key,
			method: "PATCH", uri: root + "/apiKeys/k1", wantBody: `{"desc":"CD"}`,
			want: wantKey,
		},
		{
			name:   "delete key",
			call:   func(ctx context.Context, c *client.Client) (any, error) { return nil, c.DeleteAPIKey(ctx, "k1") },
			status: 204, method: "DELETE", uri: root + "/apiKeys/k1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, seen := fakeServer(t, tt.status, tt.reply)
			// A fresh client: its first request is challenged, so a body must survive the retry.
			got, err := tt.call(t.Context(), newClient(srv, privKey))
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			reqs := seen.all()
			if len(reqs) != 1 {
				t.Fatalf("server saw %d authenticated requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.method != tt.method || r.uri != tt.uri {
				t.Errorf("request %s %s, want %s %s", r.method, r.uri, tt.method, tt.uri)
			}
			if r.accept != client.MediaType {
				t.Errorf("Accept %q", r.accept)
			}
			if tt.wantBody == "" {
				if r.body != "" || r.contentType != "" {
					t.Errorf("unexpected body %q (Content-Type %q)", r.body, r.contentType)
				}
			} else {
				if r.contentType != "application/json" {
					t.Errorf("Content-Type %q", r.contentType)
				}
				if !jsonEqual(t, r.body, tt.wantBody) {
					t.Errorf("body\n got %s\nwant %s", r.body, tt.wantBody)
				}
			}
			if tt.want != nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("result\n got %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func jsonEqual(t *testing.T, a, b string) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal([]byte(a), &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal([]byte(b), &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name   string
		priv   string
		status int
		reply  string
		want   client.Error
		msg    string
	}{
		{
			name: "Atlas error", priv: privKey, status: 409,
			reply: `{"detail":"a workspace named default already exists","error":409,"errorCode":"DUPLICATE_NAME","parameters":["default"],"reason":"Conflict"}`,
			want:  client.Error{Status: 409, ErrorCode: "DUPLICATE_NAME", Detail: "a workspace named default already exists", Reason: "Conflict"},
			msg:   "409 DUPLICATE_NAME: a workspace named default already exists",
		},
		{
			name: "wrong private key", priv: "wrong", status: 200, reply: `{}`,
			want: client.Error{Status: 401, ErrorCode: "UNAUTHORIZED", Detail: "wrong API key", Reason: "Unauthorized"},
			msg:  "401 UNAUTHORIZED: wrong API key",
		},
		{
			name: "not from spid", priv: privKey, status: 502, reply: "upstream down\n",
			want: client.Error{Status: 502, Detail: "upstream down", Reason: "Bad Gateway"},
			msg:  "502 Bad Gateway: upstream down",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := fakeServer(t, tt.status, tt.reply)
			_, err := newClient(srv, tt.priv).GetWorkspace(t.Context(), "default", false)
			var e *client.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T), want *client.Error", err, err)
			}
			if *e != tt.want {
				t.Errorf("got %+v, want %+v", *e, tt.want)
			}
			if e.Error() != tt.msg {
				t.Errorf("Error() = %q, want %q", e.Error(), tt.msg)
			}
		})
	}
}

// Do sends raw JSON as it is and can keep the reply raw, which is what spictl needs.
func TestDoRaw(t *testing.T) {
	srv, seen := fakeServer(t, 200, `{"name":"x","unknownToTheClient":1}`)
	c := newClient(srv, privKey)
	var out json.RawMessage
	body := json.RawMessage(`{"name":"x","extra":true}`)
	for range 2 { // the second request reuses the nonce
		if err := c.Do(t.Context(), "POST", "/streams", body, &out); err != nil {
			t.Fatal(err)
		}
	}
	if reqs := seen.all(); len(reqs) != 2 || reqs[1].body != string(body) {
		t.Errorf("server saw %+v", reqs)
	}
	if string(out) != `{"name":"x","unknownToTheClient":1}` {
		t.Errorf("reply %s", out)
	}
	// A nil map is no body, not "null".
	if err := c.Do(t.Context(), "DELETE", "/streams/x", map[string]any(nil), nil); err != nil {
		t.Fatal(err)
	}
	if reqs := seen.all(); len(reqs) != 3 || reqs[2].body != "" || reqs[2].contentType != "" {
		t.Errorf("nil map sent as %+v", reqs[len(reqs)-1])
	}
}
