package mongodb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/spi-streams/spi/authz"
	"github.com/spi-streams/spi/connectors"
	"github.com/spi-streams/spi/pipeline"
)

// maxTimeSeriesDoc is the largest document $emit writes to a time series collection: 4 MB
// (spec §3.8, "$emit — Atlas time series": "4 MB doc limit"); a larger one is a dead letter.
const maxTimeSeriesDoc = 4 << 20

// maxBucketSeconds is the largest bucketMaxSpanSeconds and bucketRoundingSeconds MongoDB accepts:
// one year (MongoDB manual, "Time Series": "Set Granularity for Time Series Data").
const maxBucketSeconds = 31_536_000

// tsSpec is an $emit's timeseries document: the options of MongoDB's create command for a time
// series collection (MongoDB manual, "create": timeseries).
type tsSpec struct {
	db, coll    string
	timeField   string
	metaField   string
	granularity string // "seconds", "minutes", "hours", or "" for bucket seconds or the default
	// bucketMaxSpanSeconds and bucketRoundingSeconds: equal when set (MongoDB 6.3+), 0 when not.
	bucketMaxSpan, bucketRounding int64
}

// parseTimeSeries reads {connectionName, db, coll, timeseries: {timeField, metaField,
// granularity, bucketMaxSpanSeconds, bucketRoundingSeconds}}. Errors are 420s naming the field.
func parseTimeSeries(opts bson.Raw) (tsSpec, error) {
	var t tsSpec
	for _, f := range []string{"db", "coll"} {
		v := opts.Lookup(f)
		s, ok := v.StringValueOK()
		switch {
		case !ok && v.Type != 0, ok && strings.HasPrefix(s, "$"):
			return t, connectors.Invalid("$emit.%s: an expression is not supported yet by spid's time series $emit; give a name", f)
		case s == "":
			return t, connectors.Invalid("$emit.%s: is required with timeseries, a non-empty string", f)
		}
		if f == "db" {
			t.db = s
		} else {
			t.coll = s
		}
	}
	if field, msg := nsNameError(t.db, t.coll); msg != "" {
		return t, connectors.Invalid("$emit.%s: %s", field, msg)
	}
	ts, ok := opts.Lookup("timeseries").DocumentOK()
	if !ok {
		return t, connectors.Invalid("$emit.timeseries: is required with db and coll, a document")
	}
	elems, err := ts.Elements()
	if err != nil {
		return t, connectors.Invalid("$emit.timeseries: %v", err)
	}
	for _, e := range elems {
		k, v := e.Key(), e.Value()
		switch k {
		case "timeField", "metaField", "granularity":
			s, ok := v.StringValueOK()
			if !ok || s == "" {
				return t, connectors.Invalid("$emit.timeseries.%s: must be a non-empty string", k)
			}
			if k != "granularity" && (strings.HasPrefix(s, "$") || strings.Contains(s, ".")) {
				return t, connectors.Invalid("$emit.timeseries.%s: %q must be a top-level field name, without '$' or '.'", k, s)
			}
			switch k {
			case "timeField":
				t.timeField = s
			case "metaField":
				t.metaField = s
			default:
				if s != "seconds" && s != "minutes" && s != "hours" {
					return t, connectors.Invalid("$emit.timeseries.granularity: must be seconds, minutes or hours, not %q", s)
				}
				t.granularity = s
			}
		case "bucketMaxSpanSeconds", "bucketRoundingSeconds":
			n, ok := v.AsInt64OK()
			if !ok || n < 1 || n > maxBucketSeconds {
				return t, connectors.Invalid("$emit.timeseries.%s: must be a whole number of seconds from 1 to %d", k, maxBucketSeconds)
			}
			if k == "bucketMaxSpanSeconds" {
				t.bucketMaxSpan = n
			} else {
				t.bucketRounding = n
			}
		default:
			return t, connectors.Invalid("$emit.timeseries.%s: is not a time series option (timeField, metaField, granularity, bucketMaxSpanSeconds, bucketRoundingSeconds)", k)
		}
	}
	switch {
	case t.timeField == "":
		return t, connectors.Invalid("$emit.timeseries.timeField: is required")
	case t.timeField == t.metaField:
		return t, connectors.Invalid("$emit.timeseries.metaField: must differ from timeField")
	case t.bucketMaxSpan != t.bucketRounding:
		return t, connectors.Invalid("$emit.timeseries.bucketRoundingSeconds: must equal bucketMaxSpanSeconds, and both be given")
	case t.bucketMaxSpan != 0 && t.granularity != "":
		return t, connectors.Invalid("$emit.timeseries.granularity: cannot be combined with bucketMaxSpanSeconds and bucketRoundingSeconds")
	}
	return t, nil
}

