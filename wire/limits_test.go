package wire

import (
	"bytes"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/zstd"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

func wantKind(t *testing.T, err error, kind ErrorKind) *MessageError {
	t.Helper()
	var me *MessageError
	if !errors.As(err, &me) || me.Kind != kind {
		t.Fatalf("got %v, want a MessageError of kind %d", err, kind)
	}
	return me
}

// More than MaxDocumentsPerMessage documents in the sequences of one OP_MSG are refused, so
// the index of a message is bounded however small its documents.
func TestDocumentSequenceBound(t *testing.T) {
	empty := []byte{5, 0, 0, 0, 0}
	docs := make([][]byte, MaxDocumentsPerMessage)
	for i := range docs {
		docs[i] = empty
	}
	ok := buildMsg(1, 0, pingDoc(), Sequence{Identifier: "documents", Documents: docs})
	req, _, err := ReadMessage(bytes.NewReader(ok), nil, nil)
	if err != nil || len(req.Sequences[0].Documents) != MaxDocumentsPerMessage {
		t.Fatalf("%d documents: %v", MaxDocumentsPerMessage, err)
	}
	// Split over two sequences, one more is too many.
	over := buildMsg(1, 0, pingDoc(), Sequence{Identifier: "documents", Documents: docs},
		Sequence{Identifier: "updates", Documents: [][]byte{empty}})
	_, _, err = ReadMessage(bytes.NewReader(over), nil, nil)
	_ = wantKind(t, err, KindTooManyDocuments)
	// Before authentication, 1,000.
	pre := buildMsg(1, 0, pingDoc(), Sequence{Identifier: "documents", Documents: docs[:PreAuthMaxDocuments+1]})
	_, _, err = readMessage(bytes.NewReader(pre), nil, nil, &readLimits{maxMessage: 64 << 10, maxDocs: PreAuthMaxDocuments})
	_ = wantKind(t, err, KindTooManyDocuments)
}

// Before authentication the limit applies to the declared length and to the uncompressed
// size; the message is refused before its body is read or decompressed.
func TestPreAuthMessageLimit(t *testing.T) {
	lim := &readLimits{maxMessage: 64 << 10}
	big := buildMsg(1, 0, pingDoc())
	// A header that declares 1 MB, with no body behind it: refused from the header alone.
	hdr := append([]byte(nil), big[:HeaderSize]...)
	hdr[0], hdr[1], hdr[2], hdr[3] = 0, 0, 0x10, 0
	_, _, err := readMessage(bytes.NewReader(hdr), nil, nil, lim)
	if me := wantKind(t, err, KindTooLarge); !me.Oversized {
		t.Errorf("not marked oversized: %v", me)
	}
	// A small compressed message that declares 1 MB uncompressed.
	msg := compressMsg(t, big, Zlib)
	msg[20], msg[21], msg[22], msg[23] = 0, 0, 0x10, 0
	_, _, err = readMessage(bytes.NewReader(msg), nil, &allCompressors, lim)
	if me := wantKind(t, err, KindTooLarge); !me.Oversized {
		t.Errorf("not marked oversized: %v", me)
	}
}

// A spent budget refuses the message that would exceed it.
func TestPendingBudget(t *testing.T) {
	var b budget
	granted := 0
	lim := &readLimits{maxMessage: MaxMessageSize, grow: func(n int) bool {
		if !b.take(int64(n), 100<<10) {
			return false
		}
		granted += n
		return true
	}}
	payload := bytes.Repeat([]byte{'x'}, 300<<10)
	msg := buildMsg(1, 0, bigDoc(t, payload))
	_, _, err := readMessage(bytes.NewReader(msg), nil, nil, lim)
	_ = wantKind(t, err, KindResourceExhausted)
	if granted > 100<<10 {
		t.Errorf("granted %d bytes over a 100 KiB budget", granted)
	}
}

func bigDoc(t *testing.T, pad []byte) []byte {
	t.Helper()
	// {ping: 1, pad: "<pad>"}
	var b []byte
	b = append(b, 0, 0, 0, 0)
	b = append(b, 0x10)
	b = append(b, "ping\x00"...)
	b = append(b, 1, 0, 0, 0)
	b = append(b, 0x02)
	b = append(b, "pad\x00"...)
	n := len(pad) + 1
	b = append(b, byte(n), byte(n>>8), byte(n>>16), byte(n>>24))
	b = append(b, pad...)
	b = append(b, 0, 0)
	l := len(b)
	b[0], b[1], b[2], b[3] = byte(l), byte(l>>8), byte(l>>16), byte(l>>24)
	return b
}

// Sizes a format cannot reach from its input are refused before anything is allocated for
// them, and an honest stream that expands past its declared size stops one byte after it.
func TestDecompressionBounds(t *testing.T) {
	zeros := make([]byte, 8<<20)
	var zb bytes.Buffer
	w := zlib.NewWriter(&zb)
	_, _ = w.Write(zeros)
	_ = w.Close()
	var zs bytes.Buffer
	zw, _ := zstd.NewWriter(&zs, zstd.WithWindowSize(1<<20))
	_, _ = zw.Write(zeros)
	_ = zw.Close()
	cases := []struct {
		name string
		id   uint8
		src  []byte
		size int
	}{
		{"snappy declaring more than 22:1", 1, snappy.Encode(nil, []byte("abc")), 1 << 20},
		{"zlib declaring more than 1032:1", 2, zb.Bytes()[:100], 1 << 20},
		{"zlib bomb declaring less", 2, zb.Bytes(), 60_000},
		{"zstd without a content size declaring less", 3, zs.Bytes(), 60_000},
	}
	for _, c := range cases {
		out, err := Decompress(c.id, c.src, c.size)
		if err == nil {
			t.Errorf("%s: decompressed %d bytes", c.name, len(out))
		}
	}
	if out, err := Decompress(3, zs.Bytes(), len(zeros)); err != nil || len(out) != len(zeros) {
		t.Errorf("zstd stream without a content size: %v", err)
	}
	if cost := decompressionCost(Zstd, zs.Bytes(), 1000); cost != 1<<20 {
		t.Errorf("a zstd stream's cost is %d, want its 1 MiB window", cost)
	}
}

func TestTemporaryAccept(t *testing.T) {
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ECONNABORTED, syscall.ENOBUFS} {
		err := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", e)}
		if !temporaryAccept(err) {
			t.Errorf("%v is not temporary", err)
		}
	}
	if temporaryAccept(net.ErrClosed) || temporaryAccept(&net.OpError{Op: "accept", Err: os.NewSyscallError("accept4", syscall.EBADF)}) {
		t.Errorf("a closed listener counts as temporary")
	}
}

