package wire

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/zstd"
)

// Compressor is one OP_COMPRESSED algorithm. The zero-based IDs are the protocol's.
type Compressor struct {
	ID   uint8
	Name string
	// decompress appends the decompressed src to dst; it must produce exactly size bytes.
	decompress func(dst, src []byte, size int) ([]byte, error)
	compress   func(dst, src []byte) ([]byte, error)
}

// The compressors spid speaks, in the protocol's ID order.
var (
	Noop   = &Compressor{ID: 0, Name: "noop", decompress: noopDecompress, compress: noopCompress}
	Snappy = &Compressor{ID: 1, Name: "snappy", decompress: snappyDecompress, compress: snappyCompress}
	Zlib   = &Compressor{ID: 2, Name: "zlib", decompress: zlibDecompress, compress: zlibCompress}
	Zstd   = &Compressor{ID: 3, Name: "zstd", decompress: zstdDecompress, compress: zstdCompress}
)

var compressorsByName = map[string]*Compressor{"noop": Noop, "snappy": Snappy, "zlib": Zlib, "zstd": Zstd}

// Compressors is the set a client negotiated through hello.compression, in its order of
// preference. The zero value negotiates nothing.
type Compressors struct {
	list []*Compressor
}

// Negotiate keeps the names spid supports, in the client's order, and returns them.
// Unknown names (mongosh sends "none") are ignored.
func Negotiate(names []string) Compressors {
	var c Compressors
	for _, n := range names {
		if comp, ok := compressorsByName[n]; ok && !c.has(comp.ID) {
			c.list = append(c.list, comp)
		}
	}
	return c
}

// Names returns the negotiated compressor names in order.
func (c *Compressors) Names() []string {
	out := make([]string, len(c.list))
	for i, comp := range c.list {
		out[i] = comp.Name
	}
	return out
}

func (c *Compressors) has(id uint8) bool {
	if c == nil {
		return false
	}
	for _, comp := range c.list {
		if comp.ID == id {
			return true
		}
	}
	return false
}

func compressorByID(id uint8) *Compressor {
	switch id {
	case 0:
		return Noop
	case 1:
		return Snappy
	case 2:
		return Zlib
	case 3:
		return Zstd
	}
	return nil
}

type innerMessage struct {
	OpCode int32
	body   []byte
}

// decompressMessage unwraps an OP_COMPRESSED body (everything after the header).
func decompressMessage(h Header, body []byte, negotiated *Compressors, lim *readLimits) (innerMessage, *Compressor, error) {
	if len(body) < 9 {
		return innerMessage{}, nil, msgErr(KindProtocol, h, "OP_COMPRESSED is too short")
	}
	orig := int32(binary.LittleEndian.Uint32(body))
	size := int(int32(binary.LittleEndian.Uint32(body[4:])))
	id := body[8]
	fail := func(kind ErrorKind, format string, args ...any) error {
		e := msgErr(kind, h, format, args...)
		e.OpCode = orig
		if orig != OpQuery {
			e.OpCode = OpMsg
		}
		return e
	}
	if orig == OpCompressed {
		return innerMessage{}, nil, fail(KindProtocol, "OP_COMPRESSED may not wrap another OP_COMPRESSED")
	}
	c := compressorByID(id)
	if c == nil {
		return innerMessage{}, nil, fail(KindCompression, "unknown compressor id %d", id)
	}
	if !negotiated.has(id) {
		return innerMessage{}, nil, fail(KindCompression, "compressor %s was not negotiated on this connection", c.Name)
	}
	if size < 0 || size > MaxMessageSize-HeaderSize {
		return innerMessage{}, nil, fail(KindProtocol, "uncompressed size %d is outside 0..%d", size, MaxMessageSize-HeaderSize)
	}
	if size > lim.maxMessage-HeaderSize {
		e := fail(KindTooLarge, "uncompressed size %d exceeds the maximum of %d bytes before authentication; authenticate first", size, lim.maxMessage-HeaderSize).(*MessageError)
		e.Oversized = true
		return innerMessage{}, nil, e
	}
	if size > ReceiveChunk && !lim.reserve(size) {
		return innerMessage{}, nil, fail(KindResourceExhausted, "%s", errBudget)
	}
	cost := decompressionCost(c, body[9:], size)
	if cost > lim.maxMessage {
		// A zstd stream whose window is larger than any message this connection may send.
		e := fail(KindTooLarge, "zstd window of %d bytes exceeds the maximum message of %d bytes before authentication; authenticate first", cost, lim.maxMessage).(*MessageError)
		e.Oversized = true
		return innerMessage{}, nil, e
	}
	if cost > LargeDecompression && lim.gate != nil {
		defer lim.gate(cost)()
	}
	out, err := c.decompress(nil, body[9:], size)
	if err != nil {
		return innerMessage{}, nil, fail(KindCompression, "%s: %v", c.Name, err)
	}
	return innerMessage{OpCode: orig, body: out}, c, nil
}

