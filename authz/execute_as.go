package authz

import (
	"fmt"
	"strings"

	"github.com/spi-streams/spi/store"
)

// This file decides whether a Cluster connection's execute-as role (dbRoleToExecute, spec
// sections 6.3 and 7) lets a stream processor touch a namespace. spid checks it itself, before
// it reads or writes, on every namespace a processor touches (issue 11): a denied static target
// fails createStreamProcessor or start, a denied dynamic $merge target turns the document into a
// dead-letter record. The deployment checks the same privileges again on its side.
//
// The rules follow MongoDB's own authorization model:
//   - the built-in roles and their privileges are those of the MongoDB manual's "Built-In Roles"
//     page and of mongod's src/mongo/db/auth/builtin_roles.yml;
//   - which resource patterns match a namespace is the manual's "Resource Document on
//     Self-Managed Deployments" page and mongod's ResourcePatternSearchList
//     (src/mongo/db/auth/resource_pattern_search_list.h);
//   - the actions each stage needs are those mongod asks for ($merge: the merge strategy
//     descriptors in src/mongo/db/pipeline/merge_processor.cpp; a change stream: changeStream and
//     find, as the manual's "Change Streams" page, Access Control, says).

// DBAction is a MongoDB privilege action a stream processor performs on a namespace, spelled as
// MongoDB spells it (find, changeStream, ...). Its Atlas custom-role spelling is AtlasName
// (FIND, CHANGE_STREAM, ...), one of DatabaseActions.
type DBAction string

// The privilege actions stream processors need.
const (
	// Find reads documents: a $lookup or $cachedLookup source, and every change stream.
	Find DBAction = "find"
	// ChangeStream opens a change stream: a Cluster $source, with Find.
	ChangeStream DBAction = "changeStream"
	// Insert adds documents: $merge with whenNotMatched "insert", $emit to a time-series
	// collection, the dead-letter collection.
	Insert DBAction = "insert"
	// Update changes documents: $merge with whenMatched replace, merge, keepExisting (as part of
	// an upsert) or a pipeline.
	Update DBAction = "update"
	// Remove deletes documents: $merge with whenMatched "delete".
	Remove DBAction = "remove"
	// CreateCollection creates a collection explicitly: $emit to a time-series collection that
	// does not exist yet. (An insert into a missing collection creates it implicitly and needs
	// only Insert.)
	CreateCollection DBAction = "createCollection"
)

// dbActions lists every DBAction, in the order messages and tests use.
var dbActions = []DBAction{Find, ChangeStream, Insert, Update, Remove, CreateCollection}

// AtlasName is the action as an Atlas custom role spells it: INSERT, CHANGE_STREAM.
func (a DBAction) AtlasName() string { return Action(a).AtlasName() }

// verb is what the action does, in words for error messages ("insert into").
func (a DBAction) verb() string {
	switch a {
	case Find:
		return "read from"
	case ChangeStream:
		return "open a change stream on"
	case Insert:
		return "insert into"
	case Update:
		return "update documents in"
	case Remove:
		return "delete documents from"
	case CreateCollection:
		return "create the collection"
	}
	return "perform " + string(a) + " on"
}

// The actions each stage needs on its namespace. Callers must not modify them.
var (
	// LookupActions: a $lookup or $cachedLookup source (spec section 3.4) is read with find.
	LookupActions = []DBAction{Find}
	// ChangeStreamActions: a Cluster $source (spec section 3.1.2) opens a change stream, which
	// MongoDB authorizes with changeStream and find on the watched collection, database
	// (Namespace{DB: db}) or whole deployment (Namespace{}) (MongoDB manual, "Change Streams",
	// Access Control).
	ChangeStreamActions = []DBAction{ChangeStream, Find}
	// DeadLetterActions: the dead-letter collection (spec section 4.5) receives inserts; a
	// missing collection is created by the first insert.
	DeadLetterActions = []DBAction{Insert}
	// TimeSeriesEmitActions: $emit to a time-series collection (spec section 3.8) inserts; when
	// the collection is missing the connector creates it first and must also check
	// CreateCollection.
	TimeSeriesEmitActions = []DBAction{Insert}
)

