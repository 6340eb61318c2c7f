package e2e

import (
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// bigCommandName is a 1 MiB command name of incompressible-looking letters. spid answers it
// with CommandNotFound, whose errmsg echoes the name, as mongod's does: a reply of over 1 MB.
func bigCommandName() string {
	rng := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	for b.Len() < 1<<20 {
		b.WriteByte(byte('a' + rng.IntN(26)))
	}
	return b.String()
}

// uncompressedSizes lists the declared uncompressed size of every OP_COMPRESSED reply.
func uncompressedSizes(p *wireProxy) []int {
	var out []int
	for _, f := range p.Frames() {
		if f.OpCode == 2012 && !f.FromClient && len(f.Raw) >= 25 {
			out = append(out, int(int32(binary.LittleEndian.Uint32(f.Raw[20:]))))
		}
	}
	return out
}

// Every compressor's output is readable by every driver: pymongo (Debian's, with python-snappy
// and python-zstandard), the Go driver and the Node driver each run ping (a reply of a few dozen
// bytes), listStreamConnections (a few hundred) and a command whose reply is over 1 MB, over
// snappy, zlib and zstd; a proxy checks the replies really were compressed.
func TestCompressionEveryClient(t *testing.T) {
	s := startSpid(t)
	a := newAPI(t, s.Creds(t))
	a.ok("POST", "/streams/default/connections", map[string]any{"name": "events", "type": "Kafka", "bootstrapServers": "kafka-1:9092,kafka-2:9092"})
	a.ok("POST", "/streams/default/connections", map[string]any{"name": "webhook", "type": "Https", "url": "https://example.com/hook"})
	const wantConns = 3 // with the built-in sample_stream_solar
	big := bigCommandName()
	bigFile := t.TempDir() + "/big.txt"
	writeFile(t, bigFile, []byte(big))

	type outcome struct {
		Ping      float64 `json:"ping"`
		Conns     int     `json:"conns"`
		BigCode   int     `json:"bigCode"`
		BigErrLen int     `json:"bigErrLen"`
	}
	clients := map[string]func(t *testing.T, uri string) outcome{
		"go": func(t *testing.T, uri string) outcome {
			c := connectGo(t, uri)
			var o outcome
			var ping struct {
				OK float64 `bson:"ok"`
			}
			if err := c.Database("admin").RunCommand(t.Context(), bson.D{{Key: "ping", Value: 1}}).Decode(&ping); err != nil {
				t.Fatalf("ping: %v", err)
			}
			o.Ping = ping.OK
			var conns struct {
				Connections []bson.M `bson:"connections"`
			}
			if err := c.Database("admin").RunCommand(t.Context(), bson.D{{Key: "listStreamConnections", Value: 1}}).Decode(&conns); err != nil {
				t.Fatalf("listStreamConnections: %v", err)
			}
			o.Conns = len(conns.Connections)
			err := c.Database("admin").RunCommand(t.Context(), bson.D{{Key: big, Value: 1}}).Err()
			code, msg, _ := commandError(err)
			o.BigCode, o.BigErrLen = int(code), len(msg)
			return o
		},
		"node": func(t *testing.T, uri string) outcome {
			r := runNode(t, `
const big = require('fs').readFileSync(argv[1], 'utf8');
const c = new MongoClient(argv[0]);
const admin = c.db('admin');
const o = {};
o.ping = (await admin.command({ping: 1})).ok;
o.conns = (await admin.command({listStreamConnections: 1})).connections.length;
try { await admin.command({[big]: 1}); } catch (e) { o.bigCode = e.code; o.bigErrLen = e.message.length; }
await c.close();
console.log(JSON.stringify(o));
`, uri, bigFile)
			var o outcome
			lastJSON(t, r, &o)
			return o
		},
		"pymongo": func(t *testing.T, uri string) outcome {
			r := runPython(t, `
import json, sys, pymongo
c = pymongo.MongoClient(sys.argv[1], serverSelectionTimeoutMS=10000)
big = open(sys.argv[2]).read()
o = {"ping": c.admin.command("ping")["ok"], "conns": len(c.admin.command("listStreamConnections")["connections"])}
try:
    c.admin.command({big: 1})
except pymongo.errors.OperationFailure as e:
    o["bigCode"], o["bigErrLen"] = e.code, len(e.details["errmsg"])
print(json.dumps(o))
`, uri, bigFile)
			var o outcome
			lastJSON(t, r, &o)
			return o
		},
	}
	for _, client := range []string{"go", "node", "pymongo"} {
		for _, comp := range []string{"snappy", "zlib", "zstd"} {
			t.Run(client+"/"+comp, func(t *testing.T) {
				p := startProxy(t, s.Addr)
				o := clients[client](t, s.Admin(t, p.Addr, "&compressors="+comp))
				want := outcome{Ping: 1, Conns: wantConns, BigCode: 59, BigErrLen: len("no such command: ''") + len(big)}
				if o != want {
					t.Errorf("got %+v, want %+v", o, want)
				}
				fromClient, fromServer, err := p.compressedCounts(compressorIDs[comp])
				if err != nil {
					t.Fatal(err)
				}
				if fromClient < 3 || fromServer < 3 {
					t.Errorf("compressed messages: %d from the driver, %d from spid; want at least 3 each", fromClient, fromServer)
				}
				small, large := false, false
				for _, n := range uncompressedSizes(p) {
					small = small || n < 256
					large = large || n > 1<<20
				}
				if !small || !large {
					t.Errorf("compressed replies of %v bytes: want one under 256 bytes and one over 1 MiB", uncompressedSizes(p))
				}
			})
		}
	}
}
