// Package mongodb is the Cluster connection type (spec §7): a $merge sink that writes to a
// MongoDB deployment with the Go driver, under the connection's execute-as role (spec §6.3), and
// the writer of a processor's dead-letter collection.
//
// $merge (spec §3.8, MongoDB manual "$merge") takes a static or expression into.db/into.coll
// (at most 1,000 distinct targets), on as a field or an array of fields (default _id),
// whenMatched replace, keepExisting, merge (default), delete, fail, an update pipeline (with
// $$new and let) or an expression, whenNotMatched insert (default), discard, fail or an
// expression, parallelism (targets written at once) and batchSize (writes per bulk write, a spid
// extension). merge_spec.go reads the stage; merge_write.go writes. The execute-as role may be
// BUILT_IN or one of the project's CUSTOM roles (read through connectors.Env.Roles).
//
// Each WriteBatch is one or more unordered bulk writes, synchronous, keyed by the on fields, so
// a batch that returns is acknowledged and a replayed batch leaves the same collection
// (idempotent). What mongod reports as an error of the aggregation for one document (an on
// field missing, null or an array; a match under whenMatched fail; no match under
// whenNotMatched fail; a duplicate key; a document too large) is a dead-letter record here, as
// spec §4.5 says of per-document errors.
package mongodb

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/spi-streams/spi/authz"
	"github.com/spi-streams/spi/connectors"
	"github.com/spi-streams/spi/pipeline"
	"github.com/spi-streams/spi/pipeline/expr"
	"github.com/spi-streams/spi/store"
)

func init() {
	connectors.Register(connectors.Type{Name: store.TypeCluster, NewSink: NewSink, NewDLQ: NewDLQ, NewLookup: NewLookup})
}

// Timeouts of the connection.
const (
	// selectTimeout bounds server selection: a deployment that cannot be reached fails a write
	// after it, as a retryable connection error.
	selectTimeout  = 10 * time.Second
	connectTimeout = 10 * time.Second
	// maxBSONSize is MongoDB's maxBsonObjectSize (16 MiB): a larger document cannot be written.
	maxBSONSize = 16 << 20
)

// Sink is a $merge into a MongoDB deployment: one static target collection, or targets named
// per document by expressions. It connects at its first write.
type Sink struct {
	env   connectors.Env
	cl    *store.Cluster
	spec  mergeSpec
	cs    string // the connection string, without credentials (the Admin API refuses them in it)
	user  string
	mech  string
	pass  string // the password; scrubbed from any message
	hosts string // for messages: the deployment's hosts, never a credential
	meta  string
	what  string // what writes, for messages: "$merge into", "dead-letter queue"

	client *mongo.Client
	coll   *mongo.Collection // the static target (or the dead-letter collection)

	// targets are the namespaces written so far, with their execute-as decisions (at most
	// maxTargets for a dynamic target). Used by WriteBatch's goroutine only.
	targets map[authz.Namespace]*target
	evalEnv expr.Env
	pipeMu  sync.Mutex // serializes a whenMatched pipeline's shared compiled stages

	// rolesGen is env.RolesGeneration as of the decisions in targets.
	rolesGen uint64
}

// NewSink reads a Cluster connection and a $merge stage, and checks the connection's execute-as
// role against the target namespace (authz.ExecuteAsAllows); it does not connect. Errors are
// *connectors.Error with code 420: an option not supported, a role that does not allow the
// writes $merge needs (the denial's message), a connection string the driver cannot read.
func NewSink(env connectors.Env, sink *pipeline.Sink) (connectors.Sink, error) {
	c := env.Connection
	if c == nil || c.Cluster == nil {
		return nil, connectors.Invalid("connection has no Cluster settings")
	}
	if sink.Stage == "$emit" {
		return newTimeSeries(env, sink)
	}
	if sink.Stage != "$merge" {
		return nil, connectors.Invalid("%s to a Cluster connection is not supported by spid; use $merge, or $emit to a time series collection", sink.Stage)
	}
	spec, err := parseMerge(sink.Options)
	if err != nil {
		return nil, err
	}
	cl := c.Cluster
	// A static target is checked now, for every action its modes may need (an expression mode
	// may ask for any); a dynamic one per namespace, before its first write.
	if !spec.dynamic() {
		ns := authz.Namespace{DB: spec.db, Coll: spec.coll}
		if err := executeAs(env, cl, ns, mergeActions(spec.whenMatched, spec.whenNotMatched)...); err != nil {
			return nil, connectors.Invalid("$merge into %s through connection %q: %v", ns, c.Name, err)
		}
	}
	s := &Sink{env: env, cl: cl, spec: spec, targets: map[authz.Namespace]*target{}, cs: cl.ConnectionString, user: cl.Username, mech: cl.Mechanism, hosts: hostsOf(cl.ConnectionString),
		pass: cl.Password.Reveal(), meta: env.StreamMetaField, what: "$merge into"}
	if s.meta == "" {
		s.meta = "_stream_meta"
	}
	// A mongodb+srv:// string is resolved through DNS by the driver when read: that waits for
	// the first write, since the constructor does no I/O.
	if !strings.HasPrefix(s.cs, "mongodb+srv://") {
		if _, err := s.clientOptions(); err != nil {
			return nil, connectors.Invalid("connection %q: connectionString (%s) is not a connection string the MongoDB driver can use", c.Name, s.hosts)
		}
	}
	return s, nil
}

