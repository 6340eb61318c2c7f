package mongodb

// Execute-as, layer 2 (issue 11): with provisionExecuteAsUser, a Cluster connection's
// authentication holds a user administrator of the deployment, and spid connects with it only to
// keep a dedicated user, the execute-as user, holding exactly the connection's dbRoleToExecute.
// Processors ($merge, $emit to a time series collection, the dead-letter writer, lookups) connect
// as that user (Sink.clientOptions); the administrator never writes a document.
//
// The user lives in the admin database, is named ExecuteAsUserName(workspace, connection) (the
// "spi-" prefix is spid's on the deployment: a user of that name is taken to be spid's and is
// set back to what the registry says) and authenticates with SCRAM-SHA-256 only. Its roles are
// exactly:
//   - BUILT_IN role R: [{role: R, db: "admin"}] (a deployment without R, e.g. atlasAdmin outside
//     Atlas, refuses: 420);
//   - CUSTOM role R: [{role: <user name>, db: "admin"}], a deployment role spid creates or updates
//     to mirror R: R's data actions and those of the custom roles it inherits, translated from
//     Atlas spelling (FIND → find, CREATE_COLLECTION → createCollection, ...; MongoDB manual,
//     "Privilege Actions") on the same resources, and the built-in roles R inherits as the
//     role's roles. Stream processing actions and Atlas-only actions (OUT_TO_S3, SQL_*) have no
//     deployment equivalent and are left out.
//
// The commands are the user management commands of the MongoDB manual (usersInfo, createUser,
// updateUser, rolesInfo, createRole, updateRole): the administrator needs viewUser, createUser,
// updateUser (changePassword), grantRole, viewRole, createRole (userAdminAnyDatabase has them).

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/spi-streams/spi/authz"
	"github.com/spi-streams/spi/connectors"
	"github.com/spi-streams/spi/store"
)

// provisionTimeout bounds one provisioning (connect as the administrator, read, write the user).
const provisionTimeout = 30 * time.Second

// ExecuteAsUserName is the name of the execute-as user spid provisions for connection conn of
// workspace ws, in the deployment's admin database: "spi-<ws>-<conn>".
func ExecuteAsUserName(ws, conn string) string { return "spi-" + ws + "-" + conn }

// NewPassword returns a random password for the execute-as user: 32 bytes from crypto/rand in
// unpadded base64url (43 characters, 256 bits), which SCRAM's SASLprep leaves unchanged.
func NewPassword() store.Secret {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return store.Secret(base64.RawURLEncoding.EncodeToString(b))
}

// latest holds, per connection ID, the execute-as user most recently set on the deployment by
// this process, so that a processor that read its connection before a rotation was stored uses
// (and provisions) the new password rather than setting the old one back. locks serialise
// provisioning and rotation per connection; mu guards both maps.
var (
	mu     sync.Mutex
	latest = map[string]store.ExecuteAsUser{}
	locks  = map[string]*sync.Mutex{}
)

// lockFor returns the provisioning lock of connection id.
func lockFor(id string) *sync.Mutex {
	mu.Lock()
	defer mu.Unlock()
	l, ok := locks[id]
	if !ok {
		l = &sync.Mutex{}
		locks[id] = l
	}
	return l
}

// effective returns the execute-as user to use for c: the registry's, or the one this process
// set more recently.
func effective(c *store.Connection) store.ExecuteAsUser {
	var u store.ExecuteAsUser
	if c.Cluster.ExecuteAs != nil {
		u = *c.Cluster.ExecuteAs
	}
	mu.Lock()
	defer mu.Unlock()
	if l, ok := latest[c.ID]; ok && l.Rotated.After(u.Rotated) {
		u = l
	}
	return u
}

// provisioned reports whether processors of c connect as a provisioned execute-as user.
func provisioned(c *store.Connection) bool {
	return c != nil && c.Cluster != nil && c.Cluster.ProvisionExecuteAsUser
}

// Provision makes sure the execute-as user of Cluster connection c exists on its deployment
// with exactly the execute-as role and the registry's password (the newer one, should this
// process have rotated it since c was read): it connects with the administrator credentials in
// c.Cluster, reads the user (usersInfo), creates it or sets its password and roles
// (updateUser), mirrors a CUSTOM role first (createRole/updateRole), and logs at warn roles it
// set back. roles finds the project's custom roles.
//
// Errors are *connectors.Error naming the deployment's hosts and the user, never a credential:
// code 421, retryable, when the deployment cannot be reached or refuses the administrator's
// login; code 420 when it refuses a command (the administrator lacks a privilege, the role
// does not exist there, the name belongs to a user spid did not make).
func Provision(ctx context.Context, c *store.Connection, roles authz.RoleSource, log *slog.Logger) error {
	return provision(ctx, c, nil, roles, log)
}

