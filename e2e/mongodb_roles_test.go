package e2e

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// A Cluster connection whose execute-as role is one of the project's custom roles (spec sections
// 6.3 and 7; issue 11 item 3): the roles are created through the Admin API, and $merge into
// embedded FerretDB is allowed where the role grants INSERT and UPDATE (db1.*), refused at
// create with 420 elsewhere and under a role granting only FIND, with the target untouched. The
// role is read again at start: a role narrowed after create fails the start with 420.
func TestExecuteAsCustomRole(t *testing.T) {
	t.Parallel()
	uri := startFerretDB(t)
	fc := connectFerret(t, uri)
	s := startSpid(t, "--checkpoint-interval", "300ms", "--processor-retry-timeout", "3s")
	a := newAPI(t, s.Creds(t))
	db1 := []any{map[string]any{"db": "db1", "collection": ""}}
	writer := []any{map[string]any{"action": "INSERT", "resources": db1}, map[string]any{"action": "UPDATE", "resources": db1}}
	reader := []any{map[string]any{"action": "FIND", "resources": db1}}
	a.ok("POST", "/customDBRoles/roles", map[string]any{"roleName": "spWriter", "actions": writer})
	a.ok("POST", "/customDBRoles/roles", map[string]any{"roleName": "spReader", "actions": reader})
	a.ok("POST", "/customDBRoles/roles", map[string]any{"roleName": "spNarrowed", "actions": writer})
	for conn, role := range map[string]string{"writer": "spWriter", "reader": "spReader", "narrowed": "spNarrowed"} {
		a.ok("POST", "/streams/default/connections", map[string]any{"name": conn, "type": "Cluster", "clusterName": "ferret", "connectionString": uri,
			"dbRoleToExecute": map[string]any{"role": role, "type": "CUSTOM"}})
	}
	c := connectGo(t, s.Admin(t, "", ""))

	input := bson.A{bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: "x"}}, bson.D{{Key: "_id", Value: 2}, {Key: "a", Value: "y"}}}
	pipe := func(conn, db, coll string) bson.A {
		return bson.A{
			bson.D{{Key: "$source", Value: bson.D{{Key: "documents", Value: input}}}},
			bson.D{{Key: "$merge", Value: bson.D{{Key: "into", Value: bson.D{{Key: "connectionName", Value: conn}, {Key: "db", Value: db}, {Key: "coll", Value: coll}}}}}},
		}
	}

	// Allowed: spWriter grants INSERT and UPDATE on db1.*.
	mustAdmin(t, c, bson.D{{Key: "createStreamProcessor", Value: "allowed"}, {Key: "pipeline", Value: pipe("writer", "db1", "out")}})
	mustAdmin(t, c, bson.D{{Key: "startStreamProcessor", Value: "allowed"}})
	waitOutputs(t, c, "allowed", int64(len(input)), 0)
	if got, want := collection(t, fc, "db1", "out"), []string{`{"_id":1,"a":"x"}`, `{"_id":2,"a":"y"}`}; !reflect.DeepEqual(got, want) {
		t.Errorf("db1.out: %v, want %v", got, want)
	}
	mustAdmin(t, c, bson.D{{Key: "stopStreamProcessor", Value: "allowed"}})

	// Refused at create: a target outside the role, and a role that grants only FIND. The target
	// keeps what it held.
	if _, err := fc.Database("db2").Collection("out").InsertOne(t.Context(), bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: "before"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := fc.Database("db1").Collection("ro").InsertOne(t.Context(), bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: "before"}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, conn, db, coll, want string }{
		{"outside", "writer", "db2", "out", "execute-as role spWriter may not insert into db2.out: it lacks the INSERT action there; give custom role spWriter the INSERT action"},
		{"readonly", "reader", "db1", "ro", "execute-as role spReader may not insert into db1.ro: it lacks the INSERT action there"},
	} {
		_, err := runAdmin(t, c, bson.D{{Key: "createStreamProcessor", Value: tc.name}, {Key: "pipeline", Value: pipe(tc.conn, tc.db, tc.coll)}})
		var ce mongo.CommandError
		if !errors.As(err, &ce) || ce.Code != 420 || !strings.Contains(ce.Message, tc.want) {
			t.Errorf("%s: %v, want 420 with %q", tc.name, err, tc.want)
		}
		if got, want := collection(t, fc, tc.db, tc.coll), []string{`{"_id":1,"a":"before"}`}; !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %s.%s is %v, want %v", tc.name, tc.db, tc.coll, got, want)
		}
	}

	// The role is read at start as the registry has it then: narrowed to FIND after create, it
	// no longer lets the processor start, and nothing is written.
	mustAdmin(t, c, bson.D{{Key: "createStreamProcessor", Value: "narrowed"}, {Key: "pipeline", Value: pipe("narrowed", "db1", "narrowed")}})
	a.ok("PATCH", "/customDBRoles/roles/spNarrowed", map[string]any{"actions": reader})
	const want = "execute-as role spNarrowed may not insert into db1.narrowed"
	if _, err := runAdmin(t, c, bson.D{{Key: "startStreamProcessor", Value: "narrowed"}}); err != nil {
		var ce mongo.CommandError
		if !errors.As(err, &ce) || ce.Code != 420 || !strings.Contains(ce.Message, want) {
			t.Errorf("start narrowed: %v, want 420 with %q", err, want)
		}
	} else {
		waitUntil(t, "the narrowed processor to fail", func() bool {
			state, code, msg := processorState(t, c, "narrowed")
			if state == "FAILED" {
				if code != 420 || !strings.Contains(msg, want) {
					t.Errorf("narrowed: %s %d %q, want 420 with %q", state, code, msg, want)
				}
				return true
			}
			return false
		})
	}
	if got := collection(t, fc, "db1", "narrowed"); len(got) != 0 {
		t.Errorf("db1.narrowed: %v, want empty", got)
	}
}
