package mongodb

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/spi-streams/spi/connectors"
	"github.com/spi-streams/spi/pipeline"
	"github.com/spi-streams/spi/store"
)

func emitTS(t *testing.T, ts bson.D, extra ...bson.E) *pipeline.Sink {
	opts := bson.D{{Key: "connectionName", Value: "c"}, {Key: "db", Value: "metrics"}, {Key: "coll", Value: "solar"}, {Key: "timeseries", Value: ts}}
	return &pipeline.Sink{Stage: "$emit", ConnectionName: "c", Options: raw(t, append(opts, extra...))}
}

// Each refusal of a time series $emit is a 420 that names the field and the reason.
func TestTimeSeriesRefusals(t *testing.T) {
	for _, tc := range []struct {
		ts   bson.D
		opts []bson.E
		want string
	}{
		{bson.D{}, nil, "$emit.timeseries.timeField: is required"},
		{bson.D{{Key: "timeField", Value: 1}}, nil, "$emit.timeseries.timeField: must be a non-empty string"},
		{bson.D{{Key: "timeField", Value: "a.b"}}, nil, "$emit.timeseries.timeField: \"a.b\" must be a top-level field name"},
		{bson.D{{Key: "timeField", Value: "t"}, {Key: "metaField", Value: "t"}}, nil, "$emit.timeseries.metaField: must differ from timeField"},
		{bson.D{{Key: "timeField", Value: "t"}, {Key: "granularity", Value: "days"}}, nil, "$emit.timeseries.granularity: must be seconds, minutes or hours"},
		{bson.D{{Key: "timeField", Value: "t"}, {Key: "bucketMaxSpanSeconds", Value: 60}}, nil, "$emit.timeseries.bucketRoundingSeconds: must equal bucketMaxSpanSeconds"},
		{bson.D{{Key: "timeField", Value: "t"}, {Key: "bucketMaxSpanSeconds", Value: 0}, {Key: "bucketRoundingSeconds", Value: 0}}, nil, "$emit.timeseries.bucketMaxSpanSeconds: must be a whole number of seconds from 1"},
		{bson.D{{Key: "timeField", Value: "t"}, {Key: "granularity", Value: "hours"}, {Key: "bucketMaxSpanSeconds", Value: 60}, {Key: "bucketRoundingSeconds", Value: 60}}, nil, "$emit.timeseries.granularity: cannot be combined"},
		{bson.D{{Key: "timeField", Value: "t"}, {Key: "expireAfterSeconds", Value: 60}}, nil, "$emit.timeseries.expireAfterSeconds: is not a time series option"},
		{bson.D{{Key: "timeField", Value: "t"}}, []bson.E{{Key: "coll", Value: bson.D{{Key: "$concat", Value: bson.A{"a", "$b"}}}}}, "$emit.coll: an expression is not supported yet"},
		{bson.D{{Key: "timeField", Value: "t"}}, []bson.E{{Key: "db", Value: "a.b"}}, "$emit.db: \"a.b\" is not a valid database name"},
		{bson.D{{Key: "timeField", Value: "t"}}, []bson.E{{Key: "db", Value: "$db"}}, "$emit.db: an expression is not supported yet"},
		{bson.D{{Key: "timeField", Value: "t"}}, []bson.E{{Key: "coll", Value: "c$d"}}, "$emit.coll: \"c$d\" is not a valid collection name: MongoDB refuses $"},
		{bson.D{{Key: "timeField", Value: "t"}}, []bson.E{{Key: "coll", Value: "system.x"}}, "$emit.coll: \"system.x\" is not a valid collection name: the system. prefix"},
	} {
		st := emitTS(t, tc.ts)
		if tc.opts != nil {
			// A later duplicate key would be ignored by Lookup: rebuild with the override.
			opts := bson.D{{Key: "connectionName", Value: "c"}, {Key: "db", Value: "metrics"}, {Key: "coll", Value: "solar"}, {Key: "timeseries", Value: tc.ts}}
			for _, o := range tc.opts {
				for i := range opts {
					if opts[i].Key == o.Key {
						opts[i].Value = o.Value
					}
				}
			}
			st.Options = raw(t, opts)
		}
		_, err := NewSink(env("readWriteAnyDatabase", "BUILT_IN"), st)
		var ce *connectors.Error
		if !errors.As(err, &ce) || ce.Code != connectors.CodeInvalidOptions || ce.Retryable || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: %v, want 420 with %q", tc.ts, tc.opts, err, tc.want)
		}
	}
}