// RotatePassword sets the password of c's execute-as user on the deployment to u.Password (and
// its roles to the execute-as role, as Provision does), for the Admin API's rotation action; the
// caller then stores u in the registry. Processors keep their open connections, which stay
// authenticated; a processor's next connection or retry uses u.Password. Errors are those of
// Provision.
func RotatePassword(ctx context.Context, c *store.Connection, u store.ExecuteAsUser, roles authz.RoleSource, log *slog.Logger) error {
	return provision(ctx, c, &u, roles, log)
}

// provisioner is one provisioning run's connection and what its messages name.
type provisioner struct {
	db      *mongo.Database
	c       *store.Connection
	user    string
	hosts   string
	secrets []string
	log     *slog.Logger
}

// provision runs Provision, or with rotate a rotation to *rotate, under c's provisioning lock.
func provision(ctx context.Context, c *store.Connection, rotate *store.ExecuteAsUser, roles authz.RoleSource, log *slog.Logger) error {
	if !provisioned(c) {
		return connectors.Invalid("connection %q: provisionExecuteAsUser is not set", c.Name)
	}
	lock := lockFor(c.ID)
	lock.Lock()
	defer lock.Unlock()
	u := effective(c)
	if rotate != nil {
		u = *rotate
	}
	if u.Username == "" || u.Password == "" {
		return connectors.Invalid("connection %q: provisionExecuteAsUser is set but no execute-as user is registered; update the connection", c.Name)
	}
	if log == nil {
		log = slog.Default()
	}
	if roles == nil {
		roles = func(string) (store.Role, bool) { return store.Role{}, false }
	}
	cl := c.Cluster
	p := &provisioner{c: c, user: u.Username, hosts: hostsOf(cl.ConnectionString), log: log,
		secrets: []string{cl.Password.Reveal(), u.Password.Reveal()}}
	opts, err := adminOptions(cl)
	if err != nil {
		return connectors.Invalid("connection %q: connectionString (%s) is not a connection string the MongoDB driver can use", c.Name, p.hosts)
	}
	ctx, cancel := context.WithTimeout(ctx, provisionTimeout)
	defer cancel()
	client, err := mongo.Connect(opts)
	if err != nil {
		return p.fail("connect", err)
	}
	defer func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer dcancel()
		_ = client.Disconnect(dctx)
	}()
	p.db = client.Database("admin")
	want, err := p.wantRoles(ctx, roles)
	if err != nil {
		return err
	}
	if err := p.ensureUser(ctx, u, want); err != nil {
		return err
	}
	if rotate != nil {
		mu.Lock()
		latest[c.ID] = u
		mu.Unlock()
	}
	return nil
}

// adminOptions are the driver's options for the administrator's connection: the connection
// string with the registry's credentials (PLAIN authenticates against $external, the driver's
// default for it: MongoDB Enterprise's LDAP).
func adminOptions(cl *store.Cluster) (*options.ClientOptions, error) {
	opts, err := baseOptions(cl.ConnectionString, "spi-provision")
	if err != nil {
		return nil, err
	}
	if cl.Username != "" {
		cred := options.Credential{Username: cl.Username, Password: cl.Password.Reveal(), AuthMechanism: cl.Mechanism}
		if opts.Auth != nil && cl.Mechanism != "PLAIN" {
			cred.AuthSource = opts.Auth.AuthSource
		}
		opts.SetAuth(cred)
	}
	return opts, nil
}

// roleRef is a {role, db} pair as the user management commands take and return it.
type roleRef struct {
	Role string `bson:"role"`
	DB   string `bson:"db"`
}

func (r roleRef) String() string { return r.Role + "@" + r.DB }

// wantRoles returns the roles the execute-as user must hold, mirroring a CUSTOM role first.
func (p *provisioner) wantRoles(ctx context.Context, roles authz.RoleSource) ([]roleRef, error) {
	r := p.c.Cluster.DBRoleToExecute
	if r.Type != "CUSTOM" {
		return []roleRef{{Role: r.Role, DB: "admin"}}, nil
	}
	privs, inherited, ok := MirrorRole(r.Role, roles)
	if !ok {
		return nil, connectors.Invalid("connection %q: dbRoleToExecute: no custom role named %q exists", p.c.Name, r.Role)
	}
	var info struct {
		Roles []bson.Raw `bson:"roles"`
	}
	if err := p.db.RunCommand(ctx, bson.D{{Key: "rolesInfo", Value: bson.D{{Key: "role", Value: p.user}, {Key: "db", Value: "admin"}}}}).Decode(&info); err != nil {
		return nil, p.fail("rolesInfo", err)
	}
	cmd := "createRole"
	if len(info.Roles) > 0 {
		cmd = "updateRole"
	}
	if inherited == nil {
		inherited = []roleRef{}
	}
	if err := p.db.RunCommand(ctx, bson.D{{Key: cmd, Value: p.user}, {Key: "privileges", Value: privs}, {Key: "roles", Value: inherited}}).Err(); err != nil {
		return nil, p.fail(cmd, err)
	}
	return []roleRef{{Role: p.user, DB: "admin"}}, nil
}