// decompressionCost is the memory a decompression may take: its output, or for a zstd frame
// without a content size the larger of its output and its history window.
func decompressionCost(c *Compressor, src []byte, size int) int {
	if c != Zstd {
		return size
	}
	var fh zstd.Header
	if fh.Decode(src) == nil && !fh.HasFCS && fh.WindowSize > uint64(size) {
		return int(min(fh.WindowSize, zstdMaxStreamWindow))
	}
	return size
}

// Decompress decompresses src, which must expand to exactly size bytes, with the compressor of
// the given ID. It is the entry point the fuzz targets use.
func Decompress(id uint8, src []byte, size int) ([]byte, error) {
	c := compressorByID(id)
	if c == nil {
		return nil, fmt.Errorf("unknown compressor id %d", id)
	}
	if size < 0 || size > MaxMessageSize {
		return nil, fmt.Errorf("size %d is out of range", size)
	}
	return c.decompress(nil, src, size)
}

// Compress appends src compressed with c to dst.
func (c *Compressor) Compress(dst, src []byte) ([]byte, error) { return c.compress(dst, src) }

var errSizeMismatch = errors.New("decompressed size does not match the declared size")

func noopDecompress(dst, src []byte, size int) ([]byte, error) {
	if len(src) != size {
		return nil, errSizeMismatch
	}
	return append(dst, src...), nil
}

func noopCompress(dst, src []byte) ([]byte, error) { return append(dst, src...), nil }

func snappyDecompress(dst, src []byte, size int) ([]byte, error) {
	n, err := snappy.DecodedLen(src)
	if err != nil {
		return nil, err
	}
	if n != size {
		return nil, errSizeMismatch
	}
	// A snappy copy element expands at most 64 bytes out of 3 (about 21:1), so a larger
	// declared size is a lie; refuse it before allocating for it.
	if size > 22*len(src)+32 {
		return nil, errSizeMismatch
	}
	out, err := snappy.Decode(growTo(dst[:0], size), src)
	if err != nil {
		return nil, err
	}
	return out, nil
}

func snappyCompress(dst, src []byte) ([]byte, error) {
	n := snappy.MaxEncodedLen(len(src))
	if n < 0 {
		return nil, errors.New("message too large for snappy")
	}
	start := len(dst)
	dst = growTo(dst, start+n)
	enc := snappy.Encode(dst[start:start+n], src)
	return dst[:start+len(enc)], nil
}

func zlibDecompress(dst, src []byte, size int) ([]byte, error) {
	// DEFLATE expands at most 258 bytes out of 2 bits (about 1032:1, RFC 1951 section 3.2.5),
	// so a larger declared size is a lie; refuse it before inflating.
	if size > 1032*len(src)+1024 {
		return nil, errSizeMismatch
	}
	zr, err := zlib.NewReader(bytes.NewReader(src))
	if err != nil {
		return nil, err
	}
	defer func() { _ = zr.Close() }()
	// Read at most one byte more than declared, so a stream that lies about its size is caught
	// without inflating it all; the buffer grows with what comes out, not with the declared size.
	buf := bytes.NewBuffer(dst)
	n, err := io.Copy(buf, io.LimitReader(zr, int64(size)+1))
	if err != nil {
		return nil, err
	}
	if int(n) != size {
		return nil, errSizeMismatch
	}
	return buf.Bytes(), nil
}

