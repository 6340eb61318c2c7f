package wire

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// TLSMode says whether a listener speaks TLS.
type TLSMode int

// TLS modes, as mongod's net.tls.mode: disabled, allowTLS (both on one port) and requireTLS.
const (
	TLSDisabled TLSMode = iota
	TLSAllowed
	TLSRequired
)

// ParseTLSMode reads "disabled", "allowed" or "required".
func ParseTLSMode(s string) (TLSMode, error) {
	switch s {
	case "disabled":
		return TLSDisabled, nil
	case "allowed":
		return TLSAllowed, nil
	case "required":
		return TLSRequired, nil
	}
	return 0, fmt.Errorf("TLS mode %q must be disabled, allowed or required", s)
}

// handshakeTimeout bounds how long a client may take to start talking or finish a TLS
// handshake, so idle half-open connections cannot pile up.
const handshakeTimeout = 10 * time.Second

// TLSListener wraps l so that connections speak TLS with cfg: always (required) or when the
// client starts with a TLS handshake (allowed). The handshake runs on the connection's own
// goroutine, at its first read, never in Accept.
func TLSListener(l net.Listener, cfg *tls.Config, mode TLSMode) net.Listener {
	if mode == TLSDisabled {
		return l
	}
	return &tlsListener{Listener: l, cfg: cfg, mode: mode}
}

type tlsListener struct {
	net.Listener
	cfg  *tls.Config
	mode TLSMode
}

func (l *tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &sniffConn{Conn: c, cfg: l.cfg, mode: l.mode}, nil
}

// sniffConn decides at its first read whether the client speaks TLS.
type sniffConn struct {
	net.Conn
	cfg  *tls.Config
	mode TLSMode

	once sync.Once
	err  error
	r    io.Reader
	w    io.Writer
	tls  *tls.Conn
}

// looksLikeTLS reports whether the first bytes are a TLS handshake record (content type 22,
// major version 3). A MongoDB message starting so would be over 66 KB, which no first message is.
func looksLikeTLS(b []byte) bool { return len(b) >= 3 && b[0] == 0x16 && b[1] == 0x03 && b[2] <= 0x04 }

func (c *sniffConn) start() {
	c.once.Do(func() {
		_ = c.SetDeadline(time.Now().Add(handshakeTimeout))
		defer func() { _ = c.SetDeadline(time.Time{}) }()
		useTLS := c.mode == TLSRequired
		under := c.Conn
		if c.mode == TLSAllowed {
			head := make([]byte, 3)
			if _, err := io.ReadFull(c.Conn, head); err != nil {
				c.err = err
				return
			}
			useTLS = looksLikeTLS(head)
			under = &prefixConn{Conn: c.Conn, prefix: head}
		}
		if !useTLS {
			c.r, c.w = under, under
			return
		}
		c.tls = tls.Server(under, c.cfg)
		if err := c.tls.Handshake(); err != nil {
			c.err = fmt.Errorf("TLS handshake: %w", err)
			return
		}
		c.r, c.w = c.tls, c.tls
	})
}

func (c *sniffConn) Read(p []byte) (int, error) {
	c.start()
	if c.err != nil {
		return 0, c.err
	}
	return c.r.Read(p)
}

func (c *sniffConn) Write(p []byte) (int, error) {
	c.start()
	if c.err != nil {
		return 0, c.err
	}
	return c.w.Write(p)
}

// TLSState returns the TLS state of a connection, or nil if it does not use TLS.
func (c *Conn) TLSState() *tls.ConnectionState {
	switch nc := c.nc.(type) {
	case *tls.Conn:
		st := nc.ConnectionState()
		return &st
	case *sniffConn:
		if nc.tls != nil {
			st := nc.tls.ConnectionState()
			return &st
		}
	}
	return nil
}

// prefixConn replays bytes already read before reading on.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
