// Package kafka is the Kafka connection type: a $source that reads topics partition by
// partition, and an $emit that produces to a topic, both with segmentio/kafka-go.
//
// The connection (spec §7): bootstrapServers; security.protocol PLAINTEXT, SASL_PLAINTEXT,
// SASL_SSL or SSL (mutual TLS with authentication.sslCertificate and sslKey); SASL
// mechanisms PLAIN, SCRAM-256 and SCRAM-512; brokerPublicCertificate, the CA that signed the
// brokers' certificates (the system pool when empty).
//
// Offsets live in the processor's checkpoint: a split per (topic, partition), whose position
// is the offset of the next record to read. A restart resumes from the checkpoint; the
// consumer group's committed offsets are only written, after each checkpoint, so that Kafka
// tooling sees the group's lag (spec §4.4), and read at a processor's first start.
package kafka

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
	"github.com/youmark/pkcs8"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/connectors"
	"github.com/spi-streams/spi/store"
)

func init() {
	connectors.Register(connectors.Type{Name: store.TypeKafka, NewSource: NewSource, NewSink: NewSink})
}

// Timeouts of the connection.
const (
	// dialTimeout bounds one TCP connection, its TLS handshake and SASL exchange.
	dialTimeout = 10 * time.Second
	// stallTimeout is how long readers may fail to reach a broker before the source reports
	// the error to the runtime, which retries from the checkpoint (Atlas's Kafka timeout is
	// 30 s, spec §11).
	stallTimeout = 30 * time.Second
)

// conn is a registry entry turned into what kafka-go needs. It holds secrets: it is never
// logged and no error prints it.
type conn struct {
	brokers  []string
	protocol string
	tls      *tls.Config
	mech     sasl.Mechanism
	mechName string
	user     string
	clientID string
}

