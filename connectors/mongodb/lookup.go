package mongodb

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/authz"
	"github.com/spi-streams/spi/bsoncheck"
	"github.com/spi-streams/spi/connectors"
	"github.com/spi-streams/spi/pipeline"
)

// findTimeout bounds one lookup's find, beyond server selection (selectTimeout).
const findTimeout = time.Minute

// Lookup reads the foreign collection of a $lookup or $cachedLookup stage ({from:
// {connectionName, db, coll}}, spec §3.4) with the connection's credentials, one find per
// call. It connects at its first find.
type Lookup struct {
	// s holds the connection's settings and client: its connection (connect, Close,
	// connError) is used, never its $merge writes.
	s *Sink
}

// NewLookup reads a Cluster connection and a lookup stage's from, and checks the connection's
// execute-as role (BUILT_IN, or custom through env.Roles) for the find action on {db, coll}
// (authz.LookupActions, spec §6.3); it does not connect. Errors are *connectors.Error with
// code 420 (StreamProcessorInvalidOptions): no Cluster settings, a db or coll MongoDB refuses
// (nsNameError), a role that may not find
// there (naming the role, the namespace and the action), a connection string the driver
// cannot read.
func NewLookup(env connectors.Env, l *pipeline.Lookup) (connectors.LookupReader, error) {
	c := env.Connection
	if c == nil || c.Cluster == nil {
		return nil, connectors.Invalid("%s.from.connectionName: connection has no Cluster settings", l.Stage)
	}
	if field, msg := nsNameError(l.DB, l.Coll); msg != "" {
		return nil, connectors.Invalid("%s.from.%s: %s", l.Stage, field, msg)
	}
	cl := c.Cluster
	ns := authz.Namespace{DB: l.DB, Coll: l.Coll}
	if err := executeAs(env, cl, ns, authz.LookupActions...); err != nil {
		return nil, connectors.Invalid("%s from %s through connection %q: %v", l.Stage, ns, c.Name, err)
	}
	s := &Sink{env: env, spec: mergeSpec{db: l.DB, coll: l.Coll}, cs: cl.ConnectionString, user: cl.Username, mech: cl.Mechanism,
		hosts: hostsOf(cl.ConnectionString), pass: cl.Password.Reveal(), what: l.Stage + " from"}
	if !strings.HasPrefix(s.cs, "mongodb+srv://") {
		if _, err := s.clientOptions(); err != nil {
			return nil, connectors.Invalid("%s: connection %q: connectionString (%s) is not a connection string the MongoDB driver can use", l.Stage, c.Name, s.hosts)
		}
	}
	return &Lookup{s: s}, nil
}

// Find runs one find with filter on the collection and returns the documents, each a copy
// checked as BSON. Every failure (connection, authentication, authorization, a cursor that
// breaks) is retryable with code 421, naming the deployment's hosts and the namespace, never
// a credential.
func (l *Lookup) Find(ctx context.Context, filter bson.Raw) ([]bson.Raw, error) {
	if err := l.s.connect(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, findTimeout)
	defer cancel()
	cur, err := l.s.coll.Find(ctx, filter)
	if err != nil {
		return nil, l.s.connError(err)
	}
	defer func() { _ = cur.Close(context.Background()) }()
	var docs []bson.Raw
	for cur.Next(ctx) {
		if err := bsoncheck.Validate(cur.Current); err != nil {
			return nil, l.s.connError(fmt.Errorf("the deployment returned a document that is not valid BSON: %w", err))
		}
		docs = append(docs, append(bson.Raw(nil), cur.Current...))
	}
	if err := cur.Err(); err != nil {
		return nil, l.s.connError(err)
	}
	return docs, nil
}

// Close disconnects from the deployment.
func (l *Lookup) Close() error { return l.s.Close() }