// Privilege is one privilege of a deployment role (MongoDB manual, "Privilege Actions" and
// "Resource Document"): {resource: {db, collection} | {cluster: true}, actions: [...]}.
type Privilege struct {
	Resource bson.D   `bson:"resource"`
	Actions  []string `bson:"actions"`
}

// atlasToMongo maps the Atlas custom-role data actions (authz.DatabaseActions) to MongoDB
// privilege actions; the Atlas-only ones (OUT_TO_S3, SQL_GET_SCHEMA, SQL_SET_SCHEMA) have none.
var atlasToMongo = map[string]string{
	"FIND": "find", "INSERT": "insert", "UPDATE": "update", "REMOVE": "remove", "CHANGE_STREAM": "changeStream",
	"BYPASS_DOCUMENT_VALIDATION": "bypassDocumentValidation", "COLL_STATS": "collStats", "CREATE_COLLECTION": "createCollection",
	"CREATE_INDEX": "createIndex", "DB_STATS": "dbStats", "DROP_COLLECTION": "dropCollection", "DROP_DATABASE": "dropDatabase",
	"DROP_INDEX": "dropIndex", "KILL_CURSORS": "killCursors", "LIST_COLLECTIONS": "listCollections", "LIST_DATABASES": "listDatabases",
	"LIST_INDEXES": "listIndexes", "RENAME_COLLECTION_SAME_DB": "renameCollectionSameDB", "USE_UUID": "useUUID",
}

// mongoAction returns the MongoDB privilege action of a custom role's action, given in Atlas
// spelling (FIND) or MongoDB spelling (find).
func mongoAction(a string) (string, bool) {
	if m, ok := atlasToMongo[a]; ok {
		return m, true
	}
	for _, m := range atlasToMongo {
		if m == a {
			return m, true
		}
	}
	return "", false
}

// MirrorRole returns the deployment privileges and inherited built-in roles that mirror the
// project's custom role name: the data actions of name and of every custom role it inherits,
// merged per resource in first-seen order, and the built-in roles they inherit (db "admin" when
// none is given). ok is false when name is not a custom role.
func MirrorRole(name string, roles authz.RoleSource) (privs []Privilege, inherited []roleRef, ok bool) {
	if _, ok := roles(name); !ok {
		return nil, nil, false
	}
	index := map[string]int{}
	seen := map[string]bool{}
	var walk func(string)
	walk = func(name string) {
		if seen[name] {
			return
		}
		seen[name] = true
		role, _ := roles(name)
		for _, ra := range role.Actions {
			act, ok := mongoAction(ra.Action)
			if !ok {
				continue
			}
			for _, res := range ra.Resources {
				doc := bson.D{{Key: "db", Value: res.DB}, {Key: "collection", Value: res.Collection}}
				key := "ns\x00" + res.DB + "\x00" + res.Collection
				if res.Cluster {
					doc, key = bson.D{{Key: "cluster", Value: true}}, "cluster"
				}
				i, ok := index[key]
				if !ok {
					i = len(privs)
					index[key] = i
					privs = append(privs, Privilege{Resource: doc})
				}
				if !slices.Contains(privs[i].Actions, act) {
					privs[i].Actions = append(privs[i].Actions, act)
				}
			}
		}
		for _, ir := range role.InheritedRoles {
			if _, custom := roles(ir.Role); custom {
				walk(ir.Role)
				continue
			}
			ref := roleRef{Role: ir.Role, DB: ir.DB}
			if ref.DB == "" {
				ref.DB = "admin"
			}
			if !slices.Contains(inherited, ref) {
				inherited = append(inherited, ref)
			}
		}
	}
	walk(name)
	for i := range privs {
		slices.Sort(privs[i].Actions)
	}
	if privs == nil {
		privs = []Privilege{}
	}
	return privs, inherited, true
}

// userDoc is what usersInfo returns of a user, as far as spid reads it.
type userDoc struct {
	Roles []roleRef `bson:"roles"`
}