// createOptions are the create command's options for the collection.
func (t tsSpec) createOptions() *options.CreateCollectionOptionsBuilder {
	o := options.TimeSeries().SetTimeField(t.timeField)
	if t.metaField != "" {
		o.SetMetaField(t.metaField)
	}
	if t.granularity != "" {
		o.SetGranularity(t.granularity)
	}
	if t.bucketMaxSpan != 0 {
		o.SetBucketMaxSpan(time.Duration(t.bucketMaxSpan) * time.Second).SetBucketRounding(time.Duration(t.bucketRounding) * time.Second)
	}
	return options.CreateCollection().SetTimeSeriesOptions(o)
}

// TimeSeries is an $emit into a time series collection of a MongoDB deployment (spec §3.8,
// "$emit — Atlas time series"). At its first write it creates the collection with the stage's
// timeseries options if the database has no collection of that name, and refuses one that is
// not a time series collection. Each document is inserted as it is, with unordered InsertMany.
// Delivery is at-least-once (spec §4.4): a time series collection has no unique index, so a
// replay after a crash inserts the replayed documents again.
type TimeSeries struct {
	// s holds the connection's settings and client: its connection (connect, Close,
	// connError) is used, never its $merge writes.
	s     *Sink
	ts    tsSpec
	ready bool // the collection exists as a time series collection
	log   *slog.Logger
}

// newTimeSeries reads an $emit with db, coll and timeseries on a Cluster connection, and checks
// the connection's execute-as role for insert and createCollection on db.coll
// (authz.ExecuteAsAllows). It does not connect. Errors are 420s (connectors.Invalid).
func newTimeSeries(env connectors.Env, sink *pipeline.Sink) (connectors.Sink, error) {
	c := env.Connection
	ts, err := parseTimeSeries(sink.Options)
	if err != nil {
		return nil, err
	}
	cl := c.Cluster
	ns := authz.Namespace{DB: ts.db, Coll: ts.coll}
	if err := executeAs(env, cl, ns, authz.Insert, authz.CreateCollection); err != nil {
		return nil, connectors.Invalid("$emit to time series collection %s through connection %q: %v", ns, c.Name, err)
	}
	s := &Sink{env: env, spec: mergeSpec{db: ts.db, coll: ts.coll}, cs: cl.ConnectionString, user: cl.Username, mech: cl.Mechanism,
		hosts: hostsOf(cl.ConnectionString), pass: cl.Password.Reveal(), meta: env.StreamMetaField, what: "$emit to time series collection"}
	if s.meta == "" {
		s.meta = "_stream_meta"
	}
	if !strings.HasPrefix(s.cs, "mongodb+srv://") {
		if _, err := s.clientOptions(); err != nil {
			return nil, connectors.Invalid("connection %q: connectionString (%s) is not a connection string the MongoDB driver can use", c.Name, s.hosts)
		}
	}
	log := env.Logger
	if log == nil {
		log = slog.Default()
	}
	return &TimeSeries{s: s, ts: ts, log: log.With("workspace", env.Workspace, "processor", env.Processor, "timeseries", ns.String())}, nil
}

// CopiesDocs says the sink keeps no document once WriteBatch returns.
func (t *TimeSeries) CopiesDocs() {}

// Flush has nothing to wait for: WriteBatch is synchronous.
func (t *TimeSeries) Flush(context.Context) error { return nil }

// Close disconnects from the deployment.
func (t *TimeSeries) Close() error { return t.s.Close() }

