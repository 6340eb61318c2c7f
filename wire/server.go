package wire

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Handler turns requests into replies. Both methods append one BSON document, the reply body,
// to dst and return it. They run on the connection's goroutine, one request at a time.
type Handler interface {
	// Handle serves a well-formed request. The reply is discarded when the request has
	// moreToCome set.
	Handle(ctx context.Context, c *Conn, req *Request, dst []byte) []byte
	// HandleMessageError builds the error reply for a malformed message; the connection is
	// closed after it is sent.
	HandleMessageError(c *Conn, err *MessageError, dst []byte) []byte
}

// ConnObserver is an optional interface of a Handler: it hears when a connection opens and
// when it has closed, on the connection's own goroutine (the command layer frees sample cursors
// and sp.process() processors of a closed connection, and counts open connections).
type ConnObserver interface {
	ConnOpened(c *Conn)
	ConnClosed(c *Conn)
}

// Conn is one client connection. Commands keep per-connection state (negotiated compressors,
// later the authenticated user) here.
type Conn struct {
	id     int64
	nc     net.Conn
	server *Server
	tag    string

	// compressors is written by hello on this connection's goroutine and read by the same
	// goroutine, so it needs no lock.
	compressors Compressors

	// value is the command layer's per-connection state (the authenticated user); like
	// compressors, only the connection's goroutine touches it.
	value any

	mu      sync.Mutex
	busy    bool
	closing bool
}

// Value returns the state the command layer attached to the connection.
func (c *Conn) Value() any { return c.value }

// SetValue attaches command-layer state to the connection.
func (c *Conn) SetValue(v any) { c.value = v }

// NetConn is the underlying connection, for its TLS state.
func (c *Conn) NetConn() net.Conn { return c.nc }

// ID is the connection number reported as hello.connectionId.
func (c *Conn) ID() int64 { return c.id }

// Tag is the tag of the listener that accepted the connection (spid uses the workspace name).
func (c *Conn) Tag() string { return c.tag }

// RemoteAddr is the client's address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// LocalAddr is the listener address the client reached.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// SetCompressors records the compressors negotiated by hello; later OP_COMPRESSED messages
// may use any of them.
func (c *Conn) SetCompressors(cs Compressors) { c.compressors = cs }

// Compressors returns the compressors negotiated on this connection.
func (c *Conn) Compressors() *Compressors { return &c.compressors }

// Server accepts connections on any number of listeners and serves each with a Handler.
type Server struct {
	handler Handler
	log     *slog.Logger

	baseCtx context.Context
	cancel  context.CancelFunc

	nextID    atomic.Int64
	nextReply atomic.Int32

	mu        sync.Mutex
	listeners map[net.Listener]string
	conns     map[*Conn]struct{}
	shutdown  bool
	wg        sync.WaitGroup
}

// NewServer returns a server that dispatches every request to h.
func NewServer(h Handler, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		handler:   h,
		log:       log,
		baseCtx:   ctx,
		cancel:    cancel,
		listeners: map[net.Listener]string{},
		conns:     map[*Conn]struct{}{},
	}
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("wire: server closed")

// Serve accepts connections on l until l fails or the server shuts down.
func (s *Server) Serve(l net.Listener) error { return s.ServeTagged(l, "") }

// ErrListenerClosed is returned by ServeTagged after CloseTag closed its listener.
var ErrListenerClosed = errors.New("wire: listener closed")

// ServeTagged is Serve for a listener whose connections carry tag, so that CloseTag can end
// them together (spid tags each workspace's listener with the workspace name).
func (s *Server) ServeTagged(l net.Listener, tag string) error {
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		_ = l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = tag
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()

	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			down := s.shutdown
			_, open := s.listeners[l]
			s.mu.Unlock()
			if down {
				return ErrServerClosed
			}
			if !open {
				return ErrListenerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Out of file descriptors and the like: wait and try again, as net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed; retrying", "err", err, "in", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		c := &Conn{id: s.nextID.Add(1), nc: nc, server: s, tag: tag}
		s.mu.Lock()
		if s.shutdown {
			s.mu.Unlock()
			_ = nc.Close()
			return ErrServerClosed
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c)
	}
}

// CloseTag stops the listeners with the given tag and closes their connections at once; a
// command running on one of them loses its connection. Used when a workspace is deleted.
func (s *Server) CloseTag(tag string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for l, t := range s.listeners {
		if t == tag {
			delete(s.listeners, l)
			_ = l.Close()
		}
	}
	for c := range s.conns {
		if c.tag == tag {
			_ = c.nc.Close()
		}
	}
}

// Shutdown stops accepting, closes idle connections at once and lets each connection finish the
// command it is running before closing it. If ctx ends first, the remaining connections are
// closed and their commands' contexts cancelled.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutdown = true
	for l := range s.listeners {
		_ = l.Close()
	}
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.closeWhenIdle()
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
		s.cancel()
		s.mu.Lock()
		for c := range s.conns {
			_ = c.nc.Close()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

// closeWhenIdle closes the connection now if no command is running, or marks it to close once
// the running command has replied.
func (c *Conn) closeWhenIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closing = true
	if !c.busy {
		_ = c.nc.Close()
	}
}

