package e2e

import (
	"crypto/x509"
	"encoding/asn1"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// ava is one attribute of a certificate subject built byte by byte: an OID and a string value
// of the given ASN.1 tag (UTF8String when 0).
type ava struct {
	oid asn1.ObjectIdentifier
	val string
	tag int
}

var (
	oidCN    = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidC     = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidO     = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidEmail = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
	oidUID   = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}
	oidDC    = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}
	// oidPrivate is an attribute neither Go nor OpenSSL has a name for.
	oidPrivate = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 55555, 1}
)

// rawSubject encodes a Name with one attribute per RDN, in the order given (the order of
// `openssl req -subj /A=.../B=...`), bypassing pkix.Name so nothing is dropped or reordered.
func rawSubject(t *testing.T, avas ...ava) []byte {
	t.Helper()
	type atv struct {
		Type  asn1.ObjectIdentifier
		Value asn1.RawValue
	}
	type rdnSET []atv
	var seq []rdnSET
	for _, a := range avas {
		tag := a.tag
		if tag == 0 {
			tag = asn1.TagUTF8String
		}
		seq = append(seq, rdnSET{{Type: a.oid, Value: asn1.RawValue{Class: asn1.ClassUniversal, Tag: tag, Bytes: []byte(a.val)}}})
	}
	der, err := asn1.Marshal(seq)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// clientCert issues a client certificate with the given raw subject from the test CA and writes
// it with its key to one PEM file.
func (p *testPKI) clientCert(t *testing.T, name string, subject []byte) (*issued, string) {
	t.Helper()
	c := issue(t, &x509.Certificate{RawSubject: subject, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, p.ca)
	file := filepath.Join(p.dir, name+".pem")
	writeFile(t, file, append(c.certPEM(), c.keyPEM(t)...))
	return c, file
}

// Each certificate's $external user name is its subject exactly as
// `openssl x509 -noout -subject -nameopt RFC2253` prints it, and mongosh, the Go driver and
// pymongo each log in with each certificate as that user. Two certificates that differ in one
// attribute are two users.
func TestX509SubjectsEveryClient(t *testing.T) {
	p := newPKI(t)
	s := startSpid(t, p.spidArgs()...)
	a := newAPI(t, s.Creds(t))
	certs := []struct {
		name string
		subj []byte
		user string
	}{
		{"email", rawSubject(t, ava{oidC, "US", asn1.TagPrintableString}, ava{oidO, "Acme", 0}, ava{oidCN, "mailer", 0},
			ava{oidEmail, "mailer@example.com", asn1.TagIA5String}),
			"emailAddress=mailer@example.com,CN=mailer,O=Acme,C=US"},
		{"reordered", rawSubject(t, ava{oidCN, "ordered", 0}, ava{oidO, "Acme", 0}, ava{oidC, "US", asn1.TagPrintableString}),
			"C=US,O=Acme,CN=ordered"},
		{"unknown-to-go", rawSubject(t, ava{oidDC, "com", asn1.TagIA5String}, ava{oidDC, "example", asn1.TagIA5String},
			ava{oidUID, "jdoe", 0}, ava{oidCN, "John Doe", 0}, ava{oidPrivate, "custom", 0}),
			"1.3.6.1.4.1.55555.1=#0C06637573746F6D,CN=John Doe,UID=jdoe,DC=example,DC=com"},
		{"twin-a", rawSubject(t, ava{oidO, "Acme", 0}, ava{oidCN, "twin", 0}, ava{oidEmail, "a@example.com", asn1.TagIA5String}),
			"emailAddress=a@example.com,CN=twin,O=Acme"},
		{"twin-b", rawSubject(t, ava{oidO, "Acme", 0}, ava{oidCN, "twin", 0}, ava{oidEmail, "b@example.com", asn1.TagIA5String}),
			"emailAddress=b@example.com,CN=twin,O=Acme"},
	}
	_, port, _ := net.SplitHostPort(s.Addr)
	for _, c := range certs {
		cert, file := p.clientCert(t, c.name, c.subj)
		if c.name == "twin-a" || c.name == "twin-b" {
			// What spid used to derive the name from: pkix.Name's RDN sequence, identical for both.
			if got := cert.cert.Subject.ToRDNSequence().String(); got != "CN=twin,O=Acme" {
				t.Fatalf("%s: pkix.Name gives %q; the test expects both twins to look alike there", c.name, got)
			}
		}
		a.ok("POST", "/databaseUsers", map[string]any{"databaseName": "$external", "username": c.user,
			"x509Type": "CUSTOMER", "roles": []map[string]string{{"roleName": "readAnyDatabase", "databaseName": "admin"}}})
		t.Run(c.name+"/mongosh", func(t *testing.T) {
			r := runMongosh(t, x509URI(s.Addr), "--tls", "--tlsCAFile", p.CAFile, "--tlsCertificateKeyFile", file,
				"--quiet", "--eval", `print(JSON.stringify(db.runCommand({connectionStatus:1}).authInfo.authenticatedUsers))`)
			var users []map[string]string
			lastJSON(t, r, &users)
			if len(users) != 1 || users[0]["user"] != c.user || users[0]["db"] != "$external" {
				t.Errorf("authenticatedUsers = %v, want %q on $external", users, c.user)
			}
		})
		t.Run(c.name+"/go", func(t *testing.T) {
			tc := cert.tlsCert()
			cl := connectTLS(t, x509URI(s.Addr), p.tlsConfig(&tc), 10*time.Second)
			wantUser(t, cl, c.user, "$external")
		})
		t.Run(c.name+"/pymongo", func(t *testing.T) {
			r := runPython(t, `
import json, sys, pymongo
c = pymongo.MongoClient("127.0.0.1", int(sys.argv[1]), tls=True, tlsCAFile=sys.argv[2], tlsCertificateKeyFile=sys.argv[3],
                        authMechanism="MONGODB-X509", serverSelectionTimeoutMS=10000)
print(json.dumps(c.admin.command("connectionStatus")["authInfo"]["authenticatedUsers"]))
`, port, p.CAFile, file)
			var users []map[string]string
			lastJSON(t, r, &users)
			if len(users) != 1 || users[0]["user"] != c.user || users[0]["db"] != "$external" {
				t.Errorf("authenticatedUsers = %v, want %q on $external", users, c.user)
			}
		})
	}
	// Every successful X.509 login named its own user; none logged in as another.
	logins := map[string]int{}
	for _, e := range readAudit(t, s) {
		if e.Event == "authenticate" && e.Mechanism == "MONGODB-X509" && e.Outcome == "success" {
			logins[e.User]++
		}
	}
	for _, c := range certs {
		if logins[c.user] < 3 {
			t.Errorf("%s logged in %d times, want at least 3 (one per client)", c.user, logins[c.user])
		}
	}
	if len(logins) != len(certs) {
		t.Errorf("X.509 logins as %v, want exactly the %d certificate users", logins, len(certs))
	}
}