var zlibWriters = sync.Pool{New: func() any {
	w, _ := zlib.NewWriterLevel(nil, zlib.DefaultCompression)
	return w
}}

func zlibCompress(dst, src []byte) ([]byte, error) {
	buf := bytes.NewBuffer(dst)
	w := zlibWriters.Get().(*zlib.Writer)
	defer zlibWriters.Put(w)
	w.Reset(buf)
	if _, err := w.Write(src); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

var (
	// The cap limit stops DecodeAll at cap(dst), so a frame that expands past the declared size
	// fails without being inflated. A frame with no content size decodes into a buffer that
	// grows with its output up to the declared size; one that declares a content size (equal to
	// the declared size, checked first) is decoded into that much memory, which the connection's
	// message limit and Limits.MaxLargeDecompressions bound.
	zstdDecoder, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(MaxMessageSize),
		zstd.WithDecodeAllCapLimit(true))
	// Single-segment frames always carry their content size, as mongod's do (ZSTD_compress
	// writes it); decoders such as python-zstandard's decompress() refuse a frame without it.
	zstdEncoder, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1),
		zstd.WithSingleSegment(true))
)

func zstdDecompress(dst, src []byte, size int) ([]byte, error) {
	// A frame may declare its content size; refuse one that disagrees before allocating for it.
	var fh zstd.Header
	if err := fh.Decode(src); err == nil && fh.HasFCS {
		if fh.FrameContentSize != uint64(size) {
			return nil, errSizeMismatch
		}
		out, err := zstdDecoder.DecodeAll(src, growTo(dst[:0], size)[:0])
		if err != nil {
			return nil, err
		}
		if len(out) != size {
			return nil, errSizeMismatch
		}
		return out, nil
	}
	return zstdStream(dst, src, size)
}

// zstdStreams decode frames without a content size, whose output cannot be sized up front.
var zstdStreams = sync.Pool{New: func() any {
	d, _ := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(zstdMaxStreamWindow), zstd.WithDecoderMaxMemory(MaxMessageSize))
	return d
}}

// zstdMaxStreamWindow bounds the history window of a frame without a content size; zstd's
// levels up to 19 use at most 8 MiB (RFC 8878 section 3.1.1.1.2 lets a decoder set a limit).
const zstdMaxStreamWindow = 8 << 20

// zstdStream decodes into a buffer that grows with the output, reading at most size+1 bytes.
func zstdStream(dst, src []byte, size int) ([]byte, error) {
	d := zstdStreams.Get().(*zstd.Decoder)
	defer zstdStreams.Put(d)
	// Hiding the bytes.Reader keeps the decoder streaming instead of decoding all at once.
	if err := d.Reset(struct{ io.Reader }{bytes.NewReader(src)}); err != nil {
		return nil, err
	}
	defer func() { _ = d.Reset(struct{ io.Reader }{bytes.NewReader(nil)}) }()
	buf := bytes.NewBuffer(dst[:0])
	n, err := io.Copy(buf, io.LimitReader(d, int64(size)+1))
	if err != nil {
		return nil, err
	}
	if int(n) != size {
		return nil, errSizeMismatch
	}
	return buf.Bytes(), nil
}

func zstdCompress(dst, src []byte) ([]byte, error) {
	return zstdEncoder.EncodeAll(src, dst), nil
}

func growTo(b []byte, n int) []byte {
	if cap(b) >= n {
		return b[:n]
	}
	nb := make([]byte, n, n+n/4)
	copy(nb, b)
	return nb
}
