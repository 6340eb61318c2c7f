package authz

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/spi-streams/spi/store"
)

var (
	all   = []DBAction{Find, ChangeStream, Insert, Update, Remove, CreateCollection}
	read  = []DBAction{Find}
	ins   = []DBAction{Insert}
	upd   = []DBAction{Update}
	rem   = []DBAction{Remove}
	mkcol = []DBAction{CreateCollection}
)

func ns(db, coll string) Namespace { return Namespace{DB: db, Coll: coll} }

// missing runs ExecuteAsAllows and returns the action it denies, "" when it allows; any other
// outcome fails the test.
func missing(t *testing.T, r store.RoleToExecute, roles RoleSource, n Namespace, acts []DBAction) DBAction {
	t.Helper()
	err := ExecuteAsAllows(r, roles, n, acts...)
	if err == nil {
		return ""
	}
	var d *ExecuteAsDenied
	if !errors.As(err, &d) || d.Action == "" {
		t.Fatalf("ExecuteAsAllows(%v, %v, %v) = %v, want nil or a denied action", r, n, acts, err)
	}
	if d.NS != n || d.Role != r {
		t.Fatalf("denial names %v %v, want %v %v", d.Role, d.NS, r, n)
	}
	return d.Action
}

func noCustomRoles(string) (store.Role, bool) { return store.Role{}, false }

func TestExecuteAsBuiltinRoles(t *testing.T) {
	builtin := func(name string) store.RoleToExecute { return store.RoleToExecute{Role: name, Type: "BUILT_IN"} }
	cases := []struct {
		role string
		ns   Namespace
		acts []DBAction
		want DBAction // "" = allowed
	}{
		// readAnyDatabase: read and watch every non-system collection outside local and config.
		{"readAnyDatabase", ns("db1", "coll1"), LookupActions, ""},
		{"readAnyDatabase", ns("db1", "coll1"), ChangeStreamActions, ""},
		{"readAnyDatabase", ns("db1", ""), ChangeStreamActions, ""},
		{"readAnyDatabase", ns("", ""), ChangeStreamActions, ""},
		{"readAnyDatabase", ns("admin", "coll1"), read, ""},
		{"readAnyDatabase", ns("db1", "system.js"), read, ""},
		{"readAnyDatabase", ns("db1", "coll1"), ins, Insert},
		{"readAnyDatabase", ns("db1", "coll1"), upd, Update},
		{"readAnyDatabase", ns("db1", "coll1"), rem, Remove},
		{"readAnyDatabase", ns("db1", "coll1"), mkcol, CreateCollection},
		{"readAnyDatabase", ns("db1", "coll1"), MergeActions("merge", "insert"), Insert},
		{"readAnyDatabase", ns("db1", "coll1"), DeadLetterActions, Insert},
		{"readAnyDatabase", ns("local", "oplog.rs"), read, Find},
		{"readAnyDatabase", ns("config", "chunks"), read, Find},
		{"readAnyDatabase", ns("local", ""), ChangeStreamActions, ChangeStream},
		{"readAnyDatabase", ns("db1", "system.users"), read, Find},
		{"readAnyDatabase", ns("db1", "system.profile"), read, Find},

		// readWriteAnyDatabase: the same namespaces, every processor action.
		{"readWriteAnyDatabase", ns("db1", "coll1"), all, ""},
		{"readWriteAnyDatabase", ns("admin", "coll1"), all, ""},
		{"readWriteAnyDatabase", ns("db1", "coll1"), MergeActions("delete", "insert"), ""},
		{"readWriteAnyDatabase", ns("", ""), ChangeStreamActions, ""},
		{"readWriteAnyDatabase", ns("db1", "system.js"), ins, ""},
		{"readWriteAnyDatabase", ns("db1", "system.views"), ins, Insert},
		{"readWriteAnyDatabase", ns("db1", "system.profile"), read, Find},
		{"readWriteAnyDatabase", ns("local", "coll1"), ins, Insert},
		{"readWriteAnyDatabase", ns("local", "coll1"), read, Find},
		{"readWriteAnyDatabase", ns("config", "coll1"), DeadLetterActions, Insert},
		{"readWriteAnyDatabase", ns("config", ""), ChangeStreamActions, ChangeStream},

		// atlasAdmin: readWriteAnyDatabase and dbAdminAnyDatabase, read on local and config,
		// insert and update on config.settings; no other write to local or config.
		{"atlasAdmin", ns("db1", "coll1"), all, ""},
		{"atlasAdmin", ns("", ""), ChangeStreamActions, ""},
		{"atlasAdmin", ns("db1", "system.profile"), read, ""},
		{"atlasAdmin", ns("local", "oplog.rs"), ChangeStreamActions, ""},
		{"atlasAdmin", ns("local", ""), ChangeStreamActions, ""},
		{"atlasAdmin", ns("config", "chunks"), read, ""},
		{"atlasAdmin", ns("config", "settings"), MergeActions("replace", "insert"), ""},
		{"atlasAdmin", ns("config", "settings"), rem, Remove},
		{"atlasAdmin", ns("local", "coll1"), ins, Insert},
		{"atlasAdmin", ns("config", "coll1"), mkcol, CreateCollection},
		{"atlasAdmin", ns("db1", "system.views"), ins, Insert},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/%s/%v", c.role, c.ns, c.acts), func(t *testing.T) {
			if got := missing(t, builtin(c.role), noCustomRoles, c.ns, c.acts); got != c.want {
				t.Errorf("missing action = %q, want %q", got, c.want)
			}
		})
	}
}