func (c *Conn) begin() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false
	}
	c.busy = true
	return true
}

func (c *Conn) end() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.busy = false
	return !c.closing
}

const (
	readBufferSize  = 16 << 10
	writeBufferSize = 16 << 10
)

func (s *Server) serveConn(c *Conn) {
	defer s.wg.Done()
	obs, _ := s.handler.(ConnObserver)
	if obs != nil {
		obs.ConnOpened(c)
	}
	defer func() {
		_ = c.nc.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		if obs != nil {
			obs.ConnClosed(c)
		}
	}()
	log := s.log.With("conn", c.id, "remote", c.nc.RemoteAddr().String())
	log.Debug("connection accepted")
	br := bufio.NewReaderSize(c.nc, readBufferSize)
	bw := bufio.NewWriterSize(c.nc, writeBufferSize)
	var (
		in   []byte
		out  []byte
		zbuf []byte
	)
	for {
		req, buf, err := ReadMessage(br, in, &c.compressors)
		in = buf
		if err != nil {
			var me *MessageError
			if !errors.As(err, &me) {
				if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
					log.Debug("connection read failed", "err", err)
				}
				return
			}
			log.Info("closing connection after a malformed message", "err", me.Msg)
			if me.HaveHeader && !me.MoreToCome {
				out = s.handler.HandleMessageError(c, me, beginReply(out[:0], me.OpCode))
				out = finishReply(out, me.OpCode, me.Header.RequestID, s.nextReplyID())
				_, _ = bw.Write(out)
				_ = bw.Flush()
			}
			return
		}
		if !c.begin() {
			return
		}
		ctx := s.baseCtx
		replyOp := OpMsg
		if req.OpCode == OpQuery {
			replyOp = OpQuery
		}
		out = s.handler.Handle(ctx, c, req, beginReply(out[:0], replyOp))
		if !req.MoreToCome() {
			out = finishReply(out, replyOp, req.Header.RequestID, s.nextReplyID())
			wire := out
			if req.Compressor != nil {
				zbuf, err = compressReply(zbuf[:0], out, req.Compressor)
				if err != nil {
					log.Warn("compressing a reply failed; sending it uncompressed", "err", err)
				} else {
					wire = zbuf
				}
			}
			_, err = bw.Write(wire)
			if err == nil {
				err = bw.Flush()
			}
			if err != nil {
				log.Debug("connection write failed", "err", err)
				c.end()
				return
			}
		}
		if !c.end() {
			return
		}
		// Release very large buffers rather than keeping them for the connection's lifetime.
		if cap(in) > 1<<20 {
			in = nil
		}
		if cap(out) > 1<<20 {
			out = nil
		}
		if cap(zbuf) > 1<<20 {
			zbuf = nil
		}
	}
}

func (s *Server) nextReplyID() int32 { return s.nextReply.Add(1) }

// beginReply reserves the header (and the OP_MSG flags and section kind, or the OP_REPLY
// fields) in front of the body the handler appends.
func beginReply(dst []byte, op int32) []byte {
	if op == OpQuery {
		return append(dst, make([]byte, HeaderSize+20)...)
	}
	return append(dst, make([]byte, HeaderSize+5)...)
}

// finishReply fills in the reserved prefix once the body is complete.
func finishReply(b []byte, op int32, responseTo, requestID int32) []byte {
	binary.LittleEndian.PutUint32(b, uint32(len(b)))
	binary.LittleEndian.PutUint32(b[4:], uint32(requestID))
	binary.LittleEndian.PutUint32(b[8:], uint32(responseTo))
	if op == OpQuery {
		binary.LittleEndian.PutUint32(b[12:], uint32(OpReply))
		flags := int32(0)
		binary.LittleEndian.PutUint32(b[16:], uint32(flags))
		binary.LittleEndian.PutUint64(b[20:], 0) // cursorID
		binary.LittleEndian.PutUint32(b[28:], 0) // startingFrom
		binary.LittleEndian.PutUint32(b[32:], 1) // numberReturned
		return b
	}
	binary.LittleEndian.PutUint32(b[12:], uint32(OpMsg))
	binary.LittleEndian.PutUint32(b[16:], 0) // flags
	b[20] = 0                                // section kind 0
	return b
}

// compressReply wraps a complete reply message in OP_COMPRESSED.
func compressReply(dst, msg []byte, c *Compressor) ([]byte, error) {
	dst = append(dst, make([]byte, HeaderSize+9)...)
	copy(dst, msg[:12]) // length is rewritten below; request and response IDs stay
	binary.LittleEndian.PutUint32(dst[12:], uint32(OpCompressed))
	copy(dst[16:20], msg[12:16]) // original opcode
	binary.LittleEndian.PutUint32(dst[20:], uint32(len(msg)-HeaderSize))
	dst[24] = c.ID
	dst, err := c.compress(dst, msg[HeaderSize:])
	if err != nil {
		return nil, err
	}
	binary.LittleEndian.PutUint32(dst, uint32(len(dst)))
	return dst, nil
}