// MergeActions returns the actions a $merge needs on its target (spec section 3.8), as mongod
// asks for them: whenNotMatched "insert" needs insert; whenMatched "replace", "merge",
// "keepExisting" and "pipeline" (pass "pipeline" for a pipeline) need update, since they are
// updates or, with "insert", upserts; "delete" (Atlas Stream Processing only) needs remove;
// "fail" and "discard" need nothing of their own. A whenMatched or whenNotMatched given as an
// expression may evaluate to any mode: pass "" to get every action it could need, or the value
// it evaluated to, per document. An unknown mode is treated like an expression.
// Source: merge strategy descriptors in mongod's src/mongo/db/pipeline/merge_processor.cpp
// (replace/insert: insert+update; replace/fail: update; fail/insert: insert; ...).
func MergeActions(whenMatched, whenNotMatched string) []DBAction {
	insert, update, remove := false, false, false
	switch whenMatched {
	case "replace", "merge", "keepExisting", "pipeline":
		update = true
	case "delete":
		remove = true
	case "fail":
	default: // an expression: replace, merge, keepExisting, delete or fail
		update, remove = true, true
	}
	switch whenNotMatched {
	case "discard", "fail":
	default: // "insert", or an expression that may say insert
		insert = true
	}
	var out []DBAction
	for _, x := range []struct {
		need bool
		a    DBAction
	}{{insert, Insert}, {update, Update}, {remove, Remove}} {
		if x.need {
			out = append(out, x.a)
		}
	}
	return out
}

// Namespace is what a processor touches: a collection {DB, Coll}, a whole database {DB, ""} (a
// database-level change stream) or the whole deployment {"", ""} (a deployment-level change
// stream).
type Namespace struct {
	DB   string
	Coll string
}

func (n Namespace) String() string {
	switch {
	case n.DB == "":
		return "the whole deployment"
	case n.Coll == "":
		return "database " + n.DB
	}
	return n.DB + "." + n.Coll
}

// resource returns the Atlas custom-role resource that would grant the namespace.
func (n Namespace) resource() string {
	return fmt.Sprintf("{db: %q, collection: %q}", n.DB, n.Coll)
}

// systemColl reports whether the namespace is a collection the wildcard resource forms do not
// match: system.* everywhere and replset.* in local (mongod's NamespaceString::isNormalCollection).
func (n Namespace) systemColl() bool {
	return strings.HasPrefix(n.Coll, "system.") || (n.DB == "local" && strings.HasPrefix(n.Coll, "replset."))
}

// internalDB reports whether the database is local or config, which {db: "", collection: ""}
// and the *AnyDatabase roles do not cover (MongoDB manual, "Built-In Roles", readAnyDatabase:
// "all databases except local and config").
func internalDB(db string) bool { return db == "local" || db == "config" }

// patternKind is the shape of a resource document.
type patternKind int

const (
	anyNormal patternKind = iota // {db: "", collection: ""}
	database                     // {db: "x", collection: ""}
	collName                     // {db: "", collection: "c"}
	exactNS                      // {db: "x", collection: "c"}
)

type pattern struct {
	kind     patternKind
	db, coll string
}

// patternOf turns a custom role's resource into a pattern; a cluster resource matches no
// namespace (MongoDB manual, "Resource Document": {cluster: true} is for operations on the
// system state), so ok is false.
func patternOf(r store.Resource) (p pattern, ok bool) {
	if r.Cluster {
		return pattern{}, false
	}
	switch {
	case r.DB == "" && r.Collection == "":
		return pattern{kind: anyNormal}, true
	case r.Collection == "":
		return pattern{kind: database, db: r.DB}, true
	case r.DB == "":
		return pattern{kind: collName, coll: r.Collection}, true
	}
	return pattern{kind: exactNS, db: r.DB, coll: r.Collection}, true
}

// matches follows the MongoDB manual's "Resource Document" page and mongod's
// ResourcePatternSearchList:
//   - {db: "", collection: ""} matches every non-system collection of every database except
//     local and config, those databases themselves and the whole deployment;
//   - {db: "x", collection: ""} matches database x and its non-system collections;
//   - {db: "", collection: "c"} matches every collection named c, system ones included;
//   - {db: "x", collection: "c"} matches x.c only.
func (p pattern) matches(ns Namespace) bool {
	switch {
	case ns.DB == "":
		return p.kind == anyNormal
	case ns.Coll == "":
		return (p.kind == anyNormal && !internalDB(ns.DB)) || (p.kind == database && p.db == ns.DB)
	}
	switch p.kind {
	case anyNormal:
		return !ns.systemColl() && !internalDB(ns.DB)
	case database:
		return !ns.systemColl() && p.db == ns.DB
	case collName:
		return p.coll == ns.Coll
	}
	return p.db == ns.DB && p.coll == ns.Coll
}

type privilege struct {
	res     pattern
	actions []DBAction
}

// The action sets of MongoDB's built-in roles, restricted to the actions a processor uses
// (builtin_roles.yml: readRoleActions, readWriteRoleActions, dbAdminRoleActions).
var (
	readActs      = []DBAction{ChangeStream, Find}
	readWriteActs = []DBAction{ChangeStream, Find, CreateCollection, Insert, Remove, Update}
	dbAdminActs   = []DBAction{CreateCollection}
	profileActs   = []DBAction{ChangeStream, Find, CreateCollection}
)

