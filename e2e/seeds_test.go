package e2e

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/wire"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite the recorded fuzz seeds in wire/testdata/fuzz")

const seedDir = "../wire/testdata/fuzz/FuzzReadMessage"

// clientStream concatenates what the client sent on the busiest connection: the one a session
// ran its commands on, handshake included.
func clientStream(frames []frame) []byte {
	per := map[int][][]byte{}
	best := 0
	for _, f := range frames {
		if f.FromClient {
			per[f.Conn] = append(per[f.Conn], f.Raw)
			if len(per[f.Conn]) > len(per[best]) {
				best = f.Conn
			}
		}
	}
	return bytes.Join(per[best], nil)
}

// decodeAll reads every message of a recorded client stream with spid's reader.
func decodeAll(t *testing.T, stream []byte) []*wire.Request {
	t.Helper()
	all := wire.Negotiate([]string{"snappy", "zlib", "zstd"})
	r := bytes.NewReader(stream)
	var reqs []*wire.Request
	for {
		req, _, err := wire.ReadMessage(r, nil, &all)
		if errors.Is(err, io.EOF) {
			return reqs
		}
		if err != nil {
			t.Fatalf("message %d of a recorded stream: %v", len(reqs), err)
		}
		reqs = append(reqs, req)
	}
}

// The fuzz corpus's seeds are real traffic: mongosh 2.12.0's handshake and startup, and Go
// driver sessions compressed with each algorithm. This test records them afresh, checks spid's
// reader decodes every message, and checks the committed copies still decode the same way
// (-update-seeds rewrites them).
func TestRecordedSeeds(t *testing.T) {
	s := startSpid(t)
	recorded := map[string][]byte{}

	p := startProxy(t, s.Addr)
	r := runMongosh(t, s.Admin(t, p.Addr, ""), "--quiet", "--eval", `db.runCommand({ping: 1}); db.hello()`)
	if r.Exit != 0 {
		t.Fatalf("mongosh: %+v", r)
	}
	frames := p.Frames()
	if len(frames) == 0 || !frames[0].FromClient {
		t.Fatal("nothing recorded")
	}
	recorded["mongosh-2.12.0-handshake"] = frames[0].Raw
	recorded["mongosh-2.12.0-session"] = clientStream(frames)

	for _, comp := range []string{"snappy", "zlib", "zstd"} {
		p := startProxy(t, s.Addr)
		c := connectGo(t, s.Admin(t, p.Addr, "&directConnection=true&compressors="+comp))
		for range 2 {
			if err := c.Database("admin").RunCommand(t.Context(), bson.D{{Key: "ping", Value: 1}}).Err(); err != nil {
				t.Fatal(err)
			}
		}
		recorded["go-driver-"+comp+"-session"] = clientStream(p.Frames())
	}

	// What mongosh sends first is the legacy handshake the spec describes.
	hs := decodeAll(t, recorded["mongosh-2.12.0-handshake"])
	if len(hs) != 1 || hs[0].OpCode != wire.OpQuery || hs[0].Namespace != "admin.$cmd" {
		t.Fatalf("mongosh's first message is not an OP_QUERY on admin.$cmd: %+v", hs)
	}
	body := bson.Raw(hs[0].Body)
	if first, _ := body.IndexErr(0); first.Key() != "ismaster" ||
		body.Lookup("client", "application", "name").StringValue() != "mongosh 2.12.0" {
		t.Errorf("unexpected handshake %v", body)
	}
	for name, stream := range recorded {
		reqs := decodeAll(t, stream)
		if strings.HasPrefix(name, "go-driver-") {
			n := 0
			for _, r := range reqs {
				if r.Compressor != nil {
					n++
				}
			}
			if n < 2 {
				t.Errorf("%s: %d compressed messages recorded, want at least 2", name, n)
			}
		}
	}

	if *updateSeeds {
		if err := os.MkdirAll(seedDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range recorded {
			content := "go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n"
			if err := os.WriteFile(filepath.Join(seedDir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name := range recorded {
		raw, err := os.ReadFile(filepath.Join(seedDir, name))
		if err != nil {
			t.Fatalf("committed seed %s: %v (run with -update-seeds)", name, err)
		}
		lines := strings.SplitN(string(raw), "\n", 3)
		if len(lines) < 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "[]byte(") {
			t.Fatalf("seed %s is not in the fuzz corpus format", name)
		}
		b, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			t.Fatalf("seed %s: %v", name, err)
		}
		if got, want := len(decodeAll(t, []byte(b))), len(decodeAll(t, recorded[name])); got != want {
			t.Errorf("seed %s holds %d messages, a fresh recording %d", name, got, want)
		}
	}
}
