package e2e

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// clientSubject is the RFC 2253 subject of the good client certificate, which is also the user
// name of its $external user.
const clientSubject = "CN=spclient,OU=SPI,O=TestOrg,C=US"

// testPKI is a throwaway certificate authority and the certificates the TLS tests need, all
// generated in a temporary directory: nothing is committed.
type testPKI struct {
	CAFile     string // the test CA, PEM (--tls-ca, --tlsCAFile)
	ServerCert string // server certificate for 127.0.0.1 and localhost, PEM (--tls-cert)
	ServerKey  string // its key, PEM (--tls-key)
	ClientFile string // client certificate and key in one PEM file (--tlsCertificateKeyFile)

	Roots   *x509.CertPool
	Client  tls.Certificate // clientSubject, signed by the test CA
	Foreign tls.Certificate // clientSubject, signed by another CA
	Expired tls.Certificate // clientSubject, signed by the test CA, expired yesterday

	ca  *issued // the test CA, to issue more certificates
	dir string  // where the PEM files are
}

// issued is one generated certificate with its key.
type issued struct {
	cert *x509.Certificate
	der  []byte
	key  *ecdsa.PrivateKey
}

func issue(t *testing.T, tmpl *x509.Certificate, parent *issued) *issued {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = serial
	parentCert, signer := tmpl, crypto.Signer(key)
	if parent != nil {
		parentCert, signer = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, key.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &issued{cert: cert, der: der, key: key}
}

func (c *issued) certPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.der})
}

func (c *issued) keyPEM(t *testing.T) []byte {
	t.Helper()
	b, err := x509.MarshalPKCS8PrivateKey(c.key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: b})
}

func (c *issued) tlsCert() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{c.der}, PrivateKey: c.key, Leaf: c.cert}
}

func newPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	caTmpl := func(cn string) *x509.Certificate {
		return &x509.Certificate{
			Subject:   pkix.Name{CommonName: cn, Organization: []string{"TestOrg"}},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		}
	}
	clientTmpl := func(notBefore, notAfter time.Time) *x509.Certificate {
		return &x509.Certificate{
			Subject: pkix.Name{CommonName: "spclient", OrganizationalUnit: []string{"SPI"},
				Organization: []string{"TestOrg"}, Country: []string{"US"}},
			NotBefore: notBefore, NotAfter: notAfter,
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
	}
	ca := issue(t, caTmpl("SPI e2e test CA"), nil)
	other := issue(t, caTmpl("Some other CA"), nil)
	server := issue(t, &x509.Certificate{
		Subject:   pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:    []string{"localhost"},
	}, ca)
	client := issue(t, clientTmpl(now.Add(-time.Hour), now.Add(24*time.Hour)), ca)
	foreign := issue(t, clientTmpl(now.Add(-time.Hour), now.Add(24*time.Hour)), other)
	expired := issue(t, clientTmpl(now.Add(-72*time.Hour), now.Add(-24*time.Hour)), ca)
	if got := client.cert.Subject.ToRDNSequence().String(); got != clientSubject {
		t.Fatalf("client certificate subject %q, want %q", got, clientSubject)
	}

	p := &testPKI{
		CAFile:     filepath.Join(dir, "ca.pem"),
		ServerCert: filepath.Join(dir, "server.pem"),
		ServerKey:  filepath.Join(dir, "server-key.pem"),
		ClientFile: filepath.Join(dir, "client.pem"),
		Roots:      x509.NewCertPool(),
		Client:     client.tlsCert(),
		Foreign:    foreign.tlsCert(),
		Expired:    expired.tlsCert(),
		ca:         ca,
		dir:        dir,
	}
	p.Roots.AddCert(ca.cert)
	for path, b := range map[string][]byte{
		p.CAFile:     ca.certPEM(),
		p.ServerCert: server.certPEM(),
		p.ServerKey:  server.keyPEM(t),
		p.ClientFile: append(client.certPEM(), client.keyPEM(t)...),
	} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// spidArgs are the flags that serve the data plane with this PKI.
func (p *testPKI) spidArgs(extra ...string) []string {
	return append([]string{"--tls-cert", p.ServerCert, "--tls-key", p.ServerKey, "--tls-ca", p.CAFile}, extra...)
}

// tlsConfig trusts the test CA and, when cert is given, always presents it: Go's client would
// otherwise leave out a certificate whose issuer is not among the CAs the server asks for.
func (p *testPKI) tlsConfig(cert *tls.Certificate) *tls.Config {
	cfg := &tls.Config{RootCAs: p.Roots, MinVersion: tls.VersionTLS12}
	if cert != nil {
		c := *cert
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
	}
	return cfg
}

// firstRead connects with TLS and reads: what the server says to a client that has not said
// anything yet.
func firstRead(addr string, cfg *tls.Config) error {
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	var b [1]byte
	_, err = conn.Read(b[:])
	return err
}

// x509URI is the URI of a MONGODB-X509 login on addr.
func x509URI(addr string) string {
	return "mongodb://" + addr + "/?authSource=%24external&authMechanism=MONGODB-X509"
}

// connectTLS is connectGo with a TLS configuration (nil: plain TCP) and a server selection
// timeout, kept short where the connection is expected to fail.
func connectTLS(t *testing.T, uri string, cfg *tls.Config, selection time.Duration) *mongo.Client {
	t.Helper()
	o := options.Client().ApplyURI(uri).SetServerSelectionTimeout(selection)
	if cfg != nil {
		o.SetTLSConfig(cfg)
	}
	c, err := mongo.Connect(o)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c
}

// addX509User creates the $external user of clientSubject through the Admin API.
func addX509User(t *testing.T, s *spid, scopes []map[string]string) {
	t.Helper()
	body := map[string]any{"databaseName": "$external", "username": clientSubject, "x509Type": "CUSTOMER",
		"roles": []map[string]string{{"roleName": "readAnyDatabase", "databaseName": "admin"}}}
	if scopes != nil {
		body["scopes"] = scopes
	}
	newAPI(t, s.Creds(t)).ok("POST", "/databaseUsers", body)
}

// authenticatedUsers runs connectionStatus and returns authInfo.authenticatedUsers.
func authenticatedUsers(t *testing.T, c *mongo.Client) []bson.M {
	t.Helper()
	var st struct {
		AuthInfo struct {
			AuthenticatedUsers []bson.M `bson:"authenticatedUsers"`
		} `bson:"authInfo"`
	}
	if err := c.Database("admin").RunCommand(t.Context(), bson.D{{Key: "connectionStatus", Value: 1}}).Decode(&st); err != nil {
		t.Fatalf("connectionStatus: %v", err)
	}
	return st.AuthInfo.AuthenticatedUsers
}

// wantUser checks connectionStatus names exactly one authenticated user, user on db.
func wantUser(t *testing.T, c *mongo.Client, user, db string) {
	t.Helper()
	got := authenticatedUsers(t, c)
	if len(got) != 1 || got[0]["user"] != user || got[0]["db"] != db {
		t.Errorf("authenticatedUsers = %v, want [{user: %q, db: %q}]", got, user, db)
	}
}

// wantAuthFailed checks err is the server's AuthenticationFailed (18) reply.
func wantAuthFailed(t *testing.T, err error) {
	t.Helper()
	var ce mongo.CommandError
	if !errors.As(err, &ce) || ce.Code != 18 || ce.Message != "Authentication failed." {
		t.Errorf("want code 18 %q, got %v", "Authentication failed.", err)
	}
}

// mongosh logs in with its client certificate: the Node driver authenticates speculatively in
// hello, and connectionStatus names the certificate's subject on $external.
func TestX509Mongosh(t *testing.T) {
	p := newPKI(t)
	s := startSpid(t, p.spidArgs()...)
	if !strings.Contains(s.Stdout.String(), " --tls") {
		t.Errorf("the printed mongosh command lacks --tls:\n%s", s.Stdout)
	}
	addX509User(t, s, nil)
	r := runMongosh(t, x509URI(s.Addr), "--tls", "--tlsCAFile", p.CAFile, "--tlsCertificateKeyFile", p.ClientFile,
		"--quiet", "--eval", `printjson(db.runCommand({connectionStatus:1}).authInfo.authenticatedUsers)`)
	if r.Exit != 0 || r.Stderr != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.Exit, r.Stdout, r.Stderr)
	}
	want := "[ { user: '" + clientSubject + "', db: '$external' } ]"
	if got := strings.Join(strings.Fields(r.Stdout), " "); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// The Go driver logs in with MONGODB-X509, and the admin user logs in with SCRAM over the same
