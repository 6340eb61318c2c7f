package mongodb

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/connectors"
	"github.com/spi-streams/spi/store"
)

// provisionedEnv is env with provisionExecuteAsUser: Username/Password are the administrator.
func provisionedEnv(role, typ string) connectors.Env {
	e := env(role, typ)
	e.Connection.ID = "conn-" + role
	e.Connection.Workspace = "ws"
	e.Connection.Cluster.ProvisionExecuteAsUser = true
	e.Connection.Cluster.Mechanism = "PLAIN"
	e.Connection.Cluster.ExecuteAs = &store.ExecuteAsUser{Username: ExecuteAsUserName("ws", "c"), Password: "exec-pw-123", Rotated: time.Unix(100, 0)}
	return e
}

// With provisionExecuteAsUser, processors connect as the execute-as user with SCRAM-SHA-256 on
// admin, never with the administrator in authentication; without it, with the connection's
// credentials as before.
func TestClientOptionsExecuteAsUser(t *testing.T) {
	s, err := NewSink(provisionedEnv("readWriteAnyDatabase", "BUILT_IN"), mergeStage(t))
	if err != nil {
		t.Fatal(err)
	}
	opts, err := s.(*Sink).clientOptions()
	if err != nil {
		t.Fatal(err)
	}
	a := opts.Auth
	if a == nil || a.Username != "spi-ws-c" || a.Password != "exec-pw-123" || a.AuthMechanism != "SCRAM-SHA-256" || a.AuthSource != "admin" {
		t.Fatalf("credential = %+v, want the execute-as user spi-ws-c, SCRAM-SHA-256 on admin", a)
	}
	plain := newSink(t)
	opts, _ = plain.clientOptions()
	if opts.Auth == nil || opts.Auth.Username != "spuser" {
		t.Fatalf("without provisioning the connection's user connects, got %+v", opts.Auth)
	}
	// Both passwords are scrubbed from messages.
	msg := s.(*Sink).scrub("x s3cr3t-pw y exec-pw-123 z")
	if strings.Contains(msg, "s3cr3t-pw") || strings.Contains(msg, "exec-pw-123") {
		t.Fatalf("scrub left a password: %s", msg)
	}
}

// A rotation made by this process wins over the registry copy a processor read before it was
// stored; a registry copy rotated later wins over it.
func TestEffectiveExecuteAsUser(t *testing.T) {
	e := provisionedEnv("readAnyDatabase", "BUILT_IN")
	e.Connection.ID = "effective-test"
	c := e.Connection
	mu.Lock()
	latest[c.ID] = store.ExecuteAsUser{Username: "spi-ws-c", Password: "newer", Rotated: time.Unix(200, 0)}
	mu.Unlock()
	t.Cleanup(func() { mu.Lock(); delete(latest, c.ID); mu.Unlock() })
	if got := effective(c).Password; got != "newer" {
		t.Fatalf("effective password = %s, want the newer rotation", got.Reveal())
	}
	c.Cluster.ExecuteAs.Rotated = time.Unix(300, 0)
	if got := effective(c).Password; got != "exec-pw-123" {
		t.Fatalf("effective password = %s, want the registry's later one", got.Reveal())
	}
}

func TestNewPassword(t *testing.T) {
	a, b := NewPassword(), NewPassword()
	if a == b || len(a.Reveal()) != 43 || strings.ContainsAny(a.Reveal(), "+/=,") {
		t.Fatalf("passwords %d and %d characters, equal %v", len(a.Reveal()), len(b.Reveal()), a == b)
	}
}

// A CUSTOM role is mirrored by its data actions in MongoDB spelling on the same resources,
// merged per resource, with the custom roles it inherits flattened into it and the built-in
// ones kept as roles; stream processing and Atlas-only actions are left out (MongoDB manual,
// "Privilege Actions", "Resource Document").
func TestMirrorRole(t *testing.T) {
	roles := map[string]store.Role{
		"app": {Name: "app", Actions: []store.RoleAction{
			{Action: "INSERT", Resources: []store.Resource{{DB: "sales", Collection: "orders"}}},
			{Action: "UPDATE", Resources: []store.Resource{{DB: "sales", Collection: "orders"}}},
			{Action: "CREATE_COLLECTION", Resources: []store.Resource{{DB: "sales"}}},
			{Action: "CREATE_STREAM_PROCESSOR", Resources: []store.Resource{{DB: "sales"}}},
			{Action: "OUT_TO_S3", Resources: []store.Resource{{}}},
			{Action: "LIST_DATABASES", Resources: []store.Resource{{Cluster: true}}},
		}, InheritedRoles: []store.InheritedRole{{Role: "base"}, {Role: "read", DB: "ref"}}},
		"base": {Name: "base", Actions: []store.RoleAction{
			{Action: "find", Resources: []store.Resource{{DB: "sales", Collection: "orders"}}},
			{Action: "CHANGE_STREAM", Resources: []store.Resource{{}}},
		}, InheritedRoles: []store.InheritedRole{{Role: "readAnyDatabase"}, {Role: "app"}}},
	}
	src := func(n string) (store.Role, bool) { r, ok := roles[n]; return r, ok }
	privs, inherited, ok := MirrorRole("app", src)
	if !ok {
		t.Fatal("app not found")
	}
	want := []Privilege{
		{Resource: bson.D{{Key: "db", Value: "sales"}, {Key: "collection", Value: "orders"}}, Actions: []string{"find", "insert", "update"}},
		{Resource: bson.D{{Key: "db", Value: "sales"}, {Key: "collection", Value: ""}}, Actions: []string{"createCollection"}},
		{Resource: bson.D{{Key: "cluster", Value: true}}, Actions: []string{"listDatabases"}},
		{Resource: bson.D{{Key: "db", Value: ""}, {Key: "collection", Value: ""}}, Actions: []string{"changeStream"}},
	}
	if !reflect.DeepEqual(privs, want) {
		t.Fatalf("privileges\n got %+v\nwant %+v", privs, want)
	}
	wantRoles := []roleRef{{Role: "readAnyDatabase", DB: "admin"}, {Role: "read", DB: "ref"}}
	if !reflect.DeepEqual(inherited, wantRoles) {
		t.Fatalf("inherited roles %v, want %v", inherited, wantRoles)
	}
	if _, _, ok := MirrorRole("nope", src); ok {
		t.Fatal("an unknown role was mirrored")
	}
}

// A deployment that cannot be reached fails provisioning with a retryable 421 naming its hosts
// and the user, never a password.
func TestProvisionUnreachable(t *testing.T) {
	e := provisionedEnv("readWriteAnyDatabase", "BUILT_IN")
	e.Connection.Cluster.ConnectionString = "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200&connectTimeoutMS=200"
	err := Provision(context.Background(), e.Connection, nil, nil)
	var ce *connectors.Error
	if !errors.As(err, &ce) || !ce.Retryable || ce.Code != connectors.CodeAtlasConnection {
		t.Fatalf("err = %#v, want a retryable 421", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "127.0.0.1:1") || !strings.Contains(msg, "spi-ws-c") || strings.Contains(msg, "s3cr3t-pw") || strings.Contains(msg, "exec-pw-123") {
		t.Fatalf("message %q must name the hosts and user and no password", msg)
	}
	e.Connection.Cluster.ProvisionExecuteAsUser = false
	if err := Provision(context.Background(), e.Connection, nil, nil); !errors.As(err, &ce) || ce.Code != connectors.CodeInvalidOptions {
		t.Fatalf("without provisionExecuteAsUser: %v, want 420", err)
	}
}