func TestExecuteAsCustomRoles(t *testing.T) {
	res := func(db, coll string) []store.Resource { return []store.Resource{{DB: db, Collection: coll}} }
	act := func(action string, r []store.Resource) store.RoleAction {
		return store.RoleAction{Action: action, Resources: r}
	}
	inh := func(db, role string) store.InheritedRole { return store.InheritedRole{DB: db, Role: role} }
	roles := map[string]store.Role{
		// Collection-scoped, Atlas spelling.
		"ordersWriter": {Actions: []store.RoleAction{act("FIND", res("sales", "orders")), act("INSERT", res("sales", "orders")), act("UPDATE", res("sales", "orders"))}},
		// Database-scoped.
		"salesWatcher": {Actions: []store.RoleAction{act("FIND", res("sales", "")), act("CHANGE_STREAM", res("sales", ""))}},
		// Every collection named orders, in every database; MongoDB spelling.
		"anyOrders": {Actions: []store.RoleAction{act("insert", res("", "orders"))}},
		// Every non-system collection of every database.
		"everywhere": {Actions: []store.RoleAction{act("FIND", res("", "")), act("INSERT", res("", ""))}},
		// A cluster resource and stream processing actions grant no data access.
		"clusterOnly": {Actions: []store.RoleAction{act("FIND", []store.Resource{{Cluster: true}}), act("START_STREAM_PROCESSOR", []store.Resource{{Cluster: true}}), act("LIST_COLLECTIONS", res("sales", ""))}},
		// Several resources for one action.
		"twoColls": {Actions: []store.RoleAction{act("REMOVE", []store.Resource{{DB: "a", Collection: "x"}, {DB: "b", Collection: "y"}})}},
		// Built-in database roles inherited on a database.
		"salesRead":      {InheritedRoles: []store.InheritedRole{inh("sales", "read")}},
		"salesReadWrite": {InheritedRoles: []store.InheritedRole{inh("sales", "readWrite")}, Actions: []store.RoleAction{act("INSERT", res("audit", "log"))}},
		"salesDbAdmin":   {InheritedRoles: []store.InheritedRole{inh("sales", "dbAdmin")}},
		"salesOwner":     {InheritedRoles: []store.InheritedRole{inh("sales", "dbOwner")}},
		"salesUsers":     {InheritedRoles: []store.InheritedRole{inh("sales", "userAdmin")}},
		"adminRead":      {InheritedRoles: []store.InheritedRole{inh("admin", "read")}},
		// Built-in any-database roles, which exist on admin only.
		"anyReader":   {InheritedRoles: []store.InheritedRole{inh("admin", "readAnyDatabase")}},
		"anyReaderDB": {InheritedRoles: []store.InheritedRole{inh("sales", "readAnyDatabase")}},
		"likeAdmin":   {InheritedRoles: []store.InheritedRole{inh("admin", "atlasAdmin")}},
		// Custom roles inheriting custom roles, a cycle, and a role that no longer exists.
		"ordersAndHR": {InheritedRoles: []store.InheritedRole{inh("admin", "ordersWriter")}, Actions: []store.RoleAction{act("FIND", res("hr", ""))}},
		"loopA":       {InheritedRoles: []store.InheritedRole{inh("admin", "loopB")}, Actions: []store.RoleAction{act("INSERT", res("a", "x"))}},
		"loopB":       {InheritedRoles: []store.InheritedRole{inh("admin", "loopA")}, Actions: []store.RoleAction{act("FIND", res("b", "y"))}},
		"orphan":      {InheritedRoles: []store.InheritedRole{inh("admin", "ghost")}, Actions: []store.RoleAction{act("FIND", res("a", "x"))}},
	}
	src := func(n string) (store.Role, bool) { r, ok := roles[n]; r.Name = n; return r, ok }
	cases := []struct {
		role string
		ns   Namespace
		acts []DBAction
		want DBAction
	}{
		{"ordersWriter", ns("sales", "orders"), MergeActions("merge", "insert"), ""},
		{"ordersWriter", ns("sales", "orders"), LookupActions, ""},
		{"ordersWriter", ns("sales", "orders"), MergeActions("delete", "discard"), Remove},
		{"ordersWriter", ns("sales", "orders"), ChangeStreamActions, ChangeStream},
		{"ordersWriter", ns("sales", "returns"), ins, Insert},
		{"ordersWriter", ns("eu", "orders"), ins, Insert},
		{"ordersWriter", ns("sales", ""), read, Find},

		{"salesWatcher", ns("sales", "orders"), ChangeStreamActions, ""},
		{"salesWatcher", ns("sales", ""), ChangeStreamActions, ""},
		{"salesWatcher", ns("sales", "system.js"), read, Find},
		{"salesWatcher", ns("eu", "orders"), read, Find},
		{"salesWatcher", ns("", ""), ChangeStreamActions, ChangeStream},
		{"salesWatcher", ns("sales", "orders"), ins, Insert},

		{"anyOrders", ns("sales", "orders"), ins, ""},
		{"anyOrders", ns("eu", "orders"), ins, ""},
		{"anyOrders", ns("local", "orders"), ins, ""},
		{"anyOrders", ns("sales", "returns"), ins, Insert},
		{"anyOrders", ns("sales", ""), ins, Insert},

		{"everywhere", ns("sales", "orders"), DeadLetterActions, ""},
		{"everywhere", ns("admin", "orders"), ins, ""},
		{"everywhere", ns("sales", ""), read, ""},
		{"everywhere", ns("", ""), read, ""},
		{"everywhere", ns("local", "orders"), ins, Insert},
		{"everywhere", ns("config", "orders"), read, Find},
		{"everywhere", ns("local", ""), read, Find},
		{"everywhere", ns("sales", "system.views"), ins, Insert},
		{"everywhere", ns("sales", "orders"), upd, Update},

		{"clusterOnly", ns("sales", "orders"), read, Find},
		{"clusterOnly", ns("", ""), read, Find},

		{"twoColls", ns("a", "x"), rem, ""},
		{"twoColls", ns("b", "y"), rem, ""},
		{"twoColls", ns("a", "y"), rem, Remove},

		{"salesRead", ns("sales", "orders"), ChangeStreamActions, ""},
		{"salesRead", ns("sales", ""), ChangeStreamActions, ""},
		{"salesRead", ns("sales", "system.js"), read, ""},
		{"salesRead", ns("sales", "system.users"), read, Find},
		{"salesRead", ns("sales", "orders"), ins, Insert},
		{"salesRead", ns("eu", "orders"), read, Find},

		{"salesReadWrite", ns("sales", "orders"), all, ""},
		{"salesReadWrite", ns("audit", "log"), DeadLetterActions, ""},
		{"salesReadWrite", ns("audit", "log"), read, Find},
		{"salesReadWrite", ns("eu", "orders"), ins, Insert},

		{"salesDbAdmin", ns("sales", "orders"), mkcol, ""},
		{"salesDbAdmin", ns("sales", "orders"), read, Find},
		{"salesDbAdmin", ns("sales", "system.profile"), read, ""},

		{"salesOwner", ns("sales", "orders"), all, ""},
		{"salesOwner", ns("sales", "system.profile"), read, ""},
		{"salesOwner", ns("eu", "orders"), read, Find},

		{"salesUsers", ns("sales", "orders"), read, Find},

		{"adminRead", ns("admin", "orders"), read, ""},
		{"adminRead", ns("sales", "orders"), read, Find},

		{"anyReader", ns("sales", "orders"), ChangeStreamActions, ""},
		{"anyReader", ns("sales", "orders"), ins, Insert},
		{"anyReader", ns("local", "oplog.rs"), read, Find},
		{"anyReaderDB", ns("sales", "orders"), read, Find},

		{"likeAdmin", ns("local", "oplog.rs"), read, ""},
		{"likeAdmin", ns("sales", "orders"), all, ""},

		{"ordersAndHR", ns("sales", "orders"), ins, ""},
		{"ordersAndHR", ns("hr", "staff"), read, ""},
		{"ordersAndHR", ns("hr", "staff"), ins, Insert},

		{"loopA", ns("a", "x"), ins, ""},
		{"loopA", ns("b", "y"), read, ""},
		{"loopA", ns("a", "x"), rem, Remove},
		{"loopB", ns("a", "x"), ins, ""},

		{"orphan", ns("a", "x"), read, ""},
		{"orphan", ns("a", "x"), ins, Insert},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/%s/%v", c.role, c.ns, c.acts), func(t *testing.T) {
			r := store.RoleToExecute{Role: c.role, Type: "CUSTOM"}
			if got := missing(t, r, src, c.ns, c.acts); got != c.want {
				t.Errorf("missing action = %q, want %q", got, c.want)
			}
		})
	}
}

