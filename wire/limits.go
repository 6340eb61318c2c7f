package wire

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"
)

// Limits bound what one client, and all clients together, can make the data plane hold. The
// zero value of a field means "no limit" (durations, counts and budgets alike); DefaultLimits
// gives the values spid starts with. README.md ("Limits") shows how they add up to a
// worst-case memory footprint.
type Limits struct {
	// MaxConnections is the number of open connections over all listeners. A client over it
	// gets an error reply to its first message (within RefusalTimeout) and is disconnected.
	MaxConnections int
	// HandshakeTimeout is the time from accept until the connection's first message (the TLS
	// handshake and the driver's hello) has been read completely.
	HandshakeTimeout time.Duration
	// UnauthIdleTimeout closes a connection that has not authenticated and sends nothing for
	// this long. Drivers' monitoring connections never authenticate and send a hello every
	// heartbeatFrequencyMS (10 s by default), so it must be longer than that.
	UnauthIdleTimeout time.Duration
	// ReceiveTimeout is the minimum receive rate of a message once its first byte has arrived:
	// the header and then each 64 KiB (ReceiveChunk) of the body must arrive within it.
	ReceiveTimeout time.Duration
	// WriteTimeout bounds the time to write one reply to a client that does not read.
	WriteTimeout time.Duration
	// PreAuthMaxMessage is the largest message, in bytes and header included, that a
	// connection may send before it authenticates; it also bounds the uncompressed size of an
	// OP_COMPRESSED message. Authentication needs a few kilobytes (hello, the SASL steps, the
	// X.509 authenticate).
	PreAuthMaxMessage int
	// MaxPendingBytes is the server-wide budget of bytes held for messages that are being
	// received or served beyond each connection's first ReceiveChunk bytes: message buffers
	// and decompressed bodies. A message that would exceed it is refused with
	// KindResourceExhausted and its connection closed.
	MaxPendingBytes int64
	// PreAuthPendingBytes is the share of MaxPendingBytes that unauthenticated connections
	// together may hold; it is each unauthenticated connection's budget's upper bound too.
	PreAuthPendingBytes int64
	// MaxLargeDecompressions is how many decompressions of more than LargeDecompression bytes
	// run at once; the others wait for a slot.
	MaxLargeDecompressions int
}

// Fixed limits, the same for every server.
const (
	// ReceiveChunk is the unit of the minimum receive rate and the per-connection allowance
	// outside the pending-bytes budget.
	ReceiveChunk = 64 << 10
	// MaxDocumentsPerMessage bounds the documents in one OP_MSG's document sequences, as
	// mongod's maxWriteBatchSize (100,000) bounds a write batch
	// (https://www.mongodb.com/docs/manual/reference/limits/#mongodb-limit-Write-Command-Batch-Limit-Size).
	MaxDocumentsPerMessage = 100_000
	// PreAuthMaxDocuments bounds them before authentication, which needs none: each document
	// costs a 24-byte index entry, so an unauthenticated message cannot make an index larger
	// than its bytes by more than this many entries (24 KB).
	PreAuthMaxDocuments = 1000
	// LargeDecompression is the uncompressed size from which a decompression needs one of the
	// MaxLargeDecompressions slots.
	LargeDecompression = 1 << 20
	// RefusalTimeout is how long an over-limit connection has to send the message its refusal
	// answers; MaxRefusing such connections wait at once, the rest are closed without a reply.
	RefusalTimeout = 2 * time.Second
	// MaxRefusing bounds the connections waiting for their refusal at once.
	MaxRefusing = 64
	// ClipLen is the length client-supplied values are cut to in error messages and logs.
	ClipLen = 128
)

// DefaultLimits are spid's defaults, each with its flag in cmd/spid.
func DefaultLimits() Limits {
	return Limits{
		MaxConnections:         1000,
		HandshakeTimeout:       10 * time.Second,
		UnauthIdleTimeout:      60 * time.Second,
		ReceiveTimeout:         10 * time.Second,
		WriteTimeout:           60 * time.Second,
		PreAuthMaxMessage:      64 << 10,
		MaxPendingBytes:        256 << 20,
		PreAuthPendingBytes:    16 << 20,
		MaxLargeDecompressions: 2,
	}
}

// budget is a server-wide byte budget shared by connections.
type budget struct {
	used atomic.Int64
}

// take reserves n bytes within max (max <= 0: unlimited) and reports whether it could.
func (b *budget) take(n, max int64) bool {
	for {
		u := b.used.Load()
		if max > 0 && u+n > max {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

func (b *budget) give(n int64) { b.used.Add(-n) }

// Clip cuts a client-supplied string to ClipLen bytes with a marker saying how much was cut,
// so that no client value can make an error message or log line large.
func Clip(s string) string {
	if len(s) <= ClipLen {
		return s
	}
	cut := ClipLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("...[+%d bytes]", len(s)-cut)
}

// temporaryAccept reports whether an accept error is one the listener survives: the process or
// system is out of descriptors or buffers, or one pending connection failed before it was
// accepted. net/http's Server.Serve retries the same way.
func temporaryAccept(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ECONNABORTED, syscall.ECONNRESET,
		syscall.ENOBUFS, syscall.ENOMEM, syscall.EAGAIN, syscall.EINTR, syscall.EPROTO, syscall.EPERM, syscall.ETIMEDOUT} {
		if errors.Is(err, e) {
			return true
		}
	}
	var se *os.SyscallError
	if errors.As(err, &se) {
		var errno syscall.Errno
		if errors.As(se.Err, &errno) {
			return errno.Temporary()
		}
	}
	return false
}

// logLimiter lets through a burst of log lines and then one per interval, counting what it
// held back, so that a flood of bad clients cannot flood the log.
type logLimiter struct {
	mu         sync.Mutex
	interval   time.Duration
	burst      int
	tokens     int
	last       time.Time
	suppressed int
}

// allow reports whether a line may be logged now and how many were held back before it.
func (l *logLimiter) allow(now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last.IsZero() {
		l.tokens, l.last = l.burst, now
	}
	if add := int(now.Sub(l.last) / l.interval); add > 0 {
		l.tokens = min(l.burst, l.tokens+add)
		l.last = l.last.Add(time.Duration(add) * l.interval)
	}
	if l.tokens == 0 {
		l.suppressed++
		return false, 0
	}
	l.tokens--
	n := l.suppressed
	l.suppressed = 0
	return true, n
}
