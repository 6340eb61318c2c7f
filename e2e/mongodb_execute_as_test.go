package e2e

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// The execute-as table (issue 11, acceptance 3): for each built-in execute-as role (spec §6.3:
// atlasAdmin, readWriteAnyDatabase, readAnyDatabase) and custom roles (actions on a database,
// on one collection, inherited built-in roles, a custom role inheriting a custom role, and the
// developer's own role), a $merge into a target inside the role's privileges writes it; a static
// target outside is refused at create with 420 naming the role, the namespace and the missing
// action, and the collection on FerretDB keeps what it held; a dynamic target outside turns the
// document into a dead-letter record in the processor's dlq collection (read on FerretDB) whose
// errInfo.reason names the namespace, role and action, and nothing reaches that collection.
// Every processor is created and started by a developer whose custom role holds only
// stream-processing actions: a connection running as that role may write nowhere.
func TestMergeExecuteAsTable(t *testing.T) {
	t.Parallel()
	uri := startFerretDB(t)
	fc := connectFerret(t, uri)
	s := startSpid(t, "--checkpoint-interval", "300ms", "--processor-retry-timeout", "3s")
	a := newAPI(t, s.Creds(t))

	var devActions []any
	for _, act := range streamActions {
		devActions = append(devActions, map[string]any{"action": act})
	}
	res := func(db, coll string) []any { return []any{map[string]any{"db": db, "collection": coll}} }
	acts := func(r []any, names ...string) []any {
		var out []any
		for _, n := range names {
			out = append(out, map[string]any{"action": n, "resources": r})
		}
		return out
	}
	inherit := func(roles ...string) []any {
		var out []any
		for _, r := range roles {
			out = append(out, map[string]any{"role": r, "db": "admin"})
		}
		return out
	}
	for _, r := range []map[string]any{
		{"roleName": "developer", "actions": devActions},
		{"roleName": "appWriter", "actions": acts(res("app", ""), "FIND", "INSERT", "UPDATE")},
		{"roleName": "ordersOnly", "actions": acts(res("app", "orders"), "FIND", "INSERT", "UPDATE", "REMOVE")},
		{"roleName": "ordersNested", "inheritedRoles": inherit("ordersOnly")},
		{"roleName": "anyWriter", "inheritedRoles": inherit("readWriteAnyDatabase")},
		{"roleName": "anyReader", "inheritedRoles": inherit("readAnyDatabase")},
		{"roleName": "readerPlusLogs", "inheritedRoles": inherit("readAnyDatabase"), "actions": acts(res("app", "logs"), "INSERT", "UPDATE")},
	} {
		a.ok("POST", "/customDBRoles/roles", r)
	}
	a.ok("POST", "/databaseUsers", map[string]any{"databaseName": "admin", "username": "dev", "password": "dev-password-1",
		"roles": []any{map[string]any{"roleName": "developer", "databaseName": "admin"}}})
	a.ok("POST", "/streams/default/connections", map[string]any{"name": "dlqconn", "type": "Cluster", "clusterName": "ferret", "connectionString": uri,
		"dbRoleToExecute": map[string]any{"role": "readWriteAnyDatabase", "type": "BUILT_IN"}})
	dev := connectGo(t, userURI(s.Addr, "dev", "dev-password-1", ""))

	type ns struct{ db, coll string }
	for _, tc := range []struct {
		role, typ string
		inside    *ns // nil: the role may write nowhere
		outside   ns
		action    string // the missing action the refusal names
	}{
		{"atlasAdmin", "BUILT_IN", &ns{"app", "t_atlasadmin"}, ns{"local", "out"}, "INSERT"},
		{"readWriteAnyDatabase", "BUILT_IN", &ns{"app", "t_rwany"}, ns{"config", "out"}, "INSERT"},
		{"readAnyDatabase", "BUILT_IN", nil, ns{"app", "t"}, "INSERT"},
		{"appWriter", "CUSTOM", &ns{"app", "t_appwriter"}, ns{"other", "t"}, "INSERT"},
		{"ordersOnly", "CUSTOM", &ns{"app", "orders"}, ns{"app", "t"}, "INSERT"},
		{"ordersNested", "CUSTOM", &ns{"app", "orders"}, ns{"app", "orders2"}, "INSERT"},
		{"anyWriter", "CUSTOM", &ns{"app", "t_anywriter"}, ns{"local", "out"}, "INSERT"},
		{"anyReader", "CUSTOM", nil, ns{"app", "t"}, "INSERT"},
		{"readerPlusLogs", "CUSTOM", &ns{"app", "logs"}, ns{"app", "t"}, "INSERT"},
		{"developer", "CUSTOM", nil, ns{"app", "t"}, "INSERT"},
	} {
		conn := "as-" + tc.role
		a.ok("POST", "/streams/default/connections", map[string]any{"name": conn, "type": "Cluster", "clusterName": "ferret", "connectionString": uri,
			"dbRoleToExecute": map[string]any{"role": tc.role, "type": tc.typ}})
		// Every target is a collection of its own per role, seeded with one document.
		suffix := "_" + strings.ToLower(tc.role)
		seedOut := ns{tc.outside.db, tc.outside.coll + suffix}
		seeded := []string{`{"_id":0,"seed":true}`}
		if _, err := fc.Database(seedOut.db).Collection(seedOut.coll).InsertOne(t.Context(), bson.D{{Key: "_id", Value: 0}, {Key: "seed", Value: true}}); err != nil {
			seeded = nil // FerretDB refuses writes to this database itself: it stays empty
		}
		untouched := func(what string) {
			t.Helper()
			if got := collection(t, fc, seedOut.db, seedOut.coll); !reflect.DeepEqual(got, seeded) {
				t.Errorf("%s %s: %s.%s is %v, want %v", tc.role, what, seedOut.db, seedOut.coll, got, seeded)
			}
		}
		input := bson.A{bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: "x"}}, bson.D{{Key: "_id", Value: 2}, {Key: "v", Value: "y"}}}
		merge := func(db, coll any) bson.D {
			return bson.D{{Key: "$merge", Value: bson.D{{Key: "into", Value: bson.D{{Key: "connectionName", Value: conn}, {Key: "db", Value: db}, {Key: "coll", Value: coll}}}}}}
		}
		src := bson.D{{Key: "$source", Value: bson.D{{Key: "documents", Value: input}}}}

		// Inside: written (ordersOnly and ordersNested write the same documents to app.orders).
		hasDoc := func(what string, n *ns, id int, field string) {
			t.Helper()
			var d bson.Raw
			if err := fc.Database(n.db).Collection(n.coll).FindOne(t.Context(), bson.D{{Key: "_id", Value: id}}).Decode(&d); err != nil {
				t.Errorf("%s %s: %s.%s has no document %d: %v", tc.role, what, n.db, n.coll, id, err)
			} else if _, err := d.LookupErr(field); err != nil {
				t.Errorf("%s %s: %s.%s document %d is %s, without %s", tc.role, what, n.db, n.coll, id, d, field)
			}
		}
		if tc.inside != nil {
			name := "in" + suffix
			mustAdmin(t, dev, bson.D{{Key: "createStreamProcessor", Value: name}, {Key: "pipeline", Value: bson.A{src, merge(tc.inside.db, tc.inside.coll)}}})
			mustAdmin(t, dev, bson.D{{Key: "startStreamProcessor", Value: name}})
			waitOutputs(t, dev, name, 2, 0)
			hasDoc("inside", tc.inside, 1, "v")
			hasDoc("inside", tc.inside, 2, "v")
		}

		// A static target outside: refused at create, before any write.
		want := fmt.Sprintf("execute-as role %s may not insert into %s.%s: it lacks the %s action there", tc.role, seedOut.db, seedOut.coll, tc.action)
		_, err := runAdmin(t, dev, bson.D{{Key: "createStreamProcessor", Value: "out" + suffix}, {Key: "pipeline", Value: bson.A{src, merge(seedOut.db, seedOut.coll)}}})
		var ce mongo.CommandError
		if !errors.As(err, &ce) || ce.Code != 420 || !strings.Contains(ce.Message, want) {
			t.Errorf("%s static outside: %v, want 420 with %q", tc.role, err, want)
		}
		untouched("static outside")

		// A dynamic target: each document names its own; the one outside is a dead letter.
		var dyn bson.A
		if tc.inside != nil {
			dyn = append(dyn, bson.D{{Key: "_id", Value: 1}, {Key: "db", Value: tc.inside.db}, {Key: "coll", Value: tc.inside.coll}})
		}
		dyn = append(dyn, bson.D{{Key: "_id", Value: 2}, {Key: "db", Value: seedOut.db}, {Key: "coll", Value: seedOut.coll}})
		name := "dyn" + suffix
		mustAdmin(t, dev, bson.D{{Key: "createStreamProcessor", Value: name}, {Key: "pipeline", Value: bson.A{
			bson.D{{Key: "$source", Value: bson.D{{Key: "documents", Value: dyn}}}}, merge("$db", "$coll")}},
			{Key: "options", Value: bson.D{{Key: "dlq", Value: bson.D{{Key: "connectionName", Value: "dlqconn"}, {Key: "db", Value: "dlq"}, {Key: "coll", Value: "records"}}}}}})
		mustAdmin(t, dev, bson.D{{Key: "startStreamProcessor", Value: name}})
		waitOutputs(t, dev, name, int64(len(dyn)-1), 1)
		if tc.inside != nil {
			hasDoc("dynamic inside", tc.inside, 1, "coll")
		}
		untouched("dynamic outside")
		var rec bson.Raw
		if err := fc.Database("dlq").Collection("records").FindOne(t.Context(), bson.D{{Key: "processorName", Value: name}}).Decode(&rec); err != nil {
			t.Fatalf("%s: no dead-letter record: %v", tc.role, err)
		}
		reason, _ := rec.Lookup("errInfo", "reason").StringValueOK()
		if !strings.Contains(reason, want) || rec.Lookup("operatorName").StringValue() != "$merge" || rec.Lookup("doc", "_id").AsInt64() != 2 {
			t.Errorf("%s dynamic outside: record %s, want operatorName $merge, doc 2 and a reason with %q", tc.role, rec, want)
		}
	}
}
