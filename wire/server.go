package wire

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spi-streams/spi/metrics"
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

	// authenticated selects the limits of a logged-in connection; the command layer sets it on
	// the connection's goroutine.
	authenticated bool
	// allowance is what is left of this request's bytes outside the pending-bytes budget;
	// held and heldPre are the bytes it took from the server-wide and pre-authentication
	// budgets, returned when the request has been served.
	allowance     int
	held, heldPre int64

	mu      sync.Mutex
	busy    bool
	closing bool
}

// SetAuthenticated tells the wire layer whether the connection has authenticated: before, it
// gets the small pre-authentication limits (Limits.PreAuthMaxMessage, UnauthIdleTimeout).
func (c *Conn) SetAuthenticated(on bool) { c.authenticated = on }

// Authenticated reports what SetAuthenticated last said.
func (c *Conn) Authenticated() bool { return c.authenticated }

// workspace is the metrics label of the connection's listener.
func (c *Conn) workspace() string {
	if c.tag == "" {
		return "default"
	}
	return c.tag
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
	limits  Limits
	metrics *metrics.Metrics

	pending, preAuthPending budget
	// bigDecompressions holds one token per running decompression of over LargeDecompression.
	bigDecompressions chan struct{}
	refusing          atomic.Int32
	acceptLog         logLimiter
	malformedLog      logLimiter

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
		limits:    DefaultLimits(),

		bigDecompressions: make(chan struct{}, DefaultLimits().MaxLargeDecompressions),
		acceptLog:         logLimiter{interval: 5 * time.Second, burst: 1},
		malformedLog:      logLimiter{interval: time.Second, burst: 10},
	}
}

// SetLimits replaces the DefaultLimits the server starts with. Call it before Serve.
func (s *Server) SetLimits(l Limits) {
	s.limits = l
	s.bigDecompressions = make(chan struct{}, max(l.MaxLargeDecompressions, 1))
}

// SetMetrics makes the server report connections refused and timed out, oversized messages
// and listener health into m. Call it before Serve.
func (s *Server) SetMetrics(m *metrics.Metrics) { s.metrics = m }

// Limits returns the limits in force.
func (s *Server) Limits() Limits { return s.limits }

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

	ws := tag
	if ws == "" {
		ws = "default"
	}
	s.metrics.SetListenerUp(ws, true)
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
			s.metrics.AcceptError(ws)
			s.metrics.SetListenerUp(ws, false)
			if temporaryAccept(err) {
				// Out of file descriptors and the like: wait and try again, as net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				if ok, held := s.acceptLog.allow(time.Now()); ok {
					s.log.Warn("accept failed; retrying", "workspace", ws, "err", err, "in", backoff, "similar_lines_suppressed", held)
				}
				time.Sleep(backoff)
				continue
			}
			s.log.Error("listener failed and stopped accepting", "workspace", ws, "err", err)
			return err
		}
		if backoff != 0 {
			backoff = 0
			s.metrics.SetListenerUp(ws, true)
			s.log.Info("accepting again", "workspace", ws)
		}
		c := &Conn{id: s.nextID.Add(1), nc: nc, server: s, tag: tag}
		s.mu.Lock()
		if s.shutdown {
			s.mu.Unlock()
			_ = nc.Close()
			return ErrServerClosed
		}
		if max := s.limits.MaxConnections; max > 0 && len(s.conns) >= max {
			s.wg.Add(1)
			s.mu.Unlock()
			s.metrics.ConnectionRefused(ws, "max_connections")
			go s.refuse(c)
			continue
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c)
	}
}

