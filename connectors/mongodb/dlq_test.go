package mongodb

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/connectors"
	"github.com/spi-streams/spi/store"
)

// NewDLQ refuses, with 420, what cannot hold a dead-letter queue, and a role that does not allow
// inserts into it (authz.DeadLetterActions); it accepts a role that does, without I/O.
func TestNewDLQRefusals(t *testing.T) {
	q := &store.DLQ{ConnectionName: "c", DB: "errors", Coll: "dlq"}
	noCluster := env("readWrite", "BUILT_IN")
	noCluster.Connection = &store.Connection{Name: "c", Type: store.TypeKafka}
	for _, tc := range []struct {
		name string
		env  connectors.Env
		dlq  *store.DLQ
		want string
	}{
		{"no cluster", noCluster, q, "no Cluster settings"},
		{"no coll", env("readWriteAnyDatabase", "BUILT_IN"), &store.DLQ{ConnectionName: "c", DB: "errors"}, "db and coll are required"},
		{"bad db", env("readWriteAnyDatabase", "BUILT_IN"), &store.DLQ{ConnectionName: "c", DB: "a.b", Coll: "dlq"}, "not a valid database name"},
		{"system coll", env("readWriteAnyDatabase", "BUILT_IN"), &store.DLQ{ConnectionName: "c", DB: "errors", Coll: "system.users"}, "options.dlq.coll: \"system.users\" is not a valid collection name: the system. prefix"},
		{"dollar coll", env("readWriteAnyDatabase", "BUILT_IN"), &store.DLQ{ConnectionName: "c", DB: "errors", Coll: "d$x"}, "options.dlq.coll: \"d$x\" is not a valid collection name"},
		{"read only", env("readAnyDatabase", "BUILT_IN"), q, "insert"},
		{"unknown custom role", env("myRole", "CUSTOM"), q, `no custom role named "myRole"`},
		{"custom role without insert there", customEnv("writer"), q, "may not insert into errors.dlq"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewDLQ(tc.env, tc.dlq)
			var ce *connectors.Error
			if !errors.As(err, &ce) || ce.Code != connectors.CodeInvalidOptions || ce.Retryable {
				t.Fatalf("err = %v, want a non-retryable 420", err)
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "s3cr3t-pw") {
				t.Fatalf("err = %q, want it to say %q and no password", err, tc.want)
			}
		})
	}
	for _, role := range []string{"readWriteAnyDatabase", "atlasAdmin"} {
		d, err := NewDLQ(env(role, "BUILT_IN"), q)
		if err != nil {
			t.Fatalf("%s: %v", role, err)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// A custom role that may insert into db1 holds a dead-letter queue there.
	d, err := NewDLQ(customEnv("writer"), &store.DLQ{ConnectionName: "c", DB: "db1", Coll: "dlq"})
	if err != nil {
		t.Fatalf("custom role writer into db1.dlq: %v", err)
	}
	_ = d.Close()
}

// unreachableDLQ is a dead-letter writer of errors.dlq on a deployment that cannot be reached,
// closed when the test ends.
func unreachableDLQ(t *testing.T) connectors.Sink {
	t.Helper()
	e := env("readWriteAnyDatabase", "BUILT_IN")
	e.Connection.Cluster.ConnectionString = "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200&connectTimeoutMS=200"
	d, err := NewDLQ(e, &store.DLQ{ConnectionName: "c", DB: "errors", Coll: "dlq"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// A deployment that cannot be reached fails the batch with a retryable 421 naming host and
// namespace, never the password.
func TestDLQUnreachable(t *testing.T) {
	d := unreachableDLQ(t)
	_, err := d.WriteBatch(context.Background(), []bson.Raw{raw(t, bson.D{{Key: "processorName", Value: "p"}})})
	var ce *connectors.Error
	if !errors.As(err, &ce) || !ce.Retryable || ce.Code != connectors.CodeAtlasConnection {
		t.Fatalf("err = %v, want a retryable 421", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "127.0.0.1:1") || !strings.Contains(msg, "errors.dlq") || strings.Contains(msg, "s3cr3t-pw") {
		t.Fatalf("err = %q", msg)
	}
}

// A record over MongoDB's 16 MiB limit is dropped (returned as rejected, with a warning) and
// never sent: the batch does not fail, even with a deployment that cannot be reached.
func TestDLQRecordTooLarge(t *testing.T) {
	d := unreachableDLQ(t)
	big := raw(t, bson.D{{Key: "doc", Value: strings.Repeat("x", maxBSONSize)}})
	rejected, err := d.WriteBatch(context.Background(), []bson.Raw{big})
	if err != nil || len(rejected) != 1 {
		t.Fatalf("rejected %d, err %v; want the record rejected and no error", len(rejected), err)
	}
}
