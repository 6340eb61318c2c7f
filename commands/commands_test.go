package commands

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.uber.org/goleak"

	"github.com/spi-streams/spi/auth"
	"github.com/spi-streams/spi/store"
	"github.com/spi-streams/spi/store/storetest"
	"github.com/spi-streams/spi/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestTableIsSortedAndComplete(t *testing.T) {
	names := Names()
	if !slices.IsSorted(names) {
		t.Errorf("command table is not sorted: %v", names)
	}
	if len(slices.Compact(slices.Clone(names))) != len(names) {
		t.Errorf("command table has duplicates: %v", names)
	}
	for _, c := range table {
		if c.Handler == nil {
			t.Errorf("%s has no handler", c.Name)
		}
	}
	for _, c := range []Code{CodeCommandNotFound, CodeUnauthorized, CodeAuthenticationFailed} {
		if c.Name() == "" || c.Name()[:8] == "Location" {
			t.Errorf("code %d has no name", c)
		}
	}
}

// testStore opens a store in a temporary directory holding the users given as
// name -> roles (password "password-" + name).
func testStore(t *testing.T, users map[string][]string) *store.Store {
	t.Helper()
	st := storetest.Open(t)
	err := st.Update(func(tx *store.Txn) error {
		for name, roles := range users {
			sha1, sha256, err := auth.DeriveCredentials(name, "password-"+name)
			if err != nil {
				return err
			}
			u := store.User{Database: "admin", Username: name, SCRAMSHA1: sha1, SCRAMSHA256: sha256}
			for _, r := range roles {
				u.Roles = append(u.Roles, store.RoleRef{RoleName: r, DatabaseName: "admin"})
			}
			if err := tx.PutUser(u); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// client starts spid's wire server with the command table in-process and connects the Go
// driver to it as an atlasAdmin user.
func client(t *testing.T) *mongo.Client {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	st := testStore(t, map[string][]string{"admin": {"atlasAdmin"}})
	srv := wire.NewServer(New(Options{Version: "test", Store: st}), nil)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	c, err := mongo.Connect(options.Client().ApplyURI("mongodb://admin:password-admin@" + l.Addr().String() + "/?directConnection=true"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Disconnect(context.Background())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, wire.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return c
}

func run(t *testing.T, c *mongo.Client, db string, cmd bson.D) (bson.Raw, error) {
	t.Helper()
	return c.Database(db).RunCommand(t.Context(), cmd).Raw()
}

func TestCommandReplies(t *testing.T) {
	c := client(t)
	cases := []struct {
		db   string
		cmd  bson.D
		want map[string]any // field -> expected value (compared after decoding to Go types)
	}{
		{"admin", bson.D{{Key: "ping", Value: 1}}, nil},
		{"test", bson.D{{Key: "hello", Value: 1}}, map[string]any{"isWritablePrimary": true, "helloOk": true, "maxWireVersion": int32(21), "minWireVersion": int32(0), "maxMessageSizeBytes": int32(48000000), "readOnly": false}},
		{"test", bson.D{{Key: "isMaster", Value: 1}}, map[string]any{"ismaster": true}},
		{"admin", bson.D{{Key: "ismaster", Value: 1}}, map[string]any{"ismaster": true}},
		{"admin", bson.D{{Key: "buildInfo", Value: 1}}, map[string]any{"version": "7.0.0", "spiVersion": "test"}},
		{"admin", bson.D{{Key: "getParameter", Value: 1}, {Key: "featureCompatibilityVersion", Value: 1}}, map[string]any{"featureCompatibilityVersion": bson.D{{Key: "version", Value: "7.0"}}}},
		{"admin", bson.D{{Key: "getParameter", Value: "*"}}, map[string]any{"featureCompatibilityVersion": bson.D{{Key: "version", Value: "7.0"}}}},
		{"admin", bson.D{{Key: "getLog", Value: "startupWarnings"}}, map[string]any{"log": bson.A{}, "totalLinesWritten": int32(0)}},
		{"admin", bson.D{{Key: "getLog", Value: "*"}}, map[string]any{"names": bson.A{"global", "startupWarnings"}}},
		{"admin", bson.D{{Key: "connectionStatus", Value: 1}}, map[string]any{"authInfo": bson.D{
			{Key: "authenticatedUsers", Value: bson.A{bson.D{{Key: "user", Value: "admin"}, {Key: "db", Value: "admin"}}}},
			{Key: "authenticatedUserRoles", Value: bson.A{bson.D{{Key: "role", Value: "atlasAdmin"}, {Key: "db", Value: "admin"}}}},
		}}},
		{"admin", bson.D{{Key: "connectionStatus", Value: 1}, {Key: "showPrivileges", Value: true}}, map[string]any{"authInfo": bson.D{
			{Key: "authenticatedUsers", Value: bson.A{bson.D{{Key: "user", Value: "admin"}, {Key: "db", Value: "admin"}}}},
			{Key: "authenticatedUserRoles", Value: bson.A{bson.D{{Key: "role", Value: "atlasAdmin"}, {Key: "db", Value: "admin"}}}},
			{Key: "authenticatedUserPrivileges", Value: bson.A{bson.D{
				{Key: "resource", Value: bson.D{{Key: "workspace", Value: "default"}}},
				{Key: "actions", Value: bson.A{"createStreamProcessor", "dropStreamProcessor", "getStreamProcessor", "listStreamConnections",
					"listStreamProcessors", "modifyStreamProcessor", "processStreamProcessor", "sampleStreamProcessor",
					"startStreamProcessor", "stopStreamProcessor", "streamProcessorStats"}},
			}}},
		}}},
		{"admin", bson.D{{Key: "listDatabases", Value: 1}}, map[string]any{"databases": bson.A{}, "totalSize": int64(0)}},
		{"test", bson.D{{Key: "listCollections", Value: 1}}, map[string]any{"cursor": bson.D{{Key: "id", Value: int64(0)}, {Key: "ns", Value: "test.$cmd.listCollections"}, {Key: "firstBatch", Value: bson.A{}}}}},
		{"admin", bson.D{{Key: "endSessions", Value: bson.A{}}}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.cmd[0].Key, func(t *testing.T) {
			raw, err := run(t, c, tc.db, tc.cmd)
			if err != nil {
				t.Fatal(err)
			}
			// ok is always the double 1.0: mongosh treats an Int64 ok as a failure.
			if ok := raw.Lookup("ok"); ok.Type != bson.TypeDouble || ok.Double() != 1 {
				t.Errorf("ok is %v", ok)
			}
			var got bson.D
			if err := bson.Unmarshal(raw, &got); err != nil {
				t.Fatal(err)
			}
			m := map[string]any{}
			for _, e := range got {
				m[e.Key] = e.Value
			}
			for k, want := range tc.want {
				if !equal(m[k], want) {
					t.Errorf("%s = %#v, want %#v", k, m[k], want)
				}
			}
			for _, absent := range []string{"topologyVersion", "logicalSessionTimeoutMinutes"} {
				if _, ok := m[absent]; ok {
					t.Errorf("reply has %s", absent)
				}
			}
		})
	}
}

func equal(a, b any) bool {
	ab, err1 := bson.Marshal(bson.D{{Key: "v", Value: a}})
	bb, err2 := bson.Marshal(bson.D{{Key: "v", Value: b}})
	return err1 == nil && err2 == nil && string(ab) == string(bb)
}

func TestCommandErrors(t *testing.T) {
	c := client(t)
	cases := []struct {
		cmd      bson.D
		code     int32
		codeName string
		msg      string
	}{
		{bson.D{{Key: "atlasVersion", Value: 1}}, 59, "CommandNotFound", "no such command: 'atlasVersion'"},
		{bson.D{{Key: "PING", Value: 1}}, 59, "CommandNotFound", "no such command: 'PING'"},
		{bson.D{{Key: "getParameter", Value: "foo"}}, 72, "InvalidOptions", "no option found to get"},
		{bson.D{{Key: "getParameter", Value: 1}, {Key: "noSuchParameter", Value: 1}}, 72, "InvalidOptions", "no option found to get"},
		{bson.D{{Key: "getLog", Value: 1}}, 14, "TypeMismatch", "Argument to getLog must be of type String; found int"},
		{bson.D{{Key: "getLog", Value: "nope"}}, 2, "BadValue", "No log named 'nope'"},
		{bson.D{{Key: "hello", Value: 1}, {Key: "compression", Value: "zstd"}}, 14, "TypeMismatch", "hello.compression must be an array of strings, not string"},
	}
	for _, tc := range cases {
		t.Run(tc.cmd[0].Key, func(t *testing.T) {
			_, err := run(t, c, "admin", tc.cmd)
			var ce mongo.CommandError
			if !errors.As(err, &ce) {
				t.Fatalf("want a command error, got %v", err)
			}
			if ce.Code != tc.code || ce.Name != tc.codeName || ce.Message != tc.msg {
				t.Errorf("got %d %s %q, want %d %s %q", ce.Code, ce.Name, ce.Message, tc.code, tc.codeName, tc.msg)
			}
		})
	}
}