// clientOptions builds the driver's options: the connection string with the credentials in
// the registry. The driver's error may quote the string: callers say only that it is unusable.
func (s *Sink) clientOptions() (*options.ClientOptions, error) {
	opts, err := baseOptions(s.cs, "spi")
	if err != nil {
		return nil, err
	}
	if provisioned(s.env.Connection) {
		// Execute-as layer 2 (provision.go): the administrator in the registry only provisions.
		cred, _ := executeAsCredential(s.env.Connection)
		opts.SetAuth(cred)
	} else if s.user != "" {
		cred := options.Credential{Username: s.user, Password: s.pass, AuthMechanism: s.mech}
		if opts.Auth != nil {
			cred.AuthSource = opts.Auth.AuthSource
		}
		opts.SetAuth(cred)
	}
	return opts, nil
}

// baseOptions reads a connection string (without credentials) into the driver's options, with
// spid's server selection and connect timeouts and appName app where the string sets none, and
// validates them. The driver's error may quote the string: callers say only that it is unusable.
func baseOptions(cs, app string) (*options.ClientOptions, error) {
	opts := options.Client().ApplyURI(cs)
	// The connection string's own timeouts (serverSelectionTimeoutMS, connectTimeoutMS) win.
	if opts.ServerSelectionTimeout == nil {
		opts.SetServerSelectionTimeout(selectTimeout)
	}
	if opts.ConnectTimeout == nil {
		opts.SetConnectTimeout(connectTimeout)
	}
	if opts.AppName == nil {
		opts.SetAppName(app)
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return opts, nil
}

// hostsOf returns the hosts of a connection string as written, without scheme, user,
// password, database or options: what messages may name. It does no I/O (a mongodb+srv://
// string gives its SRV name).
func hostsOf(cs string) string {
	if i := strings.Index(cs, "://"); i >= 0 {
		cs = cs[i+3:]
	}
	if i := strings.IndexAny(cs, "/?"); i >= 0 {
		cs = cs[:i]
	}
	if i := strings.LastIndex(cs, "@"); i >= 0 {
		cs = cs[i+1:]
	}
	return cs
}

// CopiesDocs says the sink keeps no document: WriteBatch returns only once its bulk writes are acknowledged and keeps nothing.
func (s *Sink) CopiesDocs() {}

// Flush has nothing to wait for: WriteBatch is synchronous.
func (s *Sink) Flush(context.Context) error { return nil }

// Close disconnects from the deployment.
func (s *Sink) Close() error {
	if s.client == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.client.Disconnect(ctx)
	s.client, s.coll = nil, nil
	for _, t := range s.targets {
		t.coll = nil
	}
	return err
}

func (s *Sink) connect() error {
	if s.client != nil {
		return nil
	}
	if err := s.provisionAtConnect(); err != nil {
		return err
	}
	opts, err := s.clientOptions()
	if err != nil {
		// The registry holds no credential in the string (the Admin API refuses them there) and
		// connError scrubs the password: the driver's reason (e.g. an SRV name that does not
		// resolve) may be shown.
		return s.connError(fmt.Errorf("the connection string cannot be used: %w", err))
	}
	cl, err := mongo.Connect(opts)
	if err != nil {
		return s.connError(err)
	}
	s.client = cl
	if s.spec.db != "" && s.spec.coll != "" {
		s.coll = cl.Database(s.spec.db).Collection(s.spec.coll)
	}
	return nil
}

// withID returns d with a new ObjectId as its first field, _id: $merge generates the _id of a
// document that has none (MongoDB manual, $merge, "on": with the default on _id, a results
// document without _id gets one generated), so an on that holds _id can match it.
func withID(d bson.Raw) bson.Raw {
	idx, b := bsoncore.AppendDocumentStart(make([]byte, 0, len(d)+17))
	b = bsoncore.AppendObjectIDElement(b, "_id", bson.NewObjectID())
	b = append(b, d[4:len(d)-1]...)
	b, _ = bsoncore.AppendDocumentEnd(b, idx)
	return b
}

// update is {op: fields}, fields being the document's fields but _id when on holds _id (the
// filter's equality gives it to an upserted document, and mongod refuses to set _id again on
// some versions); when nothing is left, {op: filter}, which changes nothing that matches.
func (s *Sink) update(op string, d bson.Raw, filter []byte) bson.Raw {
	fidx, fields := bsoncore.AppendDocumentStart(nil)
	n := 0
	elems, _ := d.Elements()
	for _, e := range elems {
		if s.spec.onID && e.Key() == "_id" {
			continue
		}
		fields = append(fields, e...)
		n++
	}
	fields, _ = bsoncore.AppendDocumentEnd(fields, fidx)
	if n == 0 {
		fields = filter
	}
	idx, b := bsoncore.AppendDocumentStart(nil)
	b = bsoncore.AppendDocumentElement(b, op, fields)
	b, _ = bsoncore.AppendDocumentEnd(b, idx)
	return b
}

func (s *Sink) deadLetter(d bson.Raw, reason string) bson.Raw {
	var meta bson.Raw
	if v, err := d.LookupErr(s.meta); err == nil {
		meta, _ = v.DocumentOK()
	}
	return pipeline.DeadLetter(nil, s.env.Processor, time.Now().UnixMilli(), "$merge", reason, d, meta, s.meta)
}

// connError is a failure of the whole batch: retryable, code 421 (StreamProcessorAtlasConnectionError),
// naming the deployment's hosts and the namespace, never a credential.
func (s *Sink) connError(err error) error {
	return s.connErrorNS(authz.Namespace{DB: s.spec.db, Coll: s.spec.coll}, err)
}

// connErrorNS is connError for the target ns.
func (s *Sink) connErrorNS(ns authz.Namespace, err error) error {
	if ns.DB == "" {
		// A dynamic target before any document named one.
		return &connectors.Error{Retryable: true, Code: connectors.CodeAtlasConnection,
			Err: fmt.Errorf("%s %s: %s", s.what, s.hosts, s.scrub(describeErr(err)))}
	}
	return &connectors.Error{Retryable: true, Code: connectors.CodeAtlasConnection,
		Err: fmt.Errorf("%s %s on %s: %s", s.what, ns, s.hosts, s.scrub(describeErr(err)))}
}

// scrub removes the connection's password from a message, should a driver message ever carry it.
func (s *Sink) scrub(msg string) string {
	for _, p := range []string{s.pass, s.executeAsPassword()} {
		if p != "" {
			msg = strings.ReplaceAll(msg, p, "[redacted]")
		}
	}
	return msg
}

// forgetStaleDecisions drops the execute-as decisions kept for dynamic targets once a custom
// role changed (env.RolesGeneration), so that each target is checked against the role as it now
// is before its next write: a revoked action turns the target's documents into dead-letter
// records from the next batch on. Called by WriteBatch's goroutine.
func (s *Sink) forgetStaleDecisions() {
	if s.env.RolesGeneration == nil {
		return
	}
	if g := s.env.RolesGeneration(); g != s.rolesGen {
		s.rolesGen = g
		for _, t := range s.targets {
			clear(t.allowed)
		}
	}
}

// executeAs checks the connection's execute-as role (BUILT_IN, or one of the project's custom
// roles through env.Roles; none are known when it is nil) for actions on ns.
func executeAs(env connectors.Env, cl *store.Cluster, ns authz.Namespace, actions ...authz.DBAction) error {
	roles := env.Roles
	if roles == nil {
		roles = func(string) (store.Role, bool) { return store.Role{}, false }
	}
	return authz.ExecuteAsAllows(cl.DBRoleToExecute, roles, ns, actions...)
}