// ensureUser creates the user or sets its password and roles back to u's and want.
func (p *provisioner) ensureUser(ctx context.Context, u store.ExecuteAsUser, want []roleRef) error {
	var info struct {
		Users []userDoc `bson:"users"`
	}
	if err := p.db.RunCommand(ctx, bson.D{{Key: "usersInfo", Value: bson.D{{Key: "user", Value: u.Username}, {Key: "db", Value: "admin"}}}}).Decode(&info); err != nil {
		return p.fail("usersInfo", err)
	}
	if len(info.Users) == 0 {
		err := p.db.RunCommand(ctx, bson.D{{Key: "createUser", Value: u.Username}, {Key: "pwd", Value: u.Password.Reveal()},
			{Key: "roles", Value: want}, {Key: "mechanisms", Value: bson.A{"SCRAM-SHA-256"}}}).Err()
		if err != nil {
			return p.fail("createUser", err)
		}
		p.log.Info("execute-as user created", "workspace", p.c.Workspace, "connection", p.c.Name, "user", u.Username, "hosts", p.hosts, "roles", refs(want))
		return nil
	}
	have := info.Users[0]
	if !sameRoles(have.Roles, want) {
		p.log.Warn("execute-as user held other roles; set back to the execute-as role", "workspace", p.c.Workspace, "connection", p.c.Name,
			"user", u.Username, "hosts", p.hosts, "had", refs(have.Roles), "roles", refs(want))
	}
	// The password is set every time: the registry's is the one processors use.
	err := p.db.RunCommand(ctx, bson.D{{Key: "updateUser", Value: u.Username}, {Key: "pwd", Value: u.Password.Reveal()},
		{Key: "roles", Value: want}, {Key: "mechanisms", Value: bson.A{"SCRAM-SHA-256"}}}).Err()
	if err != nil {
		return p.fail("updateUser", err)
	}
	p.log.Debug("execute-as user checked", "workspace", p.c.Workspace, "connection", p.c.Name, "user", u.Username, "hosts", p.hosts)
	return nil
}

func sameRoles(a, b []roleRef) bool {
	if len(a) != len(b) {
		return false
	}
	for _, r := range a {
		if !slices.Contains(b, r) {
			return false
		}
	}
	return true
}

func refs(rs []roleRef) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = r.String()
	}
	return "[" + strings.Join(s, ", ") + "]"
}

// codeAuthenticationFailed is mongod's AuthenticationFailed (18).
const codeAuthenticationFailed = 18

// fail turns a provisioning error into a connector error (see Provision).
func (p *provisioner) fail(step string, err error) error {
	msg := err.Error()
	for _, s := range p.secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	var ce mongo.CommandError
	if errors.As(err, &ce) && ce.Code != codeAuthenticationFailed && !ce.HasErrorLabel("NetworkError") && !mongo.IsNetworkError(err) && !mongo.IsTimeout(err) {
		return &connectors.Error{Code: connectors.CodeInvalidOptions, Err: fmt.Errorf(
			"connection %q: provisioning the execute-as user %s on %s: %s refused: %s; the administrator in authentication needs createUser, updateUser, viewUser, grantRole and, for a CUSTOM role, createRole and viewRole (e.g. userAdminAnyDatabase)",
			p.c.Name, p.user, p.hosts, step, msg)}
	}
	return &connectors.Error{Retryable: true, Code: connectors.CodeAtlasConnection, Err: fmt.Errorf(
		"connection %q: provisioning the execute-as user %s on %s: %s: %s", p.c.Name, p.user, p.hosts, step, msg)}
}

// executeAsCredential is the credential processors use when c provisions its execute-as user.
func executeAsCredential(c *store.Connection) (options.Credential, store.ExecuteAsUser) {
	u := effective(c)
	return options.Credential{Username: u.Username, Password: u.Password.Reveal(), AuthMechanism: "SCRAM-SHA-256", AuthSource: "admin"}, u
}

// executeAsPassword is the execute-as user's password when s's connection provisions one, to
// scrub from messages; "" otherwise.
func (s *Sink) executeAsPassword() string {
	if !provisioned(s.env.Connection) {
		return ""
	}
	return effective(s.env.Connection).Password.Reveal()
}

// provisionAtConnect is the Sink's hook at its first connection of an attempt: with
// provisionExecuteAsUser, the execute-as user is checked (Provision) before processors connect
// as it.
func (s *Sink) provisionAtConnect() error {
	c := s.env.Connection
	if !provisioned(c) {
		return nil
	}
	if err := Provision(context.Background(), c, s.env.Roles, s.env.Logger); err != nil {
		return err
	}
	if s.env.Logger != nil {
		s.env.Logger.Debug("connecting as the execute-as user", "workspace", c.Workspace, "connection", c.Name,
			"user", effective(c).Username, "mechanism", "SCRAM-SHA-256", "hosts", s.hosts, "writes", s.what)
	}
	return nil
}
