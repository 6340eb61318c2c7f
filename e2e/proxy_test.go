package e2e

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
)

// frame is one message seen by the proxy.
type frame struct {
	Conn       int // connection number, in accept order
	FromClient bool
	OpCode     int32
	Compressor int // compressor id for OP_COMPRESSED, else -1
	Raw        []byte
}

// wireProxy sits between a client and spid and records every message in both directions. It
// is how tests see what actually crossed the socket (was the reply really zstd-compressed?)
// without trusting spid's own account.
type wireProxy struct {
	Addr string
	l    net.Listener

	mu     sync.Mutex
	frames []frame
	nconns int
	wg     sync.WaitGroup
}

func startProxy(t *testing.T, target string) *wireProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &wireProxy{Addr: l.Addr().String(), l: l}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.nconns++
			id := p.nconns
			p.mu.Unlock()
			p.wg.Add(2)
			go p.pipe(c, s, id, true)
			go p.pipe(s, c, id, false)
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		p.wg.Wait()
	})
	return p
}

func (p *wireProxy) pipe(src, dst net.Conn, conn int, fromClient bool) {
	defer p.wg.Done()
	defer func() { _ = src.Close(); _ = dst.Close() }()
	hdr := make([]byte, 16)
	for {
		if _, err := io.ReadFull(src, hdr); err != nil {
			return
		}
		n := int(int32(binary.LittleEndian.Uint32(hdr)))
		if n < 16 || n > 48_000_000 {
			return
		}
		msg := make([]byte, n)
		copy(msg, hdr)
		if _, err := io.ReadFull(src, msg[16:]); err != nil {
			return
		}
		f := frame{Conn: conn, FromClient: fromClient, OpCode: int32(binary.LittleEndian.Uint32(hdr[12:])), Compressor: -1, Raw: msg}
		if f.OpCode == 2012 && n >= 25 {
			f.Compressor = int(msg[24])
		}
		p.mu.Lock()
		p.frames = append(p.frames, f)
		p.mu.Unlock()
		if _, err := dst.Write(msg); err != nil {
			return
		}
	}
}

// Frames returns a copy of everything seen so far.
func (p *wireProxy) Frames() []frame {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]frame(nil), p.frames...)
}

// compressedCounts counts OP_COMPRESSED messages per direction for one compressor id, and
// reports any compressed message that used a different one.
func (p *wireProxy) compressedCounts(id int) (fromClient, fromServer int, err error) {
	for _, f := range p.Frames() {
		if f.OpCode != 2012 {
			continue
		}
		if f.Compressor != id {
			return 0, 0, errors.New("saw an OP_COMPRESSED message with an unexpected compressor")
		}
		if f.FromClient {
			fromClient++
		} else {
			fromServer++
		}
	}
	return fromClient, fromServer, nil
}