func TestMergeActions(t *testing.T) {
	cases := []struct {
		matched, notMatched string
		want                []DBAction
	}{
		{"replace", "insert", []DBAction{Insert, Update}},
		{"replace", "discard", []DBAction{Update}},
		{"replace", "fail", []DBAction{Update}},
		{"merge", "insert", []DBAction{Insert, Update}},
		{"merge", "discard", []DBAction{Update}},
		{"merge", "fail", []DBAction{Update}},
		{"keepExisting", "insert", []DBAction{Insert, Update}},
		{"keepExisting", "discard", []DBAction{Update}},
		{"pipeline", "insert", []DBAction{Insert, Update}},
		{"pipeline", "discard", []DBAction{Update}},
		{"pipeline", "fail", []DBAction{Update}},
		{"fail", "insert", []DBAction{Insert}},
		{"fail", "discard", nil},
		{"delete", "insert", []DBAction{Insert, Remove}},
		{"delete", "discard", []DBAction{Remove}},
		{"delete", "fail", []DBAction{Remove}},
		// Expressions: every action the modes they may evaluate to need.
		{"", "insert", []DBAction{Insert, Update, Remove}},
		{"replace", "", []DBAction{Insert, Update}},
		{"", "", []DBAction{Insert, Update, Remove}},
	}
	for _, c := range cases {
		if got := MergeActions(c.matched, c.notMatched); !slices.Equal(got, c.want) {
			t.Errorf("MergeActions(%q, %q) = %v, want %v", c.matched, c.notMatched, got, c.want)
		}
	}
}

