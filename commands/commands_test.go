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
		{"test", bson.D{{Key: "hello", Value: 1}, {Key: "helloOk", Value: true}}, map[string]any{"isWritablePrimary": true, "helloOk": true, "maxWireVersion": int32(21), "minWireVersion": int32(0), "maxMessageSizeBytes": int32(48000000), "readOnly": false, "logicalSessionTimeoutMinutes": int32(30)}},
		{"test", bson.D{{Key: "isMaster", Value: 1}}, map[string]any{"ismaster": true, "helloOk": nil, "logicalSessionTimeoutMinutes": int32(30)}},
		{"admin", bson.D{{Key: "ismaster", Value: 1}, {Key: "helloOk", Value: false}}, map[string]any{"ismaster": true, "helloOk": nil}},
		{"admin", bson.D{{Key: "hostInfo", Value: 1}}, map[string]any{"extra": bson.D{}}},
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
				if v, ok := m[k]; want == nil && ok {
					t.Errorf("reply has %s = %v", k, v)
				} else if want != nil && !equal(m[k], want) {
					t.Errorf("%s = %#v, want %#v", k, m[k], want)
				}
			}
			for _, absent := range []string{"topologyVersion"} {
				if _, ok := m[absent]; ok {
					t.Errorf("reply has %s", absent)
				}
			}
		})
	}
}

// Commands that pass every generic check run with apiVersion, apiStrict and
// apiDeprecationErrors, as on mongod.
func TestStableAPIAccepted(t *testing.T) {
	c := client(t)
	for _, cmd := range []bson.D{
		{{Key: "ping", Value: 1}, {Key: "apiVersion", Value: "1"}, {Key: "apiStrict", Value: true}, {Key: "apiDeprecationErrors", Value: true}},
		{{Key: "ping", Value: 1}, {Key: "apiVersion", Value: "1"}, {Key: "apiStrict", Value: false}, {Key: "apiDeprecationErrors", Value: false}},
		{{Key: "buildInfo", Value: 1}, {Key: "apiVersion", Value: "1"}},
		{{Key: "hello", Value: 1}, {Key: "apiVersion", Value: "1"}, {Key: "apiStrict", Value: true}},
	} {
		if _, err := run(t, c, "admin", cmd); err != nil {
			t.Errorf("%v: %v", cmd, err)
		}
	}
}

// stripGeneric leaves the command's own fields, in order, and reads the generic ones.
func TestStripGeneric(t *testing.T) {
	uuid := bson.Binary{Subtype: bson.TypeBinaryUUID, Data: make([]byte, 16)}
	body, _ := bson.Marshal(bson.D{{Key: "listStreamConnections", Value: 1}, {Key: "lsid", Value: bson.D{{Key: "id", Value: uuid}}},
		{Key: "filter", Value: bson.D{}}, {Key: "$db", Value: "admin"}, {Key: "$clusterTime", Value: bson.D{}},
		{Key: "$readPreference", Value: bson.D{{Key: "mode", Value: "primaryPreferred"}}}, {Key: "apiVersion", Value: "1"},
		{Key: "maxTimeMS", Value: int32(500)}, {Key: "comment", Value: "why"}, {Key: "readConcern", Value: bson.D{}},
		{Key: "writeConcern", Value: bson.D{{Key: "w", Value: 0}}}, {Key: "verbose", Value: true}})
	var g Generic
	out, e := stripGeneric(nil, body, &g)
	if e != nil {
		t.Fatal(e)
	}
	want, _ := bson.Marshal(bson.D{{Key: "listStreamConnections", Value: 1}, {Key: "filter", Value: bson.D{}}, {Key: "verbose", Value: true}})
	if string(out) != string(want) {
		t.Errorf("stripped body %v, want %v", bson.Raw(out), bson.Raw(want))
	}
	if g.LSID == nil || g.APIVersion != "1" || g.MaxTimeMS != 500 || g.Comment.StringValue() != "why" {
		t.Errorf("generic = %+v", g)
	}
	for _, tc := range []struct {
		lsid any
		code Code
	}{
		{int32(1), CodeTypeMismatch},
		{bson.D{}, CodeIDLRequiredField},
		{bson.D{{Key: "id", Value: "not a uuid"}}, CodeBadValue},
		{bson.D{{Key: "id", Value: bson.Binary{Subtype: bson.TypeBinaryUUID, Data: []byte{1}}}}, CodeBadValue},
	} {
		body, _ := bson.Marshal(bson.D{{Key: "ping", Value: 1}, {Key: "lsid", Value: tc.lsid}})
		if _, e := stripGeneric(nil, body, &Generic{}); e == nil || e.Code != tc.code {
			t.Errorf("lsid %v: got %v, want code %d", tc.lsid, e, tc.code)
		}
	}
}

