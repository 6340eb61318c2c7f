package e2e

import (
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// $emit to a time series collection through a Cluster connection, against embedded FerretDB,
// which has no time series collections (FerretDB 1.24 answers create {timeseries} with
// NotImplemented): what can be shown here is that spid asks the deployment to create the
// collection with the stage's options and fails the processor, without retrying, with a
// message naming the namespace, the deployment and its reason; that it refuses a collection
// that exists and is not a time series collection, leaving it untouched; and that an expression
// target or a role that may not create collections is refused at create. Writing into a time series collection needs a genuine MongoDB
// (README, "What is verified against FerretDB").
func TestEmitTimeSeriesFerretDB(t *testing.T) {
	t.Parallel()
	uri := startFerretDB(t)
	fc := connectFerret(t, uri)
	s := startSpid(t, "--checkpoint-interval", "300ms", "--processor-retry-timeout", "3s")
	a := newAPI(t, s.Creds(t))
	a.ok("POST", "/streams/default/connections", map[string]any{"name": "fdb", "type": "Cluster", "clusterName": "ferret", "connectionString": uri,
		"dbRoleToExecute": map[string]any{"role": "readWriteAnyDatabase", "type": "BUILT_IN"}})
	c := connectGo(t, s.Admin(t, "", ""))
	host := strings.TrimPrefix(strings.SplitN(uri, "/?", 2)[0], "mongodb://")
	host = strings.TrimSuffix(host, "/")

	// An existing regular collection is refused and left as it was.
	if _, err := fc.Database("metrics").Collection("plain").InsertOne(t.Context(), bson.D{{Key: "_id", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	input := bson.A{bson.D{{Key: "device", Value: "d1"}, {Key: "watts", Value: 5}}}
	for _, tc := range []struct{ coll, want string }{
		{"solar", "$emit to time series collection metrics.solar on " + host + ": the deployment refused to create it"},
		{"plain", "$emit to time series collection metrics.plain on " + host + ": the collection exists and is not a time series collection"},
	} {
		pipe := bson.A{
			bson.D{{Key: "$source", Value: bson.D{{Key: "documents", Value: input}}}},
			bson.D{{Key: "$emit", Value: bson.D{{Key: "connectionName", Value: "fdb"}, {Key: "db", Value: "metrics"}, {Key: "coll", Value: tc.coll},
				{Key: "timeseries", Value: bson.D{{Key: "timeField", Value: "_ts"}, {Key: "metaField", Value: "device"}, {Key: "granularity", Value: "seconds"}}}}}},
		}
		mustAdmin(t, c, bson.D{{Key: "createStreamProcessor", Value: tc.coll}, {Key: "pipeline", Value: pipe}})
		mustAdmin(t, c, bson.D{{Key: "startStreamProcessor", Value: tc.coll}})
		var code int32
		var msg string
		waitUntil(t, tc.coll+" FAILED", func() bool {
			var state string
			state, code, msg = processorState(t, c, tc.coll)
			return state == "FAILED"
		})
		if code != 420 || !strings.Contains(msg, tc.want) {
			t.Errorf("%s: errorCode %d, errorMsg %q; want 420 with %q", tc.coll, code, msg, tc.want)
		}
	}
	if got := collection(t, fc, "metrics", "plain"); len(got) != 1 || got[0] != `{"_id":1}` {
		t.Errorf("metrics.plain: %v", got)
	}
	names, err := fc.Database("metrics").ListCollectionNames(t.Context(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(names, ",") != "plain" {
		t.Errorf("collections of metrics: %v, want only plain", names)
	}

	// An expression as coll, and a role that may not create collections, are refused at create.
	for _, tc := range []struct {
		conn, want string
		coll       any
	}{
		{"fdb", "$emit.coll: an expression is not supported yet", bson.D{{Key: "$concat", Value: bson.A{"a", "$device"}}}},
		{"ro", "may not", "solar"},
	} {
		if tc.conn == "ro" {
			a.ok("POST", "/streams/default/connections", map[string]any{"name": "ro", "type": "Cluster", "clusterName": "ferret", "connectionString": uri,
				"dbRoleToExecute": map[string]any{"role": "readAnyDatabase", "type": "BUILT_IN"}})
		}
		pipe := bson.A{
			bson.D{{Key: "$source", Value: bson.D{{Key: "documents", Value: input}}}},
			bson.D{{Key: "$emit", Value: bson.D{{Key: "connectionName", Value: tc.conn}, {Key: "db", Value: "metrics"}, {Key: "coll", Value: tc.coll},
				{Key: "timeseries", Value: bson.D{{Key: "timeField", Value: "_ts"}}}}}},
		}
		_, err := runAdmin(t, c, bson.D{{Key: "createStreamProcessor", Value: "refused_" + tc.conn}, {Key: "pipeline", Value: pipe}})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "420") && !strings.Contains(err.Error(), "StreamProcessorInvalidOptions") {
			t.Errorf("%s: %v, want 420 with %q", tc.conn, err, tc.want)
		}
	}
}