// TLS listener.
func TestX509GoDriverAndSCRAMOverTLS(t *testing.T) {
	p := newPKI(t)
	s := startSpid(t, p.spidArgs()...)
	addX509User(t, s, nil)

	t.Run("X509", func(t *testing.T) {
		c := connectTLS(t, x509URI(s.Addr), p.tlsConfig(&p.Client), 10*time.Second)
		if err := c.Ping(t.Context(), nil); err != nil {
			t.Fatalf("ping: %v", err)
		}
		wantUser(t, c, clientSubject, "$external")
	})
	t.Run("SCRAM", func(t *testing.T) {
		c := connectTLS(t, s.Admin(t, "", ""), p.tlsConfig(nil), 10*time.Second)
		if err := c.Ping(t.Context(), nil); err != nil {
			t.Fatalf("ping: %v", err)
		}
		wantUser(t, c, s.Creds(t).Username, "admin")
	})
}

// What a TLS-required listener refuses: X.509 without a certificate (AuthenticationFailed), a
// certificate from another CA or an expired one (the handshake fails), and plain TCP. None of it
// takes the server down.
func TestTLSRefusals(t *testing.T) {
	p := newPKI(t)
	s := startSpid(t, p.spidArgs()...)
	addX509User(t, s, nil)

	t.Run("X509 without a certificate", func(t *testing.T) {
		c := connectTLS(t, x509URI(s.Addr), p.tlsConfig(nil), 10*time.Second)
		wantAuthFailed(t, c.Ping(t.Context(), nil))

		r := runMongosh(t, x509URI(s.Addr), "--tls", "--tlsCAFile", p.CAFile, "--quiet", "--eval", `db.runCommand({ping:1})`)
		if r.Exit != 1 || strings.TrimSpace(r.Stderr) != "MongoServerError: Authentication failed." {
			t.Errorf("exit %d, stdout %q, stderr %q", r.Exit, r.Stdout, r.Stderr)
		}
	})

	// The failing cases each wait out a short server selection timeout, so they run together.
	t.Run("handshake", func(t *testing.T) {
		for _, c := range []struct {
			name  string
			cert  *tls.Certificate
			alert string
		}{
			{"foreign CA", &p.Foreign, "tls: unknown certificate authority"},
			{"expired", &p.Expired, "tls: expired certificate"},
		} {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				// The server's alert reaches the client at its first read after the handshake (TLS 1.3)
				// or ends the handshake itself (TLS 1.2).
				if err := firstRead(s.Addr, p.tlsConfig(c.cert)); err == nil || !strings.Contains(err.Error(), c.alert) {
					t.Errorf("raw TLS client: want the %q alert, got %v", c.alert, err)
				}

				// The driver's ping fails without any reply from the server; which error the driver
				// reports last (the alert, or a cancelled retry) is its own business.
				err := connectTLS(t, x509URI(s.Addr), p.tlsConfig(c.cert), 2*time.Second).Ping(t.Context(), nil)
				var ce mongo.CommandError
				if err == nil || errors.As(err, &ce) {
					t.Errorf("Go driver: want the ping to fail for want of a connection, got %v", err)
				}
			})
		}
		t.Run("plain TCP", func(t *testing.T) {
			t.Parallel()
			c := connectTLS(t, s.Admin(t, "", ""), nil, 2*time.Second)
			err := c.Ping(t.Context(), nil)
			var ce mongo.CommandError
			if err == nil || errors.As(err, &ce) {
				t.Errorf("a plain client on a TLS-required listener: want the ping to fail for want of a connection, got %v", err)
			}

			conn, err := net.Dial("tcp", s.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = conn.Close() }()
			if _, err := conn.Write(message(1, 2013, opMsg(0, body0(doc(t, bson.D{{Key: "hello", Value: 1}, {Key: "$db", Value: "admin"}}))))); err != nil {
				t.Fatal(err)
			}
			if !closedByServer(conn) {
				t.Error("a plain hello on a TLS-required listener got a reply or an open connection")
			}
		})
	})

	t.Run("server stays up", func(t *testing.T) {
		c := connectTLS(t, x509URI(s.Addr), p.tlsConfig(&p.Client), 10*time.Second)
		if err := c.Ping(t.Context(), nil); err != nil {
			t.Fatalf("ping after the refusals: %v", err)
		}
		wantUser(t, c, clientSubject, "$external")
	})
}

