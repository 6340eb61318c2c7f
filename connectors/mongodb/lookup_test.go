package mongodb

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/connectors"
	"github.com/spi-streams/spi/pipeline"
	"github.com/spi-streams/spi/store"
)

// A lookup's from needs the find action under the execute-as role (spec §6.3): a built-in read
// role and a custom role granting FIND there allow it; a custom role granting only writes is
// refused with 420 naming the role, the namespace and the action; a connection without Cluster
// settings or with an unusable connection string is a 420 that carries no password.
func TestNewLookupExecuteAs(t *testing.T) {
	from := func(db string) *pipeline.Lookup {
		return &pipeline.Lookup{Stage: "$lookup", ConnectionName: "c", DB: db, Coll: "c"}
	}
	for name, e := range map[string]connectors.Env{"readAnyDatabase": env("readAnyDatabase", "BUILT_IN"), "custom reader": customEnv("reader")} {
		l, err := NewLookup(e, from("db1"))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		_ = l.Close()
	}
	var ce *connectors.Error
	_, err := NewLookup(customEnv("writer"), from("db1"))
	if !errors.As(err, &ce) || ce.Code != connectors.CodeInvalidOptions || ce.Retryable {
		t.Fatalf("writer: %v, want a 420", err)
	}
	for _, want := range []string{"$lookup from db1.c", `connection "c"`, "execute-as role writer may not", "FIND"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("writer: %q lacks %q", err, want)
		}
	}
	if _, err := NewLookup(customEnv("reader"), from("db2")); !errors.As(err, &ce) || ce.Code != connectors.CodeInvalidOptions || !strings.Contains(err.Error(), "db2.c") {
		t.Errorf("reader from db2.c: %v, want a 420", err)
	}
	// A from MongoDB refuses by name (the rules of $merge's targets, nsNameError).
	for _, tc := range []struct{ db, coll, want string }{
		{"db1", "system.x", `$lookup.from.coll: "system.x" is not a valid collection name`},
		{"db1", "c$d", `$lookup.from.coll: "c$d" is not a valid collection name`},
		{strings.Repeat("d", 64), "c", "$lookup.from.db: database name"},
	} {
		l := from(tc.db)
		l.Coll = tc.coll
		if _, err := NewLookup(env("readAnyDatabase", "BUILT_IN"), l); !errors.As(err, &ce) || ce.Code != connectors.CodeInvalidOptions || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s.%s: %v, want a 420 with %q", tc.db, tc.coll, err, tc.want)
		}
	}
	if _, err := NewLookup(connectors.Env{Connection: &store.Connection{Name: "k", Type: store.TypeKafka}}, from("db1")); !errors.As(err, &ce) || ce.Code != connectors.CodeInvalidOptions {
		t.Errorf("no Cluster settings: %v, want a 420", err)
	}
	bad := env("readAnyDatabase", "BUILT_IN")
	bad.Connection.Cluster.ConnectionString = "mongodb://a:1,b:2/?directConnection=true"
	_, err = NewLookup(bad, from("db1"))
	if !errors.As(err, &ce) || ce.Code != connectors.CodeInvalidOptions || strings.Contains(err.Error(), "s3cr3t-pw") {
		t.Errorf("bad connection string: %v, want a 420 without the password", err)
	}
}

// A deployment that cannot be reached (a loopback port nothing listens on) fails Find with a
// retryable 421 that names the host and the namespace, never the password.
func TestLookupUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	e := env("readAnyDatabase", "BUILT_IN")
	e.Connection.Cluster.ConnectionString = "mongodb://" + addr + "/?serverSelectionTimeoutMS=200&connectTimeoutMS=200"
	lr, err := NewLookup(e, &pipeline.Lookup{Stage: "$cachedLookup", ConnectionName: "c", DB: "shop", Coll: "inventory"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = lr.Close() }()
	_, err = lr.Find(context.Background(), bson.Raw{5, 0, 0, 0, 0})
	var ce *connectors.Error
	if !errors.As(err, &ce) || !ce.Retryable || ce.Code != connectors.CodeAtlasConnection {
		t.Fatalf("Find: %v, want a retryable 421", err)
	}
	for _, want := range []string{"$cachedLookup from shop.inventory", addr} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "s3cr3t-pw") || strings.Contains(err.Error(), "spuser") {
		t.Errorf("%q carries a credential", err)
	}
}