// newConn reads a Kafka connection. Its errors name the field and never a secret.
func newConn(c *store.Connection) (*conn, error) {
	if c == nil || c.Kafka == nil {
		return nil, connectors.Invalid("connection has no Kafka settings")
	}
	k := c.Kafka
	out := &conn{protocol: k.Security.Protocol, clientID: "spi"}
	if id := k.Config["client.id"]; id != "" {
		out.clientID = id
	}
	for _, b := range strings.Split(k.BootstrapServers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out.brokers = append(out.brokers, b)
		}
	}
	if len(out.brokers) == 0 {
		return nil, connectors.Invalid("connection %q: bootstrapServers is empty", c.Name)
	}
	if out.protocol == "" {
		out.protocol = "PLAINTEXT"
	}
	if out.protocol == "SASL_SSL" || out.protocol == "SSL" {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if pemCA := k.Security.BrokerPublicCertificate; pemCA != "" {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM([]byte(pemCA)) {
				return nil, connectors.Invalid("connection %q: security.brokerPublicCertificate holds no PEM certificate", c.Name)
			}
			cfg.RootCAs = pool
		}
		if out.protocol == "SSL" {
			cert, err := clientCertificate(k.Auth)
			if err != nil {
				return nil, connectors.Invalid("connection %q: %v", c.Name, err)
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		out.tls = cfg
	}
	if strings.HasPrefix(out.protocol, "SASL_") {
		out.user, out.mechName = k.Auth.Username, k.Auth.Mechanism
		var err error
		switch k.Auth.Mechanism {
		case "PLAIN":
			out.mech = plain.Mechanism{Username: k.Auth.Username, Password: k.Auth.Password.Reveal()}
		case "SCRAM-256":
			out.mech, err = scram.Mechanism(scram.SHA256, k.Auth.Username, k.Auth.Password.Reveal())
		case "SCRAM-512":
			out.mech, err = scram.Mechanism(scram.SHA512, k.Auth.Username, k.Auth.Password.Reveal())
		default:
			return nil, connectors.Invalid("connection %q: authentication.mechanism %s is not supported by spid's Kafka client (PLAIN, SCRAM-256, SCRAM-512)", c.Name, k.Auth.Mechanism)
		}
		if err != nil {
			return nil, connectors.Invalid("connection %q: authentication: %v", c.Name, err)
		}
	}
	return out, nil
}

// clientCertificate is the client certificate of mutual TLS: authentication.sslCertificate and
// sslKey (PEM), the key optionally encrypted PKCS #8 under sslKeyPassword.
func clientCertificate(a store.KafkaAuth) (tls.Certificate, error) {
	if a.SSLCertificate == "" || a.SSLKey == "" {
		return tls.Certificate{}, errors.New("security.protocol SSL needs authentication.sslCertificate and authentication.sslKey")
	}
	keyPEM := []byte(a.SSLKey.Reveal())
	if pw := a.SSLKeyPassword.Reveal(); pw != "" {
		block, _ := pem.Decode(keyPEM)
		if block == nil {
			return tls.Certificate{}, errors.New("authentication.sslKey is not a PEM key")
		}
		key, err := pkcs8.ParsePKCS8PrivateKey(block.Bytes, []byte(pw))
		if err != nil {
			return tls.Certificate{}, errors.New("authentication.sslKey cannot be decrypted with authentication.sslKeyPassword")
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return tls.Certificate{}, errors.New("authentication.sslKey: unsupported key type")
		}
		keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	cert, err := tls.X509KeyPair([]byte(a.SSLCertificate), keyPEM)
	if err != nil {
		// The parser's message may quote the key's bytes: say only what is wrong.
		return tls.Certificate{}, errors.New("authentication.sslCertificate and sslKey are not a matching PEM certificate and private key")
	}
	return cert, nil
}

// dialer is what the source's fetchers connect with (kafka-go Conns to partition leaders):
// their connections read through readBufferSize bytes of buffer (dialBuffered).
func (c *conn) dialer() *kafka.Dialer {
	return &kafka.Dialer{ClientID: c.clientID, Timeout: dialTimeout, DialFunc: dialBuffered, TLS: c.tls, SASLMechanism: c.mech}
}

// readBufferSize is the read buffer, in bytes, under each connection of a fetcher. kafka-go's
// Conn reads a fetch response through a bufio.Reader of 4 KiB (conn.go), which costs one read
// system call per 4 KiB of records; a larger buffer below it makes that one call per 64 KiB.
const readBufferSize = 64 << 10

// bufferedConn is a network connection whose reads go through a buffer of readBufferSize.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// dialBuffered dials a TCP connection, as kafka-go's Dialer does without a DialFunc (with
// its default keep-alive and dual-stack fallback), and buffers its reads. TLS, when
// configured, goes on top of it.
func dialBuffered(ctx context.Context, network, address string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return &bufferedConn{Conn: c, r: bufio.NewReaderSize(c, readBufferSize)}, nil
}

// transport is what a kafka-go Client or Writer connects with.
func (c *conn) transport() *kafka.Transport {
	return &kafka.Transport{ClientID: c.clientID, DialTimeout: dialTimeout, TLS: c.tls, SASL: c.mech, IdleTimeout: time.Minute, MetadataTTL: 10 * time.Second}
}

func (c *conn) client() *kafka.Client {
	return &kafka.Client{Addr: kafka.TCP(c.brokers...), Timeout: dialTimeout, Transport: c.transport()}
}

// probe connects to the first broker that answers, with TLS and SASL as configured, so that an
// unreachable cluster, a TLS failure and bad credentials each get a message of their own
// before any reader starts (kafka-go itself reports a wrong password only as "unexpected EOF").
func (c *conn) probe(ctx context.Context) error {
	var first error
	for _, b := range c.brokers {
		ctx, cancel := context.WithTimeout(ctx, dialTimeout)
		kc, err := c.dialer().DialContext(ctx, "tcp", b)
		if err == nil {
			// With TLS 1.3 a broker refuses a client certificate only after the client's
			// handshake is done: one request makes the refusal show here.
			_ = kc.SetDeadline(time.Now().Add(dialTimeout))
			_, err = kc.ApiVersions()
			_ = kc.Close()
		}
		cancel()
		if err == nil {
			return nil
		}
		if c.mech == nil && c.tls == nil && (errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)) {
			// The broker accepted the TCP connection and closed it at the first request.
			return &connectors.Error{Retryable: true, Code: connectors.CodeKafkaConnection, Err: fmt.Errorf(
				"the Kafka broker %s closed the connection at the first request: does its listener want SASL or TLS? (the connection's security.protocol is %s): %w", b, c.protocol, err)}
		}
		err = c.explain(err, b)
		var ae *authError
		if errors.As(err, &ae) {
			return err // the credentials are wrong everywhere
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// explain turns a kafka-go or network error into a retryable connector error that says
// which failure it is: the broker is unreachable, TLS failed, or authentication failed.
// addr is the broker concerned, if known.
func (c *conn) explain(err error, addr string) error {
	if err == nil {
		return nil
	}
	var ce *connectors.Error
	if errors.As(err, &ce) {
		return err
	}
	where := "Kafka cluster " + strings.Join(c.brokers, ",")
	if addr != "" {
		where = "Kafka broker " + addr
	}
	var opErr *net.OpError
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var alert tls.AlertError
	var recordErr tls.RecordHeaderError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	switch {
	case errors.Is(err, kafka.MessageSizeTooLarge):
		// The same batch would be refused again: not retryable.
		return &connectors.Error{Code: connectors.CodeKafkaConnection, Err: fmt.Errorf(
			"%s refused a produce batch as too large: set the connection's config message.max.bytes to the broker's message.max.bytes (%w)", where, err)}
	case errors.Is(err, kafka.OffsetOutOfRange):
		return &connectors.Error{Retryable: true, Code: connectors.CodeKafkaConnection, Err: fmt.Errorf(
			"%s: the offset to read is no longer in the partition's log (records deleted, or the topic recreated); resuming per auto_offset_reset: %w", where, err)}
	case errors.Is(err, kafka.SASLAuthenticationFailed):
		return authFailed(fmt.Errorf("%s: authentication failed: the broker rejected SASL %s for user %q", where, c.mechName, c.user))
	case c.mech != nil && (errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)):
		return authFailed(fmt.Errorf("%s: authentication failed: the broker closed the connection during SASL %s authentication of user %q (wrong username or password?)", where, c.mechName, c.user))
	case errors.As(err, &certErr), errors.As(err, &unknownCA), errors.As(err, &hostErr):
		return &connectors.Error{Retryable: true, Code: connectors.CodeKafkaConnection, Err: fmt.Errorf("%s: TLS failed: the broker's certificate is not trusted (check security.brokerPublicCertificate): %w", where, err)}
	case errors.As(err, &alert), strings.Contains(err.Error(), "remote error: tls: "):
		// kafka-go wraps some errors as text, so the TLS alert is matched by its text too.
		if c.protocol == "SSL" {
			return authFailed(fmt.Errorf("%s: authentication failed: the broker refused spid's client certificate (%w)", where, err))
		}
		return &connectors.Error{Retryable: true, Code: connectors.CodeKafkaConnection, Err: fmt.Errorf("%s: TLS failed: %w", where, err)}
	case errors.As(err, &recordErr):
		return &connectors.Error{Retryable: true, Code: connectors.CodeKafkaConnection, Err: fmt.Errorf("%s: TLS failed: the broker does not speak TLS (check security.protocol)", where)}
	case c.protocol == "SSL" && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || strings.Contains(err.Error(), "bad certificate")):
		return authFailed(fmt.Errorf("%s: authentication failed: the broker closed the TLS connection, refusing spid's client certificate", where))
	case errors.As(err, &dnsErr), errors.As(err, &opErr) && opErr.Op == "dial", errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, kafka.BrokerNotAvailable):
		return &connectors.Error{Retryable: true, Code: connectors.CodeKafkaConnection, Err: fmt.Errorf("%s is unreachable: %w", where, err)}
	}
	return &connectors.Error{Retryable: true, Code: connectors.CodeKafkaConnection, Err: fmt.Errorf("%s: %w", where, err)}
}

// authError marks a failed authentication (SASL or the client certificate of mutual TLS).
type authError struct{ error }

func (e *authError) Unwrap() error { return e.error }

// authFailed is retryable, as Atlas retries bad credentials within its retry window (spec §4.5):
// an administrator may fix the registry entry meanwhile.
func authFailed(err error) error {
	return &connectors.Error{Retryable: true, Code: connectors.CodeKafkaConnection, Err: &authError{err}}
}

// freeList keeps up to max buffers for reuse and hands back the one given back last: of those
// kept, it is the one most likely still in the CPU's cache. (A channel would hand back the
// oldest; a sync.Pool loses its contents at every collection.) It is safe for concurrent use.
type freeList[T any] struct {
	mu    sync.Mutex
	items []T
	max   int
}

// get takes the buffer given back last, if any.
func (f *freeList[T]) get() (T, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var zero T
	n := len(f.items)
	if n == 0 {
		return zero, false
	}
	x := f.items[n-1]
	f.items[n-1] = zero
	f.items = f.items[:n-1]
	return x, true
}

// put keeps x unless max buffers are kept already.
func (f *freeList[T]) put(x T) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.items) < f.max {
		f.items = append(f.items, x)
	}
}

// stageConfig returns the elements of a stage's config document (none when there is none);
// stage ("$source" or "$emit") names it in the error when config is not a document.
func stageConfig(opts bson.Raw, stage string) ([]bson.RawElement, error) {
	v, err := opts.LookupErr("config")
	if err != nil {
		return nil, nil
	}
	cfg, ok := v.DocumentOK()
	if !ok {
		return nil, connectors.Invalid("%s.config: must be a document", stage)
	}
	elems, _ := cfg.Elements()
	return elems, nil
}

// bufferSize rounds a buffer's size up to a multiple of 256 KiB, so that batches of similar
// sizes fit in the same reused buffers (freeList).
func bufferSize(n int) int { return (n + 256<<10 - 1) &^ (256<<10 - 1) }

// keyFormat reads a keyFormat option, the same for $source and $emit (spec §3.1.1 and §3.8):
// binData, string, json, int or long.
func keyFormat(v bson.RawValue, field string) (string, error) {
	switch str, _ := v.StringValueOK(); str {
	case "binData", "string", "json", "int", "long":
		return str, nil
	}
	return "", connectors.Invalid("%s: must be binData, string, json, int or long", field)
}