// dbScopedRoles are the built-in roles that exist on every database and grant privileges on
// that database only (MongoDB manual, "Built-In Roles", Database User Roles and Database
// Administration Roles).
var dbScopedRoles = map[string]func(db string) []privilege{
	// read: the database's non-system collections and system.js.
	"read": readRole,
	// readWrite: read, and writes on the same collections.
	"readWrite": readWriteRole,
	// dbAdmin: schema tasks (createCollection, no find) on the database, read on system.profile.
	"dbAdmin": dbAdminRole,
	// userAdmin: user and role management only, no data access.
	"userAdmin": func(string) []privilege { return nil },
	// dbOwner: readWrite, dbAdmin and userAdmin.
	"dbOwner": func(db string) []privilege { return append(readWriteRole(db), dbAdminRole(db)...) },
}

func readRole(db string) []privilege {
	return []privilege{{pattern{kind: database, db: db}, readActs}, {pattern{kind: exactNS, db: db, coll: "system.js"}, readActs}}
}

func readWriteRole(db string) []privilege {
	return []privilege{{pattern{kind: database, db: db}, readWriteActs}, {pattern{kind: exactNS, db: db, coll: "system.js"}, readWriteActs}}
}

func dbAdminRole(db string) []privilege {
	return []privilege{{pattern{kind: database, db: db}, dbAdminActs}, {pattern{kind: exactNS, db: db, coll: "system.profile"}, profileActs}}
}

// anyDBRoles are the built-in roles that exist only on the admin database and span databases.
var anyDBRoles = map[string][]privilege{
	// readAnyDatabase: read on every database except local and config (MongoDB manual,
	// "Built-In Roles"), system.js in every database.
	"readAnyDatabase": {{pattern{kind: anyNormal}, readActs}, {pattern{kind: collName, coll: "system.js"}, readActs}},
	// readWriteAnyDatabase: readWrite on every database except local and config.
	"readWriteAnyDatabase": {{pattern{kind: anyNormal}, readWriteActs}, {pattern{kind: collName, coll: "system.js"}, readWriteActs}},
	// dbAdminAnyDatabase: dbAdmin on every database except local and config.
	"dbAdminAnyDatabase": {{pattern{kind: anyNormal}, dbAdminActs}, {pattern{kind: collName, coll: "system.profile"}, profileActs}},
}

// atlasAdmin is root-like for data but is not root: Atlas's "Built-In Roles and Privileges" page
// gives it readWriteAnyDatabase, readAnyDatabase, dbAdminAnyDatabase, clusterMonitor and backup
// (among others without data actions), and update on config.settings. So it reads local and
// config (clusterMonitor inherits read on both; backup finds in both) and writes there only to
// config.settings (backup: insert and update).
func atlasAdminPrivileges() []privilege {
	out := append([]privilege{}, anyDBRoles["readWriteAnyDatabase"]...)
	out = append(out, anyDBRoles["dbAdminAnyDatabase"]...)
	out = append(out, readRole("local")...)
	out = append(out, readRole("config")...)
	return append(out, privilege{pattern{kind: exactNS, db: "config", coll: "settings"}, []DBAction{Insert, Update}})
}

// ExecuteAsBuiltinRoles are the built-in roles a Cluster connection may run as (spec section
// 6.3): atlasAdmin, readWriteAnyDatabase and readAnyDatabase.
var ExecuteAsBuiltinRoles = []string{"atlasAdmin", "readWriteAnyDatabase", "readAnyDatabase"}

// ExecuteAsDenied says that a Cluster connection's execute-as role may not do something to a
// namespace: Action is the first missing action, or "" when the role itself is unusable (Reason
// then says why).
type ExecuteAsDenied struct {
	Role   store.RoleToExecute
	NS     Namespace
	Action DBAction
	Reason string
}

func (d *ExecuteAsDenied) Error() string {
	if d.Action == "" {
		return fmt.Sprintf("execute-as role %s may not touch %s: %s", d.Role.Role, d.NS, d.Reason)
	}
	what := d.Action.verb() + " " + d.NS.String()
	hint := "choose an execute-as role that grants it, or another target"
	if d.Role.Type == "CUSTOM" {
		hint = fmt.Sprintf("give custom role %s the %s action on %s, or choose another target", d.Role.Role, d.Action.AtlasName(), d.NS.resource())
	}
	return fmt.Sprintf("execute-as role %s may not %s: it lacks the %s action there; %s", d.Role.Role, what, d.Action.AtlasName(), hint)
}

