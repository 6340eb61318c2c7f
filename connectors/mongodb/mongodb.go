// Package mongodb is the Cluster connection type (spec §7): a $merge sink that writes to a
// MongoDB deployment with the Go driver, under the connection's execute-as role (spec §6.3).
//
// This first increment supports $merge (spec §3.8) with a static into.db and into.coll; on as a
// field or an array of fields (default _id); whenMatched merge (default), replace or
// keepExisting; whenNotMatched insert (default) or discard. Everything else — dynamic targets,
// whenMatched fail, delete or a pipeline, whenNotMatched fail or an expression, let,
// parallelism above 1, $emit to a time-series collection — is refused at create with code 420
// (StreamProcessorInvalidOptions) saying it is not supported yet. The execute-as role may be
// BUILT_IN or one of the project's CUSTOM roles (read through connectors.Env.Roles).
//
// Each WriteBatch is one or more unordered bulk writes, synchronous, keyed by the on fields, so
// a batch that returns is acknowledged and a replayed batch leaves the same collection
// (idempotent). Semantics follow MongoDB's $merge manual page: the on fields must be present in
// each document (not null, not an array); a document that lacks one, or that the deployment
// refuses (duplicate key, too large), becomes a dead-letter record.
package mongodb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/spi-streams/spi/authz"
	"github.com/spi-streams/spi/connectors"
	"github.com/spi-streams/spi/pipeline"
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

// mergeSpec is a $merge stage as this increment supports it.
type mergeSpec struct {
	db, coll       string
	on             []string
	onID           bool // on includes _id
	whenMatched    string
	whenNotMatched string
}

// parseMerge reads the $merge options pipeline.parseMerge has already checked for shape, and
// refuses what this connector does not support yet.
func parseMerge(opts bson.Raw) (mergeSpec, error) {
	var m mergeSpec
	into, _ := opts.Lookup("into").DocumentOK()
	for _, f := range []struct {
		name string
		dst  *string
	}{{"db", &m.db}, {"coll", &m.coll}} {
		v := into.Lookup(f.name)
		s, ok := v.StringValueOK()
		if !ok || strings.HasPrefix(s, "$") {
			return m, connectors.Invalid("$merge.into.%s: a dynamic target (an expression) is not supported yet by spid's Cluster connection; give a name", f.name)
		}
		if s == "" {
			return m, connectors.Invalid("$merge.into.%s: is required", f.name)
		}
		*f.dst = s
	}
	if strings.ContainsAny(m.db, "/\\. \"$\x00") {
		return m, connectors.Invalid("$merge.into.db: %q is not a valid database name", m.db)
	}
	if strings.ContainsRune(m.coll, 0) || strings.HasPrefix(m.coll, "system.") {
		return m, connectors.Invalid("$merge.into.coll: %q is not a collection $merge may write to", m.coll)
	}
	m.on = []string{"_id"}
	if v, err := opts.LookupErr("on"); err == nil {
		switch v.Type {
		case bson.TypeString:
			m.on = []string{v.StringValue()}
		case bson.TypeArray:
			vals, _ := v.Array().Values()
			m.on = m.on[:0]
			for _, f := range vals {
				m.on = append(m.on, f.StringValue())
			}
		}
	}
	seen := map[string]bool{}
	for _, f := range m.on {
		if f == "" || strings.HasPrefix(f, "$") || strings.Contains(f, "..") || strings.HasPrefix(f, ".") || strings.HasSuffix(f, ".") {
			return m, connectors.Invalid("$merge.on: %q is not a field path", f)
		}
		if seen[f] {
			return m, connectors.Invalid("$merge.on: field %q is named twice", f)
		}
		seen[f] = true
		if f == "_id" {
			m.onID = true
		}
	}
	m.whenMatched, m.whenNotMatched = "merge", "insert"
	if v, err := opts.LookupErr("whenMatched"); err == nil {
		s, ok := v.StringValueOK()
		switch {
		case !ok:
			return m, connectors.Invalid("$merge.whenMatched: a pipeline or an expression is not supported yet by spid's Cluster connection; use merge, replace or keepExisting")
		case s == "merge", s == "replace", s == "keepExisting":
			m.whenMatched = s
		default:
			return m, connectors.Invalid("$merge.whenMatched: %q is not supported yet by spid's Cluster connection; use merge, replace or keepExisting", s)
		}
	}
	if v, err := opts.LookupErr("whenNotMatched"); err == nil {
		s, ok := v.StringValueOK()
		switch {
		case !ok:
			return m, connectors.Invalid("$merge.whenNotMatched: an expression is not supported yet by spid's Cluster connection; use insert or discard")
		case s == "insert", s == "discard":
			m.whenNotMatched = s
		default:
			return m, connectors.Invalid("$merge.whenNotMatched: %q is not supported yet by spid's Cluster connection; use insert or discard", s)
		}
	}
	if m.whenMatched == "keepExisting" && m.whenNotMatched == "discard" {
		// mongod refuses this combination too (its merge strategies have no keepExisting/discard:
		// it would never write anything).
		return m, connectors.Invalid("$merge: whenMatched keepExisting with whenNotMatched discard is not a supported combination (it never writes); MongoDB's $merge refuses it too")
	}
	if _, err := opts.LookupErr("let"); err == nil {
		return m, connectors.Invalid("$merge.let: is not supported yet by spid's Cluster connection")
	}
	if v, err := opts.LookupErr("parallelism"); err == nil {
		if n, ok := v.AsInt64OK(); !ok || n != 1 {
			return m, connectors.Invalid("$merge.parallelism: values above 1 are not supported yet by spid's Cluster connection")
		}
	}
	return m, nil
}