// refuse answers the first message of a connection over Limits.MaxConnections with an error
// that names the limit, then closes it. At most MaxRefusing wait for their first message at
// once; beyond that a connection is closed at once.
func (s *Server) refuse(c *Conn) {
	defer s.wg.Done()
	defer func() { _ = c.nc.Close() }()
	if ok, held := s.malformedLog.allow(time.Now()); ok {
		s.log.Warn("refusing a connection: too many open connections", "remote", c.nc.RemoteAddr().String(),
			"max_connections", s.limits.MaxConnections, "similar_lines_suppressed", held)
	}
	if s.refusing.Add(1) > MaxRefusing {
		s.refusing.Add(-1)
		return
	}
	defer s.refusing.Add(-1)
	_ = c.nc.SetDeadline(time.Now().Add(RefusalTimeout))
	br := bufio.NewReaderSize(c.nc, 4096)
	req, _, err := readMessage(br, nil, nil, &readLimits{maxMessage: s.preAuthMax()})
	var (
		h  Header
		op = OpMsg
		me *MessageError
	)
	switch {
	case err == nil && !req.MoreToCome():
		h = req.Header
		if req.OpCode == OpQuery {
			op = OpQuery
		}
	case errors.As(err, &me) && me.HaveHeader && !me.MoreToCome:
		h = me.Header
		if me.OpCode == OpQuery {
			op = OpQuery
		}
	default:
		return
	}
	refusal := &MessageError{Kind: KindResourceExhausted, Header: h, HaveHeader: true, OpCode: op,
		Msg: fmt.Sprintf("too many open connections: spid serves at most %d (--max-connections); retry later", s.limits.MaxConnections)}
	out := s.handler.HandleMessageError(c, refusal, beginReply(nil, op))
	out = finishReply(out, op, h.RequestID, s.nextReplyID())
	_, _ = c.nc.Write(out)
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

var (
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufferSize) }}
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, writeBufferSize) }}
)

func (s *Server) preAuthMax() int {
	if s.limits.PreAuthMaxMessage > 0 {
		return min(s.limits.PreAuthMaxMessage, MaxMessageSize)
	}
	return MaxMessageSize
}

// preAuthAllowance is what an unauthenticated connection's request may hold outside the
// pending-bytes budget: the initial read buffer.
const preAuthAllowance = 4096

// grow takes n bytes for the current request: first from its allowance, then from the
// server-wide budgets.
func (c *Conn) grow(n int) bool {
	if n <= c.allowance {
		c.allowance -= n
		return true
	}
	need := int64(n - c.allowance)
	s := c.server
	if !c.authenticated {
		if !s.preAuthPending.take(need, s.limits.PreAuthPendingBytes) {
			return false
		}
		if !s.pending.take(need, s.limits.MaxPendingBytes) {
			s.preAuthPending.give(need)
			return false
		}
		c.heldPre += need
	} else if !s.pending.take(need, s.limits.MaxPendingBytes) {
		return false
	}
	c.allowance = 0
	c.held += need
	s.metrics.AddPendingBytes(need)
	return true
}

// release returns the request's bytes to the budgets and renews its allowance.
func (c *Conn) release() {
	s := c.server
	if c.held != 0 {
		s.pending.give(c.held)
		s.metrics.AddPendingBytes(-c.held)
	}
	if c.heldPre != 0 {
		s.preAuthPending.give(c.heldPre)
	}
	c.held, c.heldPre = 0, 0
	c.allowance = c.allowanceLimit()
}

func (c *Conn) allowanceLimit() int {
	if c.authenticated {
		return ReceiveChunk
	}
	return preAuthAllowance
}

// gate waits for a large-decompression slot.
func (s *Server) gate(int) func() {
	s.bigDecompressions <- struct{}{}
	return func() { <-s.bigDecompressions }
}