// The execute-as role must allow insert and createCollection on the target: readAnyDatabase
// may not; a custom role with INSERT alone may not (no CREATE_COLLECTION); readWriteAnyDatabase,
// atlasAdmin and a custom role with both may. The denial names the role, the namespace and the
// missing action, never the connection's password.
func TestTimeSeriesExecuteAs(t *testing.T) {
	metrics := []store.Resource{{DB: "metrics"}}
	roles := map[string]store.Role{
		"inserter": {Name: "inserter", Actions: []store.RoleAction{{Action: "INSERT", Resources: metrics}}},
		"tsWriter": {Name: "tsWriter", Actions: []store.RoleAction{{Action: "INSERT", Resources: metrics}, {Action: "CREATE_COLLECTION", Resources: metrics}}},
	}
	custom := func(role string) connectors.Env {
		e := env(role, "CUSTOM")
		e.Roles = func(name string) (store.Role, bool) { r, ok := roles[name]; return r, ok }
		return e
	}
	ts := bson.D{{Key: "timeField", Value: "t"}}
	for _, e := range []connectors.Env{env("readAnyDatabase", "BUILT_IN"), custom("inserter")} {
		_, err := NewSink(e, emitTS(t, ts))
		var ce *connectors.Error
		if !errors.As(err, &ce) || ce.Code != connectors.CodeInvalidOptions || !strings.Contains(err.Error(), "metrics.solar") ||
			!strings.Contains(err.Error(), e.Connection.Cluster.DBRoleToExecute.Role) || strings.Contains(err.Error(), "s3cr3t-pw") {
			t.Errorf("%s: %v, want a 420 denial naming metrics.solar and the role", e.Connection.Cluster.DBRoleToExecute.Role, err)
		}
	}
	if _, err := NewSink(custom("inserter"), emitTS(t, ts)); err == nil || !strings.Contains(err.Error(), "CREATE_COLLECTION") {
		t.Errorf("inserter: %v, want the missing CREATE_COLLECTION named", err)
	}
	for _, e := range []connectors.Env{env("readWriteAnyDatabase", "BUILT_IN"), env("atlasAdmin", "BUILT_IN"), custom("tsWriter")} {
		if _, err := NewSink(e, emitTS(t, ts)); err != nil {
			t.Errorf("%s: %v", e.Connection.Cluster.DBRoleToExecute.Role, err)
		}
	}
}

// The create command's options follow the stage's timeseries document.
func TestTimeSeriesCreateOptions(t *testing.T) {
	built := func(ts bson.D) *options.TimeSeriesOptions {
		t.Helper()
		s, err := NewSink(env("readWriteAnyDatabase", "BUILT_IN"), emitTS(t, ts))
		if err != nil {
			t.Fatal(err)
		}
		var o options.CreateCollectionOptions
		for _, set := range s.(*TimeSeries).ts.createOptions().Opts {
			if err := set(&o); err != nil {
				t.Fatal(err)
			}
		}
		if o.TimeSeriesOptions == nil {
			t.Fatal("no time series options")
		}
		var got options.TimeSeriesOptions
		for _, set := range o.TimeSeriesOptions.Opts {
			if err := set(&got); err != nil {
				t.Fatal(err)
			}
		}
		return &got
	}
	o := built(bson.D{{Key: "timeField", Value: "t"}, {Key: "metaField", Value: "m"}, {Key: "granularity", Value: "minutes"}})
	if o.TimeField != "t" || o.MetaField == nil || *o.MetaField != "m" || o.Granularity == nil || *o.Granularity != "minutes" || o.BucketMaxSpan != nil {
		t.Errorf("options %+v", o)
	}
	o = built(bson.D{{Key: "timeField", Value: "t"}, {Key: "bucketMaxSpanSeconds", Value: int32(300)}, {Key: "bucketRoundingSeconds", Value: int64(300)}})
	if o.TimeField != "t" || o.MetaField != nil || o.Granularity != nil || o.BucketMaxSpan == nil || *o.BucketMaxSpan != 300*time.Second ||
		o.BucketRounding == nil || *o.BucketRounding != 300*time.Second {
		t.Errorf("options %+v", o)
	}
}

// A document without a date in timeField, or over 4 MB, is a dead letter; a date passes.
func TestTimeSeriesCheck(t *testing.T) {
	s, err := NewSink(env("readWriteAnyDatabase", "BUILT_IN"), emitTS(t, bson.D{{Key: "timeField", Value: "t"}}))
	if err != nil {
		t.Fatal(err)
	}
	ts := s.(*TimeSeries)
	now := bson.NewDateTimeFromTime(time.Now())
	for _, tc := range []struct {
		doc  bson.D
		want string
	}{
		{bson.D{{Key: "t", Value: now}, {Key: "v", Value: 1}}, ""},
		{bson.D{{Key: "v", Value: 1}}, `timeField "t" is missing`},
		{bson.D{{Key: "t", Value: "2026-11-30"}}, `timeField "t" is string, not a date`},
		{bson.D{{Key: "t", Value: now}, {Key: "big", Value: strings.Repeat("x", maxTimeSeriesDoc)}}, "over the 4 MB limit"},
	} {
		if got := ts.check(raw(t, tc.doc)); (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("check: %q, want %q", got, tc.want)
		}
	}
	dl := ts.deadLetter(raw(t, bson.D{{Key: "v", Value: 1}}), "why")
	if op, _ := dl.Lookup("operatorName").StringValueOK(); op != "$emit" {
		t.Errorf("dead letter %s", dl)
	}
	if r, _ := dl.Lookup("errInfo", "reason").StringValueOK(); r != "why" {
		t.Errorf("dead letter %s", dl)
	}
}
