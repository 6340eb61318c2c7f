package mongodb

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/spi-streams/spi/authz"
	"github.com/spi-streams/spi/connectors"
	"github.com/spi-streams/spi/store"
)

// codeDuplicateKey is mongod's DuplicateKey (11000): an insert of an _id the collection holds.
const codeDuplicateKey = 11000

// DLQ writes a processor's dead-letter records (spec §4.5: {processorName, dlqTime,
// operatorName, errInfo: {reason}, doc, _stream_meta}) into the collection options.dlq names
// ({connectionName, db, coll}), through a Cluster connection. It connects at its first write.
type DLQ struct {
	// s holds the connection's settings and client: its connection (connect, Close,
	// connError) is used, never its $merge writes.
	s   *Sink
	log *slog.Logger
}

// NewDLQ reads a Cluster connection and a processor's options.dlq, and checks the connection's
// execute-as role against {db, coll} with authz.DeadLetterActions (insert; spec §6.3); it does
// not connect. Errors are *connectors.Error with code 420 (StreamProcessorInvalidOptions): no
// Cluster settings, a missing or invalid db or coll, a role (BUILT_IN or custom, through
// env.Roles) that does not allow inserts there, a connection string the driver cannot read.
func NewDLQ(env connectors.Env, dlq *store.DLQ) (connectors.Sink, error) {
	c := env.Connection
	if c == nil || c.Cluster == nil {
		return nil, connectors.Invalid("options.dlq: connection has no Cluster settings")
	}
	if dlq == nil || dlq.DB == "" || dlq.Coll == "" {
		return nil, connectors.Invalid("options.dlq: db and coll are required")
	}
	if field, msg := nsNameError(dlq.DB, dlq.Coll); msg != "" {
		return nil, connectors.Invalid("options.dlq.%s: %s", field, msg)
	}
	cl := c.Cluster
	ns := authz.Namespace{DB: dlq.DB, Coll: dlq.Coll}
	if err := executeAs(env, cl, ns, authz.DeadLetterActions...); err != nil {
		return nil, connectors.Invalid("options.dlq: dead-letter collection %s through connection %q: %v", ns, c.Name, err)
	}
	s := &Sink{env: env, spec: mergeSpec{db: dlq.DB, coll: dlq.Coll}, cs: cl.ConnectionString, user: cl.Username, mech: cl.Mechanism,
		hosts: hostsOf(cl.ConnectionString), pass: cl.Password.Reveal(), what: "dead-letter queue"}
	if !strings.HasPrefix(s.cs, "mongodb+srv://") {
		if _, err := s.clientOptions(); err != nil {
			return nil, connectors.Invalid("options.dlq: connection %q: connectionString (%s) is not a connection string the MongoDB driver can use", c.Name, s.hosts)
		}
	}
	log := env.Logger
	if log == nil {
		log = slog.Default()
	}
	return &DLQ{s: s, log: log.With("workspace", env.Workspace, "processor", env.Processor, "dlq", dlq.DB+"."+dlq.Coll)}, nil
}

// CopiesDocs says the writer keeps no record once WriteBatch returns.
func (d *DLQ) CopiesDocs() {}

// Flush has nothing to wait for: WriteBatch is synchronous.
func (d *DLQ) Flush(context.Context) error { return nil }

// Close disconnects from the deployment.
func (d *DLQ) Close() error { return d.s.Close() }