func (s *Server) serveConn(c *Conn) {
	defer s.wg.Done()
	obs, _ := s.handler.(ConnObserver)
	if obs != nil {
		obs.ConnOpened(c)
	}
	defer func() {
		_ = c.nc.Close()
		c.release()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		if obs != nil {
			obs.ConnClosed(c)
		}
	}()
	log := s.log.With("conn", c.id, "remote", c.nc.RemoteAddr().String())
	log.Debug("connection accepted")
	accepted := time.Now()
	lim := s.limits
	var handshakeBy time.Time
	if lim.HandshakeTimeout > 0 {
		handshakeBy = accepted.Add(lim.HandshakeTimeout)
	}
	if sc, ok := c.nc.(*sniffConn); ok {
		// The TLS handshake runs under its own deadline, which it clears when done; run it
		// before the loop sets the connection's deadlines.
		sc.start()
	}
	// Buffers come from pools so that connection churn (a flood of short pre-login
	// connections) does not turn into garbage for the collector.
	br := readers.Get().(*bufio.Reader)
	br.Reset(c.nc)
	bw := writers.Get().(*bufio.Writer)
	bw.Reset(c.nc)
	defer func() {
		br.Reset(nil)
		readers.Put(br)
		bw.Reset(nil)
		writers.Put(bw)
	}()
	var (
		in    []byte
		out   []byte
		zbuf  []byte
		phase string // the deadline in force, for the timeout metric
		first = true
	)
	c.allowance = c.allowanceLimit()
	setRead := func(p string, d time.Time) {
		phase = p
		_ = c.nc.SetReadDeadline(d)
	}
	rl := &readLimits{grow: c.grow, gate: s.gate}
	rl.beforeRead = func() {
		var d time.Time
		if lim.ReceiveTimeout > 0 {
			d = time.Now().Add(lim.ReceiveTimeout)
		}
		if first && !handshakeBy.IsZero() && (d.IsZero() || handshakeBy.Before(d)) {
			setRead("handshake", handshakeBy)
			return
		}
		setRead("receive", d)
	}
	for {
		// Wait for the next message: without a deadline once authenticated, as mongod does,
		// within the handshake or idle timeout before.
		switch {
		case first && !handshakeBy.IsZero():
			setRead("handshake", handshakeBy)
		case !c.authenticated && lim.UnauthIdleTimeout > 0:
			setRead("unauthenticated_idle", time.Now().Add(lim.UnauthIdleTimeout))
		default:
			setRead("", time.Time{})
		}
		_, err := br.Peek(1)
		var req *Request
		if err == nil {
			rl.maxMessage, rl.maxDocs = MaxMessageSize, MaxDocumentsPerMessage
			if !c.authenticated {
				rl.maxMessage, rl.maxDocs = s.preAuthMax(), PreAuthMaxDocuments
			}
			var buf []byte
			req, buf, err = readMessage(br, in, &c.compressors, rl)
			in = buf
		}
		if err != nil {
			var me *MessageError
			if !errors.As(err, &me) {
				var ne net.Error
				switch {
				case errors.As(err, &ne) && ne.Timeout():
					s.metrics.ConnectionTimedOut(c.workspace(), phase)
					log.Debug("closing connection: timeout", "timeout", phase)
				case !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed):
					log.Debug("connection read failed", "err", err)
				}
				return
			}
			switch {
			case me.Oversized:
				s.metrics.MessageOversized(c.workspace(), c.authenticated)
			case me.Kind == KindResourceExhausted:
				s.metrics.MessageOverBudget(c.workspace())
			}
			if ok, held := s.malformedLog.allow(time.Now()); ok {
				log.Info("closing connection after a malformed message", "err", clipLog(me.Msg), "similar_lines_suppressed", held)
			}
			if me.HaveHeader && !me.MoreToCome {
				out = s.handler.HandleMessageError(c, me, beginReply(out[:0], me.OpCode))
				out = finishReply(out, me.OpCode, me.Header.RequestID, s.nextReplyID())
				s.setWrite()(c)
				_, _ = bw.Write(out)
				_ = bw.Flush()
			}
			return
		}
		first = false
		// The message is in; the handler may take as long as it needs.
		setRead("", time.Time{})
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
			s.setWrite()(c)
			_, err = bw.Write(wire)
			if err == nil {
				err = bw.Flush()
			}
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					s.metrics.ConnectionTimedOut(c.workspace(), "write")
				}
				log.Debug("connection write failed", "err", err)
				c.end()
				return
			}
		}
		if !c.end() {
			return
		}
		// Buffers over the allowance go back to the runtime with their budget.
		c.release()
		if cap(in) > c.allowance {
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

// setWrite returns the function that sets a connection's write deadline before a reply.
func (s *Server) setWrite() func(*Conn) {
	return func(c *Conn) {
		if s.limits.WriteTimeout > 0 {
			_ = c.nc.SetWriteDeadline(time.Now().Add(s.limits.WriteTimeout))
		}
	}
}

// clipLog cuts a message for the operational log.
func clipLog(m string) string {
	const n = 512
	if len(m) <= n {
		return m
	}
	return m[:n] + fmt.Sprintf("...[+%d bytes]", len(m)-n)
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
