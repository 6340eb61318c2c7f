package e2e

import (
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// bigDocs is the number of inline documents of the processor "big", about 1 KiB each of
// incompressible-looking letters: getStreamProcessor returns its pipeline at the top level and
// under result, a reply of over 2 MiB.
const bigDocs = 1100

func bigPipeline() bson.A {
	rng := rand.New(rand.NewPCG(1, 2))
	docs := bson.A{}
	for i := range bigDocs {
		var b strings.Builder
		for b.Len() < 1<<10 {
			b.WriteByte(byte('a' + rng.IntN(26)))
		}
		docs = append(docs, bson.D{{Key: "i", Value: i}, {Key: "s", Value: b.String()}})
	}
	return bson.A{
		bson.D{{Key: "$source", Value: bson.D{{Key: "documents", Value: docs}}}},
		bson.D{{Key: "$emit", Value: bson.D{{Key: "connectionName", Value: "__discard"}}}},
	}
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
// bytes), listStreamConnections (a few hundred) and getStreamProcessor of a processor whose
// pipeline holds 1 MiB of documents (a reply of over 2 MiB), over snappy, zlib and zstd; a proxy
// checks the replies really were compressed.
func TestCompressionEveryClient(t *testing.T) {
	s := startSpid(t)
	a := newAPI(t, s.Creds(t))
	a.ok("POST", "/streams/default/connections", map[string]any{"name": "events", "type": "Kafka", "bootstrapServers": "kafka-1:9092,kafka-2:9092"})
	a.ok("POST", "/streams/default/connections", map[string]any{"name": "webhook", "type": "Https", "url": "https://example.com/hook"})
	const wantConns = 3 // with the built-in sample_stream_solar
	if err := connectGo(t, s.Admin(t, s.Addr, "")).Database("admin").RunCommand(t.Context(),
		bson.D{{Key: "createStreamProcessor", Value: "big"}, {Key: "pipeline", Value: bigPipeline()}}).Err(); err != nil {
		t.Fatalf("creating the big processor: %v", err)
	}

	type outcome struct {
		Ping    float64 `json:"ping"`
		Conns   int     `json:"conns"`
		BigDocs int     `json:"bigDocs"`
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
			var big struct {
				Pipeline []struct {
					Source struct {
						Documents []bson.Raw `bson:"documents"`
					} `bson:"$source"`
				} `bson:"pipeline"`
			}
			if err := c.Database("admin").RunCommand(t.Context(), bson.D{{Key: "getStreamProcessor", Value: "big"}}).Decode(&big); err != nil {
				t.Fatalf("getStreamProcessor: %v", err)
			}
			if len(big.Pipeline) > 0 {
				o.BigDocs = len(big.Pipeline[0].Source.Documents)
			}
			return o
		},
		"node": func(t *testing.T, uri string) outcome {
			r := runNode(t, `
const c = new MongoClient(argv[0]);
const admin = c.db('admin');
const o = {};
o.ping = (await admin.command({ping: 1})).ok;
o.conns = (await admin.command({listStreamConnections: 1})).connections.length;
o.bigDocs = (await admin.command({getStreamProcessor: 'big'})).pipeline[0].$source.documents.length;
await c.close();
console.log(JSON.stringify(o));
`, uri)
			var o outcome
			lastJSON(t, r, &o)
			return o
		},
		"pymongo": func(t *testing.T, uri string) outcome {
			r := runPython(t, `
import json, sys, pymongo
c = pymongo.MongoClient(sys.argv[1], serverSelectionTimeoutMS=10000)
o = {"ping": c.admin.command("ping")["ok"], "conns": len(c.admin.command("listStreamConnections")["connections"])}
o["bigDocs"] = len(c.admin.command("getStreamProcessor", "big")["pipeline"][0]["$source"]["documents"])
print(json.dumps(o))
`, uri)
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
				want := outcome{Ping: 1, Conns: wantConns, BigDocs: bigDocs}
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
