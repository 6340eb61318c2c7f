package e2e

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// startFerretDB runs an embedded FerretDB (SQLite backend in a temporary directory) on a free
// loopback port, the MongoDB deployment a Cluster connection writes to, until the test ends.
// It returns its mongodb:// URI.
func startFerretDB(t *testing.T) string {
	t.Helper()
	return startFerret(t).URI
}

// ferret is an embedded FerretDB that a test may stop and start again on the same address
// with the same SQLite directory, as a deployment that goes down and comes back with its data.
type ferret struct {
	URI  string // mongodb://<Addr>/
	Addr string // 127.0.0.1:<port>
	dir  string
	// TLSAddr, when set, is a second listener serving TLS with pki's server certificate and
	// requiring a client certificate from pki's CA (FerretDB does so when given a CA file).
	TLSAddr string
	pki     *testPKI

	mu     sync.Mutex
	cancel context.CancelFunc // nil while stopped
	done   chan struct{}
}

// startFerret starts a restartable FerretDB on a free loopback port; it is stopped when the
// test ends.
func startFerret(t *testing.T) *ferret {
	t.Helper()
	f := &ferret{Addr: freeAddr(t), dir: t.TempDir()}
	f.Start(t)
	t.Cleanup(func() { f.Stop(t) })
	return f
}

// startFerretTLS is startFerret with a TLS listener too (ferret.TLSAddr) for pki.
func startFerretTLS(t *testing.T, pki *testPKI) *ferret {
	t.Helper()
	f := &ferret{Addr: freeAddr(t), TLSAddr: freeAddr(t), pki: pki, dir: t.TempDir()}
	f.Start(t)
	t.Cleanup(func() { f.Stop(t) })
	return f
}

// Start runs FerretDB on f's address and directory and waits until it accepts connections.
// The port was free when startFerret picked it; another process could take it while FerretDB
// is stopped, which fails the test here rather than silently moving the deployment.
func (f *ferret) Start(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cancel != nil {
		t.Fatal("FerretDB is already running")
	}
	listener := ferretdb.ListenerConfig{TCP: f.Addr}
	if f.TLSAddr != "" {
		listener.TLS, listener.TLSCertFile, listener.TLSKeyFile, listener.TLSCAFile = f.TLSAddr, f.pki.ServerCert, f.pki.ServerKey, f.pki.CAFile
	}
	db, err := ferretdb.New(&ferretdb.Config{
		Listener:  listener,
		Handler:   "sqlite",
		SQLiteURL: "file:" + f.dir + "/",
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := db.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("ferretdb: %v", err)
		}
	}()
	f.cancel, f.done = cancel, done
	for _, addr := range []string{f.Addr, f.TLSAddr} {
		if addr == "" {
			continue
		}
		waitUntil(t, "FerretDB listening on "+addr, func() bool {
			select {
			case <-done:
				t.Fatalf("FerretDB on %s ended before it listened", addr)
			default:
			}
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				_ = c.Close()
			}
			return err == nil
		})
	}
	// The plain listener's URI (MongoDBURI would give the TLS listener's when there is one).
	f.URI = "mongodb://" + f.Addr + "/"
}

// Stop ends FerretDB and waits until it has closed its listener and its clients' connections.
// Stopping a stopped FerretDB does nothing.
func (f *ferret) Stop(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cancel == nil {
		return
	}
	f.cancel()
	<-f.done
	f.cancel = nil
}

// connectFerret is a Go driver client of FerretDB, disconnected when the test ends.
func connectFerret(t *testing.T, uri string) *mongo.Client {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c
}