// TestExecuteAsMergeModes runs every $merge mode against roles that grant part of what it needs.
func TestExecuteAsMergeModes(t *testing.T) {
	roles := map[string]store.Role{
		"upserter": {Actions: []store.RoleAction{
			{Action: "INSERT", Resources: []store.Resource{{DB: "db1", Collection: "coll1"}}},
			{Action: "UPDATE", Resources: []store.Resource{{DB: "db1", Collection: "coll1"}}},
		}},
		"appender": {Actions: []store.RoleAction{{Action: "INSERT", Resources: []store.Resource{{DB: "db1", Collection: "coll1"}}}}},
	}
	src := func(n string) (store.Role, bool) { r, ok := roles[n]; return r, ok }
	target := ns("db1", "coll1")
	cases := []struct {
		matched, notMatched string
		upserter, appender  DBAction // missing action for each custom role
		readAny             DBAction
	}{
		{"replace", "insert", "", Update, Insert},
		{"replace", "discard", "", Update, Update},
		{"replace", "fail", "", Update, Update},
		{"merge", "insert", "", Update, Insert},
		{"merge", "discard", "", Update, Update},
		{"merge", "fail", "", Update, Update},
		{"keepExisting", "insert", "", Update, Insert},
		{"pipeline", "insert", "", Update, Insert},
		{"pipeline", "discard", "", Update, Update},
		{"fail", "insert", "", "", Insert},
		{"delete", "insert", Remove, Remove, Insert},
		{"delete", "discard", Remove, Remove, Remove},
		{"", "", Remove, Update, Insert},
	}
	for _, c := range cases {
		acts := MergeActions(c.matched, c.notMatched)
		for _, r := range []struct {
			role store.RoleToExecute
			want DBAction
		}{
			{store.RoleToExecute{Role: "upserter", Type: "CUSTOM"}, c.upserter},
			{store.RoleToExecute{Role: "appender", Type: "CUSTOM"}, c.appender},
			{store.RoleToExecute{Role: "readAnyDatabase", Type: "BUILT_IN"}, c.readAny},
			{store.RoleToExecute{Role: "readWriteAnyDatabase", Type: "BUILT_IN"}, ""},
			{store.RoleToExecute{Role: "atlasAdmin", Type: "BUILT_IN"}, ""},
		} {
			if got := missing(t, r.role, src, target, acts); got != r.want {
				t.Errorf("$merge whenMatched %q whenNotMatched %q as %s: missing %q, want %q", c.matched, c.notMatched, r.role.Role, got, r.want)
			}
		}
	}
}