// ExecuteAsAllows is the one decision on a Cluster connection's execute-as role: may a processor
// running as r perform every one of actions on ns? Built-in roles (Type BUILT_IN) are the three
// of ExecuteAsBuiltinRoles; custom roles (Type CUSTOM) are looked up through roles with, through
// their inherited roles, the built-in roles they name (read, readWrite, dbAdmin, dbOwner,
// userAdmin on the inherited role's db; readAnyDatabase, readWriteAnyDatabase,
// dbAdminAnyDatabase, atlasAdmin on admin) and other custom roles, each counted once, so that a
// cycle ends. A custom role's actions outside DBAction (LIST_COLLECTIONS, stream processing
// actions, ...) and its {cluster: true} resources grant nothing here.
//
// It returns nil, a *ExecuteAsDenied naming the first missing action in the order given (or an
// unknown role), or another error for a type other than BUILT_IN and CUSTOM, a namespace with a
// collection but no database, or an unknown action: those are programming or configuration
// errors, not denials. No actions at all is allowed.
//
// It reads the custom roles through roles on every call and keeps nothing, so a role changed in
// the registry counts from the next call. A caller checking dynamic $merge targets per document
// may keep the decision per target namespace (at most 1,000 targets, spec section 3.8) until a
// custom role changes (connectors.Env.RolesGeneration; processor.Manager.RoleChanged re-checks
// running processors at once).
func ExecuteAsAllows(r store.RoleToExecute, roles RoleSource, ns Namespace, actions ...DBAction) error {
	if ns.DB == "" && ns.Coll != "" {
		return fmt.Errorf("namespace with collection %q needs a database", ns.Coll)
	}
	for _, a := range actions {
		if !isDBAction(a) {
			return fmt.Errorf("unknown database action %q", a)
		}
	}
	var privs []privilege
	switch r.Type {
	case "BUILT_IN":
		switch r.Role {
		case "atlasAdmin":
			privs = atlasAdminPrivileges()
		case "readWriteAnyDatabase", "readAnyDatabase":
			privs = anyDBRoles[r.Role]
		default:
			return &ExecuteAsDenied{Role: r, NS: ns, Reason: fmt.Sprintf("%q is not a built-in execute-as role (%s)", r.Role, strings.Join(ExecuteAsBuiltinRoles, ", "))}
		}
	case "CUSTOM":
		if _, ok := roles(r.Role); !ok {
			return &ExecuteAsDenied{Role: r, NS: ns, Reason: fmt.Sprintf("no custom role named %q exists in this project", r.Role)}
		}
		privs = customPrivileges(r.Role, roles)
	default:
		return fmt.Errorf("dbRoleToExecute.type %q must be BUILT_IN or CUSTOM", r.Type)
	}
	for _, a := range actions {
		if !grants(privs, ns, a) {
			return &ExecuteAsDenied{Role: r, NS: ns, Action: a}
		}
	}
	return nil
}

func isDBAction(a DBAction) bool {
	for _, b := range dbActions {
		if a == b {
			return true
		}
	}
	return false
}

// grants reports whether one privilege matching ns carries a. MongoDB grants an action on a
// namespace when any privilege whose resource matches the namespace lists it.
func grants(privs []privilege, ns Namespace, a DBAction) bool {
	for _, p := range privs {
		if p.res.matches(ns) {
			for _, b := range p.actions {
				if a == b {
					return true
				}
			}
		}
	}
	return false
}

// customPrivileges gathers the privileges of custom role name and every role it inherits. A
// role inherited that exists neither as a built-in role nor as a custom role grants nothing, as
// in MongoDB after the role is dropped.
func customPrivileges(name string, roles RoleSource) []privilege {
	var out []privilege
	seen := map[string]bool{}
	var walk func(name string)
	walk = func(name string) {
		if seen[name] {
			return
		}
		seen[name] = true
		role, ok := roles(name)
		if !ok {
			return
		}
		for _, ra := range role.Actions {
			a, ok := parseDBAction(ra.Action)
			if !ok {
				continue
			}
			for _, res := range ra.Resources {
				if p, ok := patternOf(res); ok {
					out = append(out, privilege{p, []DBAction{a}})
				}
			}
		}
		for _, ir := range role.InheritedRoles {
			if mk, ok := dbScopedRoles[ir.Role]; ok {
				db := ir.DB
				if db == "" {
					db = "admin"
				}
				out = append(out, mk(db)...)
				continue
			}
			if ir.DB == "" || ir.DB == "admin" {
				if ir.Role == "atlasAdmin" {
					out = append(out, atlasAdminPrivileges()...)
					continue
				}
				if ps, ok := anyDBRoles[ir.Role]; ok {
					out = append(out, ps...)
					continue
				}
			}
			walk(ir.Role)
		}
	}
	walk(name)
	return out
}

// parseDBAction accepts a custom role's action in Atlas spelling (INSERT) or MongoDB spelling
// (insert).
func parseDBAction(s string) (DBAction, bool) {
	for _, a := range dbActions {
		if s == string(a) || s == a.AtlasName() {
			return a, true
		}
	}
	return "", false
}