// The commands allowed before authentication are mongod's: those whose requiresAuth() is
// false (src/mongo/db/commands/*: hello/isMaster, saslStart, saslContinue, authenticate,
// logout, connectionStatus, ping). buildInfo needs authentication on mongod 7.0 and later
// (buildInfoAuthMode's default is requiresAuth), as do whatsmyuri, getLog, getParameter,
// hostInfo, endSessions, listDatabases, listCollections and every stream command.
func TestAnonymousCommandsAreMongods(t *testing.T) {
	mongodAnonymous := map[string]bool{"hello": true, "isMaster": true, "ismaster": true, "saslStart": true,
		"saslContinue": true, "authenticate": true, "logout": true, "connectionStatus": true, "ping": true}
	for _, c := range table {
		if c.Anonymous != mongodAnonymous[c.Name] {
			t.Errorf("%s: Anonymous = %v, mongod's requiresAuth() = %v", c.Name, c.Anonymous, !mongodAnonymous[c.Name])
		}
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
		db       string // default admin
	}{
		{bson.D{{Key: "atlasVersion", Value: 1}}, 59, "CommandNotFound", "no such command: 'atlasVersion'", ""},
		{bson.D{{Key: "PING", Value: 1}}, 59, "CommandNotFound", "no such command: 'PING'", ""},
		{bson.D{{Key: "getParameter", Value: "foo"}}, 72, "InvalidOptions", "no option found to get", ""},
		{bson.D{{Key: "getParameter", Value: 1}, {Key: "noSuchParameter", Value: 1}}, 72, "InvalidOptions", "no option found to get", ""},
		{bson.D{{Key: "getLog", Value: 1}}, 14, "TypeMismatch", "Argument to getLog must be of type String; found int", ""},
		{bson.D{{Key: "getLog", Value: "nope"}}, 2, "BadValue", "No log named 'nope'", ""},
		{bson.D{{Key: "hello", Value: 1}, {Key: "compression", Value: "zstd"}}, 14, "TypeMismatch", "hello.compression must be an array of strings, not string", ""},
		// Admin-only commands, as on mongod.
		{bson.D{{Key: "listDatabases", Value: 1}}, 13, "Unauthorized", "listDatabases may only be run against the admin database.", "test"},
		{bson.D{{Key: "getParameter", Value: "*"}}, 13, "Unauthorized", "getParameter may only be run against the admin database.", "test"},
		{bson.D{{Key: "getLog", Value: "*"}}, 13, "Unauthorized", "getLog may only be run against the admin database.", "test"},
		// Stable API parameters, validated as mongod validates them (jstests/core/api_params.js).
		{bson.D{{Key: "ping", Value: 1}, {Key: "apiStrict", Value: true}}, 4886600, "Location4886600", "Provided apiStrict and/or apiDeprecationErrors without passing apiVersion", ""},
		{bson.D{{Key: "ping", Value: 1}, {Key: "apiDeprecationErrors", Value: false}}, 4886600, "Location4886600", "Provided apiStrict and/or apiDeprecationErrors without passing apiVersion", ""},
		{bson.D{{Key: "ping", Value: 1}, {Key: "apiVersion", Value: 1.0}}, 14, "TypeMismatch", "BSON field 'apiVersion' is the wrong type 'double', expected type 'string'", ""},
		{bson.D{{Key: "ping", Value: 1}, {Key: "apiVersion", Value: "2"}}, 322, "APIVersionError", `API version must be "1"`, ""},
		{bson.D{{Key: "ping", Value: 1}, {Key: "apiVersion", Value: "1"}, {Key: "apiStrict", Value: "true"}}, 14, "TypeMismatch", "BSON field 'apiStrict' is the wrong type 'string', expected type 'bool'", ""},
		{bson.D{{Key: "ping", Value: 1}, {Key: "apiVersion", Value: "1"}, {Key: "apiDeprecationErrors", Value: "false"}}, 14, "TypeMismatch", "BSON field 'apiDeprecationErrors' is the wrong type 'string', expected type 'bool'", ""},
		{bson.D{{Key: "buildInfo", Value: 1}, {Key: "apiVersion", Value: "1"}, {Key: "apiStrict", Value: true}}, 323, "APIStrictError", "Provided apiStrict:true, but the command buildInfo is not in API Version 1. Information on supported commands and migrations in API Version 1 can be found at https://dochub.mongodb.org/core/manual-versioned-api.", ""},
		{bson.D{{Key: "isMaster", Value: 1}, {Key: "apiVersion", Value: "1"}, {Key: "apiStrict", Value: true}}, 323, "APIStrictError", "Provided apiStrict:true, but the command isMaster is not in API Version 1. Information on supported commands and migrations in API Version 1 can be found at https://dochub.mongodb.org/core/manual-versioned-api.", ""},
		// Other generic arguments.
		{bson.D{{Key: "ping", Value: 1}, {Key: "$readPreference", Value: "primary"}}, 14, "TypeMismatch", "BSON field '$readPreference' is the wrong type 'string', expected type 'object'", ""},
		{bson.D{{Key: "ping", Value: 1}, {Key: "maxTimeMS", Value: -1}}, 2, "BadValue", "maxTimeMS must be a non-negative integer number of milliseconds, not -1", ""},
		{bson.D{{Key: "ping", Value: 1}, {Key: "txnNumber", Value: int64(1)}}, 20, "IllegalOperation", "Transaction numbers are only allowed on a replica set member or mongos: spid, like a standalone mongod, does not support transactions (field 'txnNumber')", ""},
	}
	for _, tc := range cases {
		t.Run(tc.cmd[0].Key, func(t *testing.T) {
			db := tc.db
			if db == "" {
				db = "admin"
			}
			_, err := run(t, c, db, tc.cmd)
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