// Sink is a $merge into one collection of a MongoDB deployment. It connects at its first write.
type Sink struct {
	env   connectors.Env
	spec  mergeSpec
	cs    string // the connection string, without credentials (the Admin API refuses them in it)
	user  string
	mech  string
	pass  string // the password; scrubbed from any message
	hosts string // for messages: the deployment's hosts, never a credential
	meta  string
	what  string // what writes, for messages: "$merge into", "dead-letter queue"

	client *mongo.Client
	coll   *mongo.Collection
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
	if sink.Stage != "$merge" {
		return nil, connectors.Invalid("%s to a Cluster connection is not supported yet by spid; use $merge", sink.Stage)
	}
	spec, err := parseMerge(sink.Options)
	if err != nil {
		return nil, err
	}
	cl := c.Cluster
	ns := authz.Namespace{DB: spec.db, Coll: spec.coll}
	if err := executeAs(env, cl, ns, authz.MergeActions(spec.whenMatched, spec.whenNotMatched)...); err != nil {
		return nil, connectors.Invalid("$merge into %s through connection %q: %v", ns, c.Name, err)
	}
	s := &Sink{env: env, spec: spec, cs: cl.ConnectionString, user: cl.Username, mech: cl.Mechanism, hosts: hostsOf(cl.ConnectionString),
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
	opts := options.Client().ApplyURI(s.cs)
	// The connection string's own timeouts (serverSelectionTimeoutMS, connectTimeoutMS) win.
	if opts.ServerSelectionTimeout == nil {
		opts.SetServerSelectionTimeout(selectTimeout)
	}
	if opts.ConnectTimeout == nil {
		opts.SetConnectTimeout(connectTimeout)
	}
	if opts.AppName == nil {
		opts.SetAppName("spi")
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if s.user != "" {
		cred := options.Credential{Username: s.user, Password: s.pass, AuthMechanism: s.mech}
		if opts.Auth != nil {
			cred.AuthSource = opts.Auth.AuthSource
		}
		opts.SetAuth(cred)
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
	return err
}

func (s *Sink) connect() error {
	if s.client != nil {
		return nil
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
	s.coll = cl.Database(s.spec.db).Collection(s.spec.coll)
	return nil
}

// WriteBatch writes docs with unordered bulk writes and returns once they are acknowledged.
// Documents that cannot be written for a reason of their own are returned as dead-letter
// records; a connection, authentication or write-concern failure fails the whole batch
// (retryable, code 421).
func (s *Sink) WriteBatch(ctx context.Context, docs []bson.Raw) (rejected []bson.Raw, err error) {
	if len(docs) == 0 {
		return nil, nil
	}
	if err := s.connect(); err != nil {
		return nil, err
	}
	rounds, rejected := s.plan(docs)
	for _, r := range rounds {
		dead, err := s.writeRound(ctx, r)
		if err != nil {
			return nil, err
		}
		rejected = append(rejected, dead...)
	}
	return rejected, nil
}

// writeRound sends one round as an unordered bulk write. The writes the deployment refuses for
// the document's own sake become dead letters, and the others are sent again: some servers
// (FerretDB 1.x) stop an unordered update batch at its first error without saying which writes
// they skipped, and every write here is idempotent, so sending one that was applied again
// changes nothing. Each pass removes at least one write, so it ends.
func (s *Sink) writeRound(ctx context.Context, r round) (rejected []bson.Raw, err error) {
	for len(r.models) > 0 {
		_, err := s.coll.BulkWrite(ctx, r.models, options.BulkWrite().SetOrdered(false))
		if err == nil {
			return rejected, nil
		}
		var bwe mongo.BulkWriteException
		if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 || authError(bwe) {
			return nil, s.connError(err)
		}
		failed := map[int]bool{}
		for _, we := range bwe.WriteErrors {
			if we.Index < 0 || we.Index >= len(r.docs) || failed[we.Index] {
				return nil, s.connError(err)
			}
			failed[we.Index] = true
			rejected = append(rejected, s.deadLetter(r.docs[we.Index], fmt.Sprintf("$merge into %s.%s: write refused by the deployment: %s (code %d)", s.spec.db, s.spec.coll, s.scrub(we.Message), we.Code)))
		}
		var next round
		for i := range r.models {
			if !failed[i] {
				next.models = append(next.models, r.models[i])
				next.docs = append(next.docs, r.docs[i])
			}
		}
		r = next
	}
	return rejected, nil
}

// authError says whether the write errors are the role's or user's lack of privilege
// (Unauthorized, 13), which fails the processor rather than the documents.
func authError(bwe mongo.BulkWriteException) bool {
	for _, we := range bwe.WriteErrors {
		if we.Code == 13 {
			return true
		}
	}
	return false
}

// round is a set of writes with distinct keys, sent as one unordered bulk write: a key that
// repeats within a batch starts a new round, so that the writes to one key apply in the
// batch's order whatever order the deployment applies an unordered batch in.
type round struct {
	models []mongo.WriteModel
	docs   []bson.Raw
}

// plan turns docs into rounds of write models and dead-letter records.
func (s *Sink) plan(docs []bson.Raw) (rounds []round, rejected []bson.Raw) {
	seen := map[string]int{} // key → index of the last round that writes it
	for _, d := range docs {
		model, key, reason := s.model(d)
		if reason != "" {
			rejected = append(rejected, s.deadLetter(d, reason))
			continue
		}
		if model == nil {
			continue
		}
		i := 0
		if last, ok := seen[key]; ok {
			i = last + 1
		}
		// Writes to other keys may join any round after the last one holding their key; the
		// earliest keeps rounds few.
		for i >= len(rounds) {
			rounds = append(rounds, round{})
		}
		rounds[i].models = append(rounds[i].models, model)
		rounds[i].docs = append(rounds[i].docs, d)
		seen[key] = i
	}
	return rounds, rejected
}

// model builds the write of one document: its filter on the on fields and the update the mode
// asks for (MongoDB manual, $merge): merge is {$set: doc}, replace a replacement, keepExisting
// {$setOnInsert: doc}; whenNotMatched insert makes it an upsert. key identifies the filter.
// A reason says why the document cannot be written.
func (s *Sink) model(d bson.Raw) (m mongo.WriteModel, key string, reason string) {
	if err := d.Validate(); err != nil {
		return nil, "", "$merge: the document is not valid BSON"
	}
	if len(d) > maxBSONSize {
		return nil, "", fmt.Sprintf("$merge into %s.%s: the document is %d bytes, over MongoDB's 16 MiB limit", s.spec.db, s.spec.coll, len(d))
	}
	if s.spec.onID {
		if _, err := d.LookupErr("_id"); err != nil {
			d = withID(d)
		}
	}
	fidx, filter := bsoncore.AppendDocumentStart(nil)
	var kb strings.Builder
	for _, f := range s.spec.on {
		v, err := d.LookupErr(strings.Split(f, ".")...)
		if err != nil || v.Type == bson.TypeNull || v.Type == bson.TypeUndefined || v.Type == bson.TypeArray {
			return nil, "", fmt.Sprintf("$merge into %s.%s: the document's on field %q must be present and must not be null or an array", s.spec.db, s.spec.coll, f)
		}
		filter = bsoncore.AppendValueElement(filter, f, bsoncore.Value{Type: bsoncore.Type(v.Type), Data: v.Value})
		kb.WriteString(f)
		kb.WriteByte(0)
		kb.WriteByte(byte(v.Type))
		kb.Write(v.Value)
	}
	filter, _ = bsoncore.AppendDocumentEnd(filter, fidx)
	upsert := s.spec.whenNotMatched == "insert"
	switch s.spec.whenMatched {
	case "replace":
		return mongo.NewReplaceOneModel().SetFilter(bson.Raw(filter)).SetReplacement(d).SetUpsert(upsert), kb.String(), ""
	case "keepExisting":
		return mongo.NewUpdateOneModel().SetFilter(bson.Raw(filter)).SetUpdate(s.update("$setOnInsert", d, filter)).SetUpsert(upsert), kb.String(), ""
	default: // merge
		return mongo.NewUpdateOneModel().SetFilter(bson.Raw(filter)).SetUpdate(s.update("$set", d, filter)).SetUpsert(upsert), kb.String(), ""
	}
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
	return &connectors.Error{Retryable: true, Code: connectors.CodeAtlasConnection,
		Err: fmt.Errorf("%s %s.%s on %s: %s", s.what, s.spec.db, s.spec.coll, s.hosts, s.scrub(err.Error()))}
}

// scrub removes the connection's password from a message, should a driver message ever carry it.
func (s *Sink) scrub(msg string) string {
	if s.pass != "" {
		msg = strings.ReplaceAll(msg, s.pass, "[redacted]")
	}
	return msg
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