// WriteBatch inserts the dead-letter records as they are, each with a new ObjectId _id, with
// unordered InsertMany, and returns once they are acknowledged. A record the deployment refuses
// for its own sake (over MongoDB's 16 MiB maxBsonObjectSize, or any other write error but
// Unauthorized) is dropped with a warning log and returned as rejected; it is never retried. A
// connection, authentication, authorization or write-concern failure fails the batch with a
// retryable error, code 421 (StreamProcessorAtlasConnectionError), naming hosts and namespace.
func (d *DLQ) WriteBatch(ctx context.Context, docs []bson.Raw) (rejected []bson.Raw, err error) {
	if len(docs) == 0 {
		return nil, nil
	}
	if err := d.s.connect(); err != nil {
		return nil, err
	}
	var pending []any
	var recs []bson.Raw
	for _, doc := range docs {
		if len(doc) > maxBSONSize {
			d.log.Warn("dead-letter record dropped: over MongoDB's 16 MiB document limit", "bytes", len(doc))
			rejected = append(rejected, doc)
			continue
		}
		if _, err := doc.LookupErr("_id"); err != nil {
			// An _id of our own makes a second send of the same record a duplicate key,
			// which the loop below takes as written.
			doc = withID(doc)
		}
		pending = append(pending, doc)
		recs = append(recs, doc)
	}
	// Some servers (FerretDB 1.x) stop an unordered batch at its first error and report it at
	// index 0, so the indices of a batch's errors cannot be trusted: when a batch of more than
	// one record comes back with write errors, each record is sent again alone, and its own
	// answer decides. A duplicate key then means written if the collection holds the record's
	// _id (written by the batch), refused otherwise (another unique index).
	if len(pending) == 0 {
		return rejected, nil
	}
	unordered := options.InsertMany().SetOrdered(false)
	_, err = d.s.coll.InsertMany(ctx, pending, unordered)
	if err == nil {
		return rejected, nil
	}
	if !writeErrorsOnly(err) {
		return nil, d.s.connError(err)
	}
	if len(pending) == 1 {
		d.drop(err)
		return append(rejected, recs[0]), nil
	}
	var dups []int
	for i := range pending {
		_, err := d.s.coll.InsertMany(ctx, pending[i:i+1], unordered)
		switch {
		case err == nil:
		case !writeErrorsOnly(err):
			return nil, d.s.connError(err)
		case isDuplicateKey(err):
			dups = append(dups, i)
		default:
			d.drop(err)
			rejected = append(rejected, recs[i])
		}
	}
	if len(dups) > 0 {
		written, err := d.written(ctx, recs, dups)
		if err != nil {
			return nil, err
		}
		for _, i := range dups {
			if !written[i] {
				d.log.Warn("dead-letter record dropped: the deployment refused it as a duplicate key")
				rejected = append(rejected, recs[i])
			}
		}
	}
	return rejected, nil
}

// writeErrorsOnly says whether err is a bulk write's refusal of some of its records for their
// own sake: write errors, none of them Unauthorized, and no write concern error.
func writeErrorsOnly(err error) bool {
	var bwe mongo.BulkWriteException
	return errors.As(err, &bwe) && bwe.WriteConcernError == nil && len(bwe.WriteErrors) > 0 && !authError(bwe)
}

// isDuplicateKey says whether a bulk write of one record was refused with DuplicateKey.
func isDuplicateKey(err error) bool {
	var bwe mongo.BulkWriteException
	return errors.As(err, &bwe) && len(bwe.WriteErrors) == 1 && bwe.WriteErrors[0].Code == codeDuplicateKey
}

// drop logs the deployment's refusal of one record (err is a writeErrorsOnly error).
func (d *DLQ) drop(err error) {
	var bwe mongo.BulkWriteException
	errors.As(err, &bwe)
	we := bwe.WriteErrors[0]
	d.log.Warn("dead-letter record dropped: the deployment refused it", "reason", d.s.scrub(we.Message), "code", we.Code)
}

// written says which of recs[idx] the collection holds, by their _id: a duplicate key on a
// second send means written only if the _id is there (another unique index may refuse it).
func (d *DLQ) written(ctx context.Context, recs []bson.Raw, idx []int) (map[int]bool, error) {
	ids := bson.A{}
	for _, i := range idx {
		ids = append(ids, recs[i].Lookup("_id"))
	}
	cur, err := d.s.coll.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, d.s.connError(err)
	}
	defer func() { _ = cur.Close(ctx) }()
	found := map[string]bool{}
	for cur.Next(ctx) {
		v := cur.Current.Lookup("_id")
		found[string(v.Value)+string(rune(v.Type))] = true
	}
	if err := cur.Err(); err != nil {
		return nil, d.s.connError(err)
	}
	out := map[int]bool{}
	for _, i := range idx {
		v := recs[i].Lookup("_id")
		out[i] = found[string(v.Value)+string(rune(v.Type))]
	}
	return out, nil
}
