package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// attr is one attribute of a test subject: its OID and its value, a Go string encoded as the
// ASN.1 string type of tag (0: UTF8String), or raw DER when der is set.
type attr struct {
	oid string
	val string
	tag int
	der []byte
}

func oid(t *testing.T, s string) asn1.ObjectIdentifier {
	t.Helper()
	var o asn1.ObjectIdentifier
	for _, part := range strings.Split(s, ".") {
		n := 0
		for _, c := range part {
			n = n*10 + int(c-'0')
		}
		o = append(o, n)
	}
	return o
}

// rawName encodes a Name in exactly the given RDN order, each inner slice one (possibly
// multi-valued) RDN.
func rawName(t *testing.T, rdns ...[]attr) []byte {
	t.Helper()
	var seq []rdnSET
	for _, rdn := range rdns {
		var set rdnSET
		for _, a := range rdn {
			v := asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagUTF8String, Bytes: []byte(a.val)}
			switch {
			case a.der != nil:
				v = asn1.RawValue{FullBytes: a.der}
			case a.tag == tagBMP:
				v.Tag = tagBMP
				v.Bytes = nil
				for _, r := range a.val {
					v.Bytes = append(v.Bytes, byte(r>>8), byte(r))
				}
			case a.tag != 0:
				v.Tag = a.tag
			}
			set = append(set, atv{Type: oid(t, a.oid), Value: v})
		}
		seq = append(seq, set)
	}
	der, err := asn1.Marshal(seq)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func selfSigned(t *testing.T, subject []byte) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), RawSubject: subject,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// openssl prints the certificate's subject as `openssl x509 -noout -subject -nameopt RFC2253`
// does: the reference SubjectName must match byte for byte.
func openssl(t *testing.T, cert *x509.Certificate) string {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatal("openssl is not installed; `make deps` installs it")
	}
	f := filepath.Join(t.TempDir(), "c.pem")
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "x509", "-in", f, "-noout", "-subject", "-nameopt", "RFC2253").Output()
	if err != nil {
		t.Fatalf("openssl: %v", err)
	}
	s := strings.TrimSuffix(string(out), "\n")
	return strings.TrimPrefix(s, "subject=")
}

func TestSubjectNameMatchesOpenSSL(t *testing.T) {
	const (
		cn, o, ou, c, email = "2.5.4.3", "2.5.4.10", "2.5.4.11", "2.5.4.6", "1.2.840.113549.1.9.1"
		uid, dc, street     = "0.9.2342.19200300.100.1.1", "0.9.2342.19200300.100.1.25", "2.5.4.9"
	)
	one := func(a ...attr) [][]attr {
		out := make([][]attr, len(a))
		for i := range a {
			out[i] = []attr{a[i]}
		}
		return out
	}
	cases := []struct {
		name string
		rdns [][]attr
		want string // mongod's user name; "" when only OpenSSL's output is the reference
	}{
		{"emailAddress", one(attr{oid: c, val: "US", tag: asn1.TagPrintableString}, attr{oid: o, val: "Acme"},
			attr{oid: cn, val: "mailer"}, attr{oid: email, val: "mailer@example.com", tag: asn1.TagIA5String}),
			"emailAddress=mailer@example.com,CN=mailer,O=Acme,C=US"},
		{"reordered", one(attr{oid: cn, val: "ordered"}, attr{oid: o, val: "Acme"}, attr{oid: c, val: "US", tag: asn1.TagPrintableString}),
			"C=US,O=Acme,CN=ordered"},
		{"UID and DC", one(attr{oid: dc, val: "com", tag: asn1.TagIA5String}, attr{oid: dc, val: "example", tag: asn1.TagIA5String},
			attr{oid: uid, val: "jdoe"}, attr{oid: cn, val: "John Doe"}), "CN=John Doe,UID=jdoe,DC=example,DC=com"},
		{"unknown attribute", one(attr{oid: "1.3.6.1.4.1.99999.1", val: "custom"}, attr{oid: cn, val: "x"}), ""},
		{"multi-valued RDN", [][]attr{{{oid: c, val: "US", tag: asn1.TagPrintableString}}, {{oid: o, val: "Acme"}, {oid: ou, val: "Ops"}},
			{{oid: cn, val: "multi"}}}, ""},
		{"special characters", one(attr{oid: cn, val: `a,b+c"d\e<f>g;h=i`}, attr{oid: ou, val: "#lead"},
			attr{oid: o, val: " spaced "}, attr{oid: street, val: "#"}), ""},
		{"non-ASCII", one(attr{oid: cn, val: "אורית"}, attr{oid: o, val: "Zürich", tag: tagBMP}), ""},
		{"control character", one(attr{oid: cn, val: "tab\there\x7f"}), ""},
		{"Latin-1 T61String", one(attr{oid: cn, val: "caf\xe9", tag: tagT61}), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cert := selfSigned(t, rawName(t, tc.rdns...))
			got, err := SubjectName(cert)
			if err != nil {
				t.Fatal(err)
			}
			if ref := openssl(t, cert); got != ref {
				t.Errorf("SubjectName = %q, openssl prints %q", got, ref)
			}
			if tc.want != "" && got != tc.want {
				t.Errorf("SubjectName = %q, want %q", got, tc.want)
			}
		})
	}
}

// Two subjects that differ in one attribute Go's pkix.Name drops are two names.
func TestSubjectNameKeepsEveryAttribute(t *testing.T) {
	a := selfSigned(t, rawName(t, []attr{{oid: "2.5.4.3", val: "svc"}}, []attr{{oid: "1.2.840.113549.1.9.1", val: "a@example.com", tag: asn1.TagIA5String}}))
	b := selfSigned(t, rawName(t, []attr{{oid: "2.5.4.3", val: "svc"}}, []attr{{oid: "1.2.840.113549.1.9.1", val: "b@example.com", tag: asn1.TagIA5String}}))
	if x, y := a.Subject.ToRDNSequence().String(), b.Subject.ToRDNSequence().String(); x != y {
		t.Fatalf("the test needs subjects pkix.Name's RDN sequence cannot tell apart: %q vs %q", x, y)
	}
	na, _ := SubjectName(a)
	nb, _ := SubjectName(b)
	if na == nb {
		t.Errorf("both certificates map to %q", na)
	}
}

// A known attribute whose value is not a string is dumped as hex, as OpenSSL does (Go's
// certificate parser refuses such a subject, so this checks RDNString alone).
func TestRDNStringDumpsNonStrings(t *testing.T) {
	got, err := RDNString(rawName(t, []attr{{oid: "2.5.4.3", der: []byte{0x02, 0x01, 0x05}}}))
	if err != nil || got != "CN=#020105" {
		t.Errorf("RDNString = %q, %v; want CN=#020105", got, err)
	}
}

func TestRDNStringRejectsGarbage(t *testing.T) {
	for _, der := range [][]byte{nil, {0x30}, {0x30, 0x02, 0x31, 0x00}, append(rawName(t, []attr{{oid: "2.5.4.3", val: "x"}}), 0)} {
		if s, err := RDNString(der); err == nil {
			t.Errorf("RDNString(%x) = %q, want an error", der, s)
		}
	}
}
