package wire

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"net"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func pingDoc() []byte {
	return bsoncore.NewDocumentBuilder().AppendInt32("ping", 1).AppendString("$db", "admin").Build()
}

func buildMsg(requestID int32, flags uint32, body []byte, seqs ...Sequence) []byte {
	b := make([]byte, HeaderSize)
	b = binary.LittleEndian.AppendUint32(b, flags)
	b = append(b, 0)
	b = append(b, body...)
	for _, s := range seqs {
		b = append(b, 1)
		at := len(b)
		b = append(b, 0, 0, 0, 0)
		b = append(b, s.Identifier...)
		b = append(b, 0)
		for _, d := range s.Documents {
			b = append(b, d...)
		}
		binary.LittleEndian.PutUint32(b[at:], uint32(len(b)-at))
	}
	if flags&FlagChecksumPresent != 0 {
		b = append(b, 0, 0, 0, 0)
	}
	binary.LittleEndian.PutUint32(b, uint32(len(b)))
	binary.LittleEndian.PutUint32(b[4:], uint32(requestID))
	binary.LittleEndian.PutUint32(b[12:], uint32(OpMsg))
	if flags&FlagChecksumPresent != 0 {
		sum := crc32.Checksum(b[:len(b)-4], castagnoli)
		binary.LittleEndian.PutUint32(b[len(b)-4:], sum)
	}
	return b
}

func buildQuery(requestID int32, ns string, q []byte) []byte {
	b := make([]byte, HeaderSize+4)
	b = append(b, ns...)
	b = append(b, 0)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint32(b, 0xFFFFFFFF)
	b = append(b, q...)
	binary.LittleEndian.PutUint32(b, uint32(len(b)))
	binary.LittleEndian.PutUint32(b[4:], uint32(requestID))
	binary.LittleEndian.PutUint32(b[12:], uint32(OpQuery))
	return b
}