// With --tls-mode allowed one port serves TLS and plain clients alike.
func TestTLSModeAllowed(t *testing.T) {
	p := newPKI(t)
	s := startSpid(t, p.spidArgs("--tls-mode", "allowed")...)
	addX509User(t, s, nil)

	var wg sync.WaitGroup
	clients := map[string]*mongo.Client{
		"TLS SCRAM": connectTLS(t, s.Admin(t, "", ""), p.tlsConfig(nil), 10*time.Second),
		"TLS X509":  connectTLS(t, x509URI(s.Addr), p.tlsConfig(&p.Client), 10*time.Second),
		"plain":     connectTLS(t, s.Admin(t, "", ""), nil, 10*time.Second),
	}
	for name, c := range clients {
		wg.Go(func() {
			if err := c.Ping(t.Context(), nil); err != nil {
				t.Errorf("%s: ping: %v", name, err)
			}
		})
	}
	wg.Wait()
	wantUser(t, clients["TLS SCRAM"], s.Creds(t).Username, "admin")
	wantUser(t, clients["TLS X509"], clientSubject, "$external")
	wantUser(t, clients["plain"], s.Creds(t).Username, "admin")

	// A plain connection has no certificate to log in with.
	wantAuthFailed(t, connectTLS(t, x509URI(s.Addr), nil, 10*time.Second).Ping(t.Context(), nil))
}

// An X.509 user scoped to another workspace cannot log in to the default one, whether the
// driver authenticates (speculatively, then explicitly) or the command is sent by hand.
func TestX509ScopedUser(t *testing.T) {
	p := newPKI(t)
	s := startSpid(t, p.spidArgs()...)
	newAPI(t, s.Creds(t)).ok("POST", "/streams", map[string]any{"name": "other"})
	addX509User(t, s, []map[string]string{{"name": "other", "type": "STREAM"}})

	t.Run("Go driver", func(t *testing.T) {
		c := connectTLS(t, x509URI(s.Addr), p.tlsConfig(&p.Client), 10*time.Second)
		wantAuthFailed(t, c.Ping(t.Context(), nil))
	})
	t.Run("authenticate command", func(t *testing.T) {
		c := connectTLS(t, "mongodb://"+s.Addr+"/?maxPoolSize=1", p.tlsConfig(&p.Client), 10*time.Second)
		err := c.Database("$external").RunCommand(t.Context(),
			bson.D{{Key: "authenticate", Value: 1}, {Key: "mechanism", Value: "MONGODB-X509"}}).Err()
		wantAuthFailed(t, err)
		if got := authenticatedUsers(t, c); len(got) != 0 {
			t.Errorf("after the refusal authenticatedUsers = %v, want none", got)
		}
	})
	t.Run("mongosh", func(t *testing.T) {
		r := runMongosh(t, x509URI(s.Addr), "--tls", "--tlsCAFile", p.CAFile, "--tlsCertificateKeyFile", p.ClientFile,
			"--quiet", "--eval", `db.runCommand({ping:1})`)
		if r.Exit != 1 || strings.TrimSpace(r.Stderr) != "MongoServerError: Authentication failed." {
			t.Errorf("exit %d, stdout %q, stderr %q", r.Exit, r.Stdout, r.Stderr)
		}
	})
}
