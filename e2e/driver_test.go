package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// compressorIDs are the OP_COMPRESSED ids of the protocol.
var compressorIDs = map[string]int{"snappy": 1, "zlib": 2, "zstd": 3}

func connectGo(t *testing.T, uri string) *mongo.Client {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(10 * time.Second))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c
}

// The Go driver connects, pings and runs hello, uncompressed and with each compressor; a proxy
// on the socket confirms requests and replies really were compressed with the one negotiated.
func TestGoDriverCompression(t *testing.T) {
	s := startSpid(t)
	for _, comp := range []string{"none", "snappy", "zlib", "zstd"} {
		t.Run(comp, func(t *testing.T) {
			p := startProxy(t, s.Addr)
			extra := "&directConnection=true"
			if comp != "none" {
				extra += "&compressors=" + comp
			}
			uri := s.Admin(t, p.Addr, extra)
			c := connectGo(t, uri)
			ctx := t.Context()
			for range 3 {
				if err := c.Ping(ctx, nil); err != nil {
					t.Fatalf("ping: %v", err)
				}
			}
			var hello bson.M
			if err := c.Database("admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello); err != nil {
				t.Fatalf("hello: %v", err)
			}
			if hello["isWritablePrimary"] != true || hello["maxWireVersion"] != int32(21) || hello["ok"] != 1.0 {
				t.Errorf("unexpected hello reply: %v", hello)
			}
			if comp == "none" {
				for _, f := range p.Frames() {
					if f.OpCode == 2012 {
						t.Fatalf("saw OP_COMPRESSED without compression")
					}
				}
				return
			}
			fromClient, fromServer, err := p.compressedCounts(compressorIDs[comp])
			if err != nil {
				t.Fatal(err)
			}
			// Drivers never compress hello (nor the handshake); the three pings and their replies are compressed.
			if fromClient < 3 || fromServer < 3 {
				t.Errorf("compressed messages: %d from the driver, %d from spid; want at least 3 each", fromClient, fromServer)
			}
		})
	}
}

// A driver in load-balanced mode (as the Java driver connects to workspace hosts) gets the
// serviceId it requires and works.
func TestGoDriverLoadBalanced(t *testing.T) {
	s := startSpid(t)
	c := connectGo(t, s.Admin(t, "", "&loadBalanced=true"))
	var hello bson.M
	if err := c.Database("admin").RunCommand(t.Context(), bson.D{{Key: "ping", Value: 1}}).Decode(&hello); err != nil {
		t.Fatalf("ping in load-balanced mode: %v", err)
	}
	if hello["ok"] != 1.0 {
		t.Errorf("ping reply %v", hello)
	}
}

// An unknown command is a CommandError with code 59 and codeName CommandNotFound.
func TestGoDriverUnknownCommand(t *testing.T) {
	s := startSpid(t)
	c := connectGo(t, s.Admin(t, "", ""))
	err := c.Database("admin").RunCommand(t.Context(), bson.D{{Key: "atlasVersion", Value: 1}}).Err()
	var ce mongo.CommandError
	if !errors.As(err, &ce) {
		t.Fatalf("want a CommandError, got %v", err)
	}
	if ce.Code != 59 || ce.Name != "CommandNotFound" || ce.Message != "no such command: 'atlasVersion'" {
		t.Errorf("got code %d name %q message %q", ce.Code, ce.Name, ce.Message)
	}
}

// The Node driver bundled with mongosh negotiates compression too. zlib is built into Node.js,
// snappy comes from the `snappy` package and zstd from `@mongodb-js/zstd` (built from source by
// scripts/build-node-zstd.sh), both pinned in package.json; the proxy checks the bytes.
func TestNodeDriverCompression(t *testing.T) {
	s := startSpid(t)
	for _, comp := range []string{"none", "zlib", "snappy", "zstd"} {
		t.Run(comp, func(t *testing.T) {
			p := startProxy(t, s.Addr)
			extra := ""
			if comp != "none" {
				extra = "&compressors=" + comp
			}
			uri := s.Admin(t, p.Addr, extra)
			r := runMongosh(t, uri, "--quiet", "--eval",
				`for (let i = 0; i < 3; i++) db.runCommand({ping: 1}); printjson(db.hello().isWritablePrimary)`)
			if r.Exit != 0 || r.Stderr != "" || strings.TrimSpace(r.Stdout) != "true" {
				t.Fatalf("exit %d, stdout %q, stderr %q", r.Exit, r.Stdout, r.Stderr)
			}
			if comp == "none" {
				return
			}
			fromClient, fromServer, err := p.compressedCounts(compressorIDs[comp])
			if err != nil {
				t.Fatal(err)
			}
			if fromClient < 3 || fromServer < 3 {
				t.Errorf("compressed messages: %d from the driver, %d from spid; want at least 3 each", fromClient, fromServer)
			}
		})
	}
}