func TestExecuteAsDeniedMessages(t *testing.T) {
	roles := map[string]store.Role{"reader": {Actions: []store.RoleAction{{Action: "FIND", Resources: []store.Resource{{DB: "db1", Collection: ""}}}}}}
	src := func(n string) (store.Role, bool) { r, ok := roles[n]; return r, ok }
	cases := []struct {
		role store.RoleToExecute
		ns   Namespace
		acts []DBAction
		want []string
	}{
		{store.RoleToExecute{Role: "readAnyDatabase", Type: "BUILT_IN"}, ns("db1", "coll1"), ins,
			[]string{"execute-as role readAnyDatabase may not insert into db1.coll1", "INSERT"}},
		{store.RoleToExecute{Role: "readAnyDatabase", Type: "BUILT_IN"}, ns("local", ""), ChangeStreamActions,
			[]string{"execute-as role readAnyDatabase may not open a change stream on database local", "CHANGE_STREAM"}},
		{store.RoleToExecute{Role: "reader", Type: "CUSTOM"}, ns("db1", "coll1"), MergeActions("delete", "discard"),
			[]string{"execute-as role reader may not delete documents from db1.coll1", `give custom role reader the REMOVE action on {db: "db1", collection: "coll1"}`}},
		{store.RoleToExecute{Role: "reader", Type: "CUSTOM"}, ns("", ""), read,
			[]string{"may not read from the whole deployment", `{db: "", collection: ""}`}},
		{store.RoleToExecute{Role: "reader", Type: "CUSTOM"}, ns("db1", "ts"), mkcol,
			[]string{"may not create the collection db1.ts", "CREATE_COLLECTION"}},
		{store.RoleToExecute{Role: "nobody", Type: "CUSTOM"}, ns("db1", "coll1"), read,
			[]string{"execute-as role nobody may not touch db1.coll1", `no custom role named "nobody" exists`}},
		{store.RoleToExecute{Role: "read", Type: "BUILT_IN"}, ns("db1", "coll1"), read,
			[]string{`"read" is not a built-in execute-as role (atlasAdmin, readWriteAnyDatabase, readAnyDatabase)`}},
	}
	for _, c := range cases {
		err := ExecuteAsAllows(c.role, src, c.ns, c.acts...)
		var d *ExecuteAsDenied
		if !errors.As(err, &d) {
			t.Errorf("%v on %v: got %v, want *ExecuteAsDenied", c.role, c.ns, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v on %v: message %q lacks %q", c.role, c.ns, err, w)
			}
		}
	}
}

func TestExecuteAsInvalidInput(t *testing.T) {
	rw := store.RoleToExecute{Role: "readWriteAnyDatabase", Type: "BUILT_IN"}
	cases := []struct {
		name string
		role store.RoleToExecute
		ns   Namespace
		acts []DBAction
		want string
	}{
		{"unknown type", store.RoleToExecute{Role: "readWriteAnyDatabase", Type: "builtin"}, ns("db1", "coll1"), read, `dbRoleToExecute.type "builtin" must be BUILT_IN or CUSTOM`},
		{"empty type", store.RoleToExecute{Role: "readWriteAnyDatabase"}, ns("db1", "coll1"), read, "must be BUILT_IN or CUSTOM"},
		{"collection without database", rw, ns("", "coll1"), read, "needs a database"},
		{"unknown action", rw, ns("db1", "coll1"), []DBAction{"dropDatabase"}, `unknown database action "dropDatabase"`},
	}
	for _, c := range cases {
		err := ExecuteAsAllows(c.role, noCustomRoles, c.ns, c.acts...)
		var d *ExecuteAsDenied
		if err == nil || errors.As(err, &d) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want a plain error containing %q", c.name, err, c.want)
		}
	}
	if err := ExecuteAsAllows(store.RoleToExecute{Role: "readAnyDatabase", Type: "BUILT_IN"}, noCustomRoles, ns("db1", "coll1")); err != nil {
		t.Errorf("no actions: got %v, want nil", err)
	}
}

// TestDBActionsAreAtlasActions checks that every action a processor needs can be granted by an
// Atlas custom role, which the admin API accepts only from DatabaseActions.
func TestDBActionsAreAtlasActions(t *testing.T) {
	for _, a := range dbActions {
		if !slices.Contains(DatabaseActions, a.AtlasName()) {
			t.Errorf("%s: %s is not among DatabaseActions", a, a.AtlasName())
		}
		if got, ok := parseDBAction(a.AtlasName()); !ok || got != a {
			t.Errorf("parseDBAction(%q) = %q, %v", a.AtlasName(), got, ok)
		}
	}
}