func compressMsg(t testing.TB, msg []byte, c *Compressor) []byte {
	t.Helper()
	out, err := compressReply(nil, msg, c)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// seedMessages are well-formed messages of every shape, for the fuzzer and the tests.
func seedMessages(t testing.TB) [][]byte {
	ping := pingDoc()
	insert := bsoncore.NewDocumentBuilder().AppendString("insert", "c").AppendString("$db", "test").Build()
	msgs := [][]byte{
		buildMsg(1, 0, ping),
		buildMsg(2, FlagChecksumPresent, ping),
		buildMsg(3, FlagMoreToCome, ping),
		buildMsg(4, FlagExhaustAllowed, ping),
		buildMsg(5, 0, insert, Sequence{Identifier: "documents", Documents: [][]byte{ping, ping}}),
		buildQuery(6, "admin.$cmd", bsoncore.NewDocumentBuilder().AppendInt32("isMaster", 1).Build()),
	}
	for _, c := range []*Compressor{Noop, Snappy, Zlib, Zstd} {
		msgs = append(msgs, compressMsg(t, buildMsg(7, 0, ping), c))
	}
	return msgs
}

func TestReadMessage(t *testing.T) {
	ping := pingDoc()
	msgs := seedMessages(t)
	for i, m := range msgs {
		req, _, err := ReadMessage(bytes.NewReader(m), nil, &allCompressors)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		switch req.OpCode {
		case OpMsg:
			if req.Body == nil {
				t.Errorf("message %d: no body", i)
			}
			if !bytes.Equal(req.Body, ping) && len(req.Sequences) == 0 {
				t.Errorf("message %d: body %x, want %x", i, req.Body, ping)
			}
		case OpQuery:
			if req.Database() != "admin" {
				t.Errorf("message %d: database %q", i, req.Database())
			}
		default:
			t.Errorf("message %d: opcode %d", i, req.OpCode)
		}
	}
	// Flags and sequences come through as sent.
	req, _, err := ReadMessage(bytes.NewReader(msgs[4]), nil, nil)
	if err != nil || len(req.Sequences) != 1 || req.Sequences[0].Identifier != "documents" || len(req.Sequences[0].Documents) != 2 {
		t.Fatalf("sequence not decoded: %+v, %v", req, err)
	}
	req, _, _ = ReadMessage(bytes.NewReader(msgs[2]), nil, nil)
	if !req.MoreToCome() {
		t.Error("moreToCome lost")
	}
	// Compressed messages remember their compressor, so the reply can use it.
	req, _, err = ReadMessage(bytes.NewReader(msgs[len(msgs)-1]), nil, &allCompressors)
	if err != nil || req.Compressor != Zstd || !bytes.Equal(req.Body, ping) {
		t.Fatalf("zstd message: %+v, %v", req, err)
	}
	// Without negotiation, compressed messages are refused.
	_, _, err = ReadMessage(bytes.NewReader(msgs[len(msgs)-1]), nil, nil)
	var me *MessageError
	if !errors.As(err, &me) || me.Kind != KindCompression {
		t.Fatalf("want a compression error, got %v", err)
	}
}

func TestCompressorsRoundTrip(t *testing.T) {
	data := bytes.Repeat([]byte("stream processing "), 1000)
	for _, c := range []*Compressor{Noop, Snappy, Zlib, Zstd} {
		enc, err := c.Compress(nil, data)
		if err != nil {
			t.Fatal(err)
		}
		dec, err := Decompress(c.ID, enc, len(data))
		if err != nil || !bytes.Equal(dec, data) {
			t.Errorf("%s: round trip failed: %v", c.Name, err)
		}
		if _, err := Decompress(c.ID, enc, len(data)-1); err == nil {
			t.Errorf("%s: a smaller declared size was accepted", c.Name)
		}
		if _, err := Decompress(c.ID, enc, len(data)+1); err == nil {
			t.Errorf("%s: a larger declared size was accepted", c.Name)
		}
	}
}

// Every zstd frame spid writes declares its content size, whatever the size, as mongod's do:
// decoders that size their output from the header (python-zstandard) need it.
func TestZstdFramesCarryContentSize(t *testing.T) {
	for _, n := range []int{0, 1, 100, 255, 256, 1024, 65791, 65792, 1 << 20} {
		data := bytes.Repeat([]byte{'x', 'y', 'z'}, n/3+1)[:n]
		enc, err := Zstd.Compress(nil, data)
		if err != nil {
			t.Fatal(err)
		}
		var h zstd.Header
		if err := h.Decode(enc); err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if !h.HasFCS || h.FrameContentSize != uint64(n) {
			t.Errorf("%d bytes: frame header HasFCS=%v size=%d", n, h.HasFCS, h.FrameContentSize)
		}
	}
}

func TestNegotiate(t *testing.T) {
	c := Negotiate([]string{"none", "zstd", "bogus", "zlib", "zstd"})
	if got := c.Names(); len(got) != 2 || got[0] != "zstd" || got[1] != "zlib" {
		t.Errorf("negotiated %v, want [zstd zlib]", got)
	}
}

// okHandler answers {ok: 1}, or blocks while a test holds its gate.
type okHandler struct {
	gate    chan struct{}
	started chan struct{}
	ctxErr  chan error
}

func (h *okHandler) Handle(ctx context.Context, _ *Conn, _ *Request, dst []byte) []byte {
	if h.gate != nil {
		h.started <- struct{}{}
		select {
		case <-h.gate:
		case <-ctx.Done():
			h.ctxErr <- ctx.Err()
		}
	}
	return append(dst, bsoncore.NewDocumentBuilder().AppendDouble("ok", 1).Build()...)
}

func (h *okHandler) HandleMessageError(_ *Conn, _ *MessageError, dst []byte) []byte {
	return append(dst, bsoncore.NewDocumentBuilder().AppendDouble("ok", 0).Build()...)
}

func startServer(t *testing.T, h Handler) (*Server, string, chan error) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(h, nil)
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	return s, l.Addr().String(), served
}

func roundTrip(t *testing.T, c net.Conn, msg []byte) []byte {
	t.Helper()
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	hdr := make([]byte, HeaderSize)
	if _, err := io.ReadFull(c, hdr); err != nil {
		t.Fatal(err)
	}
	h := parseHeader(hdr)
	body := make([]byte, h.Length-HeaderSize)
	if _, err := io.ReadFull(c, body); err != nil {
		t.Fatal(err)
	}
	if h.OpCode == OpReply {
		return body[20:]
	}
	return body[5:]
}

