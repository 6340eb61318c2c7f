package wire

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/spi-streams/spi/bsoncheck"
)

var allCompressors = Negotiate([]string{"noop", "snappy", "zlib", "zstd"})

// FuzzReadMessage feeds arbitrary bytes to the message reader as a connection would. Seeds
// include real traffic recorded from mongosh 2.12.0 and the Go driver (testdata/fuzz).
func FuzzReadMessage(f *testing.F) {
	for _, m := range seedMessages(f) {
		f.Add(m)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		var buf []byte
		for {
			req, b, err := ReadMessage(r, buf, &allCompressors)
			buf = b
			if err != nil {
				var me *MessageError
				if !errors.As(err, &me) && !errors.Is(err, io.EOF) {
					t.Fatalf("unexpected error type %T: %v", err, err)
				}
				return
			}
			if err := bsoncheck.Validate(req.Body); err != nil {
				t.Fatalf("accepted a body that is not valid BSON: %v", err)
			}
			for _, s := range req.Sequences {
				for _, d := range s.Documents {
					if err := bsoncheck.Validate(d); err != nil {
						t.Fatalf("accepted a sequence document that is not valid BSON: %v", err)
					}
				}
			}
		}
	})
}

func fuzzCompressor(f *testing.F, c *Compressor) {
	f.Add([]byte("hello, hello, hello, hello"), 0)
	enc, err := c.Compress(nil, []byte("a compressible string, a compressible string"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(enc, 44)
	f.Add(enc, 10)
	f.Fuzz(func(t *testing.T, data []byte, size int) {
		// Decompressing arbitrary bytes must fail cleanly or give exactly the declared size.
		out, err := Decompress(c.ID, data, size)
		if err == nil && len(out) != size {
			t.Fatalf("decompressed %d bytes, declared %d", len(out), size)
		}
		// Any input must survive a round trip.
		enc, err := c.Compress(nil, data)
		if err != nil {
			t.Fatal(err)
		}
		dec, err := Decompress(c.ID, enc, len(data))
		if err != nil || !bytes.Equal(dec, data) {
			t.Fatalf("round trip failed: %v", err)
		}
	})
}

// FuzzSnappy fuzzes snappy decompression and round trips.
func FuzzSnappy(f *testing.F) { fuzzCompressor(f, Snappy) }

// FuzzZlib fuzzes zlib decompression and round trips.
func FuzzZlib(f *testing.F) { fuzzCompressor(f, Zlib) }

// FuzzZstd fuzzes zstd decompression and round trips.
func FuzzZstd(f *testing.F) { fuzzCompressor(f, Zstd) }