func TestLogLimiter(t *testing.T) {
	l := logLimiter{interval: time.Second, burst: 3}
	now := time.Unix(1000, 0)
	allowed := 0
	for range 100 {
		if ok, _ := l.allow(now); ok {
			allowed++
		}
	}
	if allowed != 3 {
		t.Errorf("%d lines allowed at once, want the burst of 3", allowed)
	}
	ok, held := l.allow(now.Add(time.Second))
	if !ok || held != 97 {
		t.Errorf("a second later: %v, %d held back; want true, 97", ok, held)
	}
}

func TestClip(t *testing.T) {
	if Clip("short") != "short" {
		t.Error("a short value changed")
	}
	long := strings.Repeat("é", 1000)
	c := Clip(long)
	if len(c) > ClipLen+32 || !strings.Contains(c, fmt.Sprintf("[+%d bytes]", len(long)-ClipLen)) {
		t.Errorf("Clip gave %q", c)
	}
}

// A server over MaxConnections answers the next client's first message with an error naming
// the limit, and serves the connections it has.
func TestMaxConnectionsRefusal(t *testing.T) {
	srv := NewServer(msgHandler{}, nil)
	lim := DefaultLimits()
	lim.MaxConnections = 1
	srv.SetLimits(lim)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	defer func() {
		_ = srv.Shutdown(t.Context())
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	}()
	first, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = first.Close() }()
	ping := buildMsg(1, 0, pingDoc())
	if _, err := first.Write(ping); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadMessage(first, nil, nil); err != nil {
		t.Fatalf("first connection: %v", err)
	}
	second, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = second.Close() }()
	if _, err := second.Write(ping); err != nil {
		t.Fatal(err)
	}
	_ = second.SetReadDeadline(time.Now().Add(10 * time.Second))
	req, _, err := ReadMessage(second, nil, nil)
	if err != nil {
		t.Fatalf("second connection: %v", err)
	}
	if !strings.Contains(string(req.Body), "--max-connections") {
		t.Errorf("refusal %q does not name --max-connections", req.Body)
	}
}

// msgHandler answers {ok: 1} and puts a malformed message's text in its error reply.
type msgHandler struct{}

func (msgHandler) Handle(_ context.Context, _ *Conn, _ *Request, dst []byte) []byte {
	return append(dst, bsoncore.NewDocumentBuilder().AppendDouble("ok", 1).Build()...)
}

func (msgHandler) HandleMessageError(_ *Conn, me *MessageError, dst []byte) []byte {
	return append(dst, bsoncore.NewDocumentBuilder().AppendDouble("ok", 0).AppendString("errmsg", me.Msg).Build()...)
}

// flakyListener is a fake: a real listener cannot be made to fail on demand. It fails its
// first accepts with errs, then accepts from the real listener.
type flakyListener struct {
	net.Listener
	errs []error
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		return nil, err
	}
	return l.Listener.Accept()
}

// Temporary accept errors (EMFILE and the like) are retried; a permanent one ends Serve with
// the error, so that spid can stop loudly.
func TestAcceptErrors(t *testing.T) {
	real, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	emfile := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	srv := NewServer(msgHandler{}, nil)
	l := &flakyListener{Listener: real, errs: []error{emfile, emfile, emfile}}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	c, err := net.Dial("tcp", real.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if _, err := c.Write(buildMsg(1, 0, pingDoc())); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := ReadMessage(c, nil, nil); err != nil {
		t.Fatalf("no reply after three EMFILE accepts: %v", err)
	}
	_ = srv.Shutdown(t.Context())
	if err := <-done; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}

	permanent := errors.New("listener broken for good")
	real2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = real2.Close() }()
	srv2 := NewServer(msgHandler{}, nil)
	if err := srv2.Serve(&flakyListener{Listener: real2, errs: []error{permanent}}); !errors.Is(err, permanent) {
		t.Errorf("Serve returned %v, want the permanent error", err)
	}
}