// ensure creates the time series collection if the database has no collection of its name.
// A collection of that name that is not a time series collection, or one whose timeField is
// another, fails the processor (code 420, not retried); so does a deployment that refuses to
// create it (FerretDB 1.x has no time series collections). A connection failure is a retryable
// 421.
func (t *TimeSeries) ensure(ctx context.Context) error {
	if t.ready {
		return nil
	}
	db := t.s.client.Database(t.ts.db)
	specs, err := db.ListCollectionSpecifications(ctx, bson.D{{Key: "name", Value: t.ts.coll}})
	if err != nil {
		return t.s.connError(err)
	}
	if len(specs) == 0 {
		err := db.CreateCollection(ctx, t.ts.coll, t.ts.createOptions())
		var ce mongo.CommandError
		switch {
		case err == nil:
		case errors.As(err, &ce) && ce.Code == 48: // NamespaceExists: created meanwhile; checked below
			return t.ensure(ctx)
		case errors.As(err, &ce) && !authCode(ce.Code):
			return &connectors.Error{Code: connectors.CodeInvalidOptions, Err: fmt.Errorf("%s %s on %s: the deployment refused to create it: %s (code %d)",
				t.s.what, t.ns(), t.s.hosts, t.s.scrub(ce.Message), ce.Code)}
		default:
			return t.s.connError(err)
		}
		t.log.Info("created the time series collection", "timeField", t.ts.timeField, "metaField", t.ts.metaField)
		t.ready = true
		return nil
	}
	sp := specs[0]
	var tf string
	if o, err := sp.Options.LookupErr("timeseries", "timeField"); err == nil {
		tf, _ = o.StringValueOK()
	}
	switch {
	case sp.Type != "timeseries":
		return &connectors.Error{Code: connectors.CodeInvalidOptions, Err: fmt.Errorf("%s %s on %s: the collection exists and is not a time series collection (type %q); $emit writes only to a time series collection, and $merge to other collections",
			t.s.what, t.ns(), t.s.hosts, sp.Type)}
	case tf != t.ts.timeField:
		return &connectors.Error{Code: connectors.CodeInvalidOptions, Err: fmt.Errorf("%s %s on %s: the collection's timeField is %q, not the stage's %q",
			t.s.what, t.ns(), t.s.hosts, tf, t.ts.timeField)}
	}
	t.ready = true
	return nil
}

func (t *TimeSeries) ns() string { return t.ts.db + "." + t.ts.coll }

// authCode says whether a command error code is an authentication or authorization failure:
// Unauthorized (13) or AuthenticationFailed (18).
func authCode(code int32) bool { return code == 13 || code == 18 }

// check returns why d cannot go to the collection, or "": over 4 MB, or no date in timeField
// (MongoDB manual, "Time Series": the timeField must hold a BSON date).
func (t *TimeSeries) check(d bson.Raw) string {
	if len(d) > maxTimeSeriesDoc {
		return fmt.Sprintf("document of %d bytes is over the 4 MB limit of a time series $emit", len(d))
	}
	v, err := d.LookupErr(t.ts.timeField)
	if err != nil {
		return fmt.Sprintf("timeField %q is missing; a time series collection needs a date there", t.ts.timeField)
	}
	if v.Type != bson.TypeDateTime {
		return fmt.Sprintf("timeField %q is %s, not a date", t.ts.timeField, v.Type)
	}
	return ""
}

// WriteBatch inserts docs with unordered InsertMany and returns once they are acknowledged. A
// document over 4 MB or without a date in timeField, and a document the deployment refuses for
// its own sake, is returned as a dead-letter record; a connection, authentication,
// authorization or write-concern failure fails the batch (retryable, code 421), naming the
// deployment's hosts and the namespace, never a credential.
func (t *TimeSeries) WriteBatch(ctx context.Context, docs []bson.Raw) (rejected []bson.Raw, err error) {
	if len(docs) == 0 {
		return nil, nil
	}
	if err := t.s.connect(); err != nil {
		return nil, err
	}
	if err := t.ensure(ctx); err != nil {
		return nil, err
	}
	var pending []any
	var sent []bson.Raw
	for _, d := range docs {
		if reason := t.check(d); reason != "" {
			rejected = append(rejected, t.deadLetter(d, reason))
			continue
		}
		pending = append(pending, d)
		sent = append(sent, d)
	}
	if len(pending) == 0 {
		return rejected, nil
	}
	_, err = t.s.coll.InsertMany(ctx, pending, options.InsertMany().SetOrdered(false))
	if err == nil {
		return rejected, nil
	}
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 || authError(bwe) {
		return nil, t.s.connError(err)
	}
	// An unordered insert goes on past a refused document (MongoDB manual, "insert": ordered),
	// so each write error names one document that was not written; the rest were.
	seen := map[int]bool{}
	for _, we := range bwe.WriteErrors {
		if we.Index < 0 || we.Index >= len(sent) || seen[we.Index] {
			return nil, t.s.connError(err)
		}
		seen[we.Index] = true
		rejected = append(rejected, t.deadLetter(sent[we.Index], fmt.Sprintf("the deployment refused the document: %s (code %d)", t.s.scrub(we.Message), we.Code)))
	}
	return rejected, nil
}

func (t *TimeSeries) deadLetter(d bson.Raw, reason string) bson.Raw {
	var meta bson.Raw
	if v, err := d.LookupErr(t.s.meta); err == nil {
		meta, _ = v.DocumentOK()
	}
	return pipeline.DeadLetter(nil, t.s.env.Processor, time.Now().UnixMilli(), "$emit", reason, d, meta, t.s.meta)
}