// Shutdown lets a running command finish and reply, closes idle connections at once, and
// refuses new ones.
func TestShutdownLetsRunningCommandsFinish(t *testing.T) {
	h := &okHandler{gate: make(chan struct{}), started: make(chan struct{}, 1), ctxErr: make(chan error, 1)}
	s, addr, served := startServer(t, h)
	busy, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = busy.Close() }()
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = idle.Close() }()

	if _, err := busy.Write(buildMsg(1, 0, pingDoc())); err != nil {
		t.Fatal(err)
	}
	<-h.started
	shutdown := make(chan error, 1)
	go func() { shutdown <- s.Shutdown(context.Background()) }()

	// The idle connection is closed without waiting for the busy one.
	if _, err := idle.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("idle connection: want EOF, got %v", err)
	}
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned (%v) while a command was running", err)
	default:
	}
	close(h.gate)
	req, _, err := ReadMessage(busy, nil, nil)
	if err != nil {
		t.Fatalf("the running command got no reply: %v", err)
	}
	if v, err := bsoncore.Document(req.Body).LookupErr("ok"); err != nil || v.Double() != 1 {
		t.Errorf("reply %v", bsoncore.Document(req.Body))
	}
	if err := <-shutdown; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if _, err := busy.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("busy connection after its reply: want EOF, got %v", err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve returned %v", err)
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Error("a new connection was accepted after shutdown")
	}
}

// When the grace period ends first, running commands see their context cancelled.
func TestShutdownDeadlineCancelsCommands(t *testing.T) {
	h := &okHandler{gate: make(chan struct{}), started: make(chan struct{}, 1), ctxErr: make(chan error, 1)}
	s, addr, served := startServer(t, h)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if _, err := c.Write(buildMsg(1, 0, pingDoc())); err != nil {
		t.Fatal(err)
	}
	<-h.started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-h.ctxErr; !errors.Is(err, context.Canceled) {
		t.Errorf("command context: %v", err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
}

// Replies go back compressed with the compressor of the request, and moreToCome gets no reply.
func TestServeReplies(t *testing.T) {
	s, addr, served := startServer(t, &okHandler{})
	defer func() {
		_ = s.Shutdown(context.Background())
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	}()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	ok := bsoncore.NewDocumentBuilder().AppendDouble("ok", 1).Build()
	if got := roundTrip(t, c, buildQuery(1, "admin.$cmd", pingDoc())); !bytes.Equal(got, ok) {
		t.Errorf("OP_QUERY reply %v", bsoncore.Document(got))
	}
	// moreToCome: no reply; the next reply must answer the next request.
	if _, err := c.Write(buildMsg(2, FlagMoreToCome, pingDoc())); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(buildMsg(3, 0, pingDoc())); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	hdr := make([]byte, HeaderSize)
	if _, err := io.ReadFull(c, hdr); err != nil {
		t.Fatal(err)
	}
	if got := parseHeader(hdr).ResponseTo; got != 3 {
		t.Fatalf("first reply answers request %d, want 3", got)
	}
}

// CloseTag ends one workspace's listener and connections and leaves the others alone.
func TestCloseTag(t *testing.T) {
	s := NewServer(&okHandler{}, nil)
	addrs := map[string]string{}
	served := map[string]chan error{}
	for _, tag := range []string{"a", "b"} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs[tag] = l.Addr().String()
		ch := make(chan error, 1)
		served[tag] = ch
		go func() { ch <- s.ServeTagged(l, tag) }()
	}
	ca, err := net.Dial("tcp", addrs["a"])
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ca.Close() }()
	cb, err := net.Dial("tcp", addrs["b"])
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cb.Close() }()
	roundTrip(t, ca, buildMsg(1, 0, pingDoc()))
	roundTrip(t, cb, buildMsg(1, 0, pingDoc()))

	s.CloseTag("a")
	if err := <-served["a"]; !errors.Is(err, ErrListenerClosed) {
		t.Errorf("ServeTagged(a) returned %v", err)
	}
	if _, err := ca.Read(make([]byte, 1)); err == nil {
		t.Error("a connection of the closed tag stayed open")
	}
	if c, err := net.Dial("tcp", addrs["a"]); err == nil {
		_ = c.Close()
		t.Error("the closed tag's listener still accepts")
	}
	roundTrip(t, cb, buildMsg(2, 0, pingDoc()))

	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-served["b"]; !errors.Is(err, ErrServerClosed) {
		t.Errorf("ServeTagged(b) returned %v", err)
	}
}
