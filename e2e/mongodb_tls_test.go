package e2e

import (
	"net/url"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// A Cluster connection's TLS options are the connection string's (tls, tlsCAFile,
// tlsCertificateKeyFile, authMechanism=MONGODB-X509 naming files on spid's host), against a
// FerretDB that serves TLS and requires a client certificate: with the CA and the client
// certificate, $merge writes; without the client certificate FerretDB refuses the handshake,
// and without the CA spid refuses FerretDB's certificate, each a retryable 421 naming the
// deployment; an X.509 login reaches the deployment (FerretDB, which has no X.509
// authentication, refuses it). Neither file's contents appear in any reply or log.
func TestMergeOverTLS(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	f := startFerretTLS(t, p)
	tlsAddr := f.TLSAddr
	fc := connectFerret(t, f.URI)
	s := startSpid(t, "--checkpoint-interval", "300ms", "--processor-retry-timeout", "2s")
	a := newAPI(t, s.Creds(t))
	c := connectGo(t, s.Admin(t, "", ""))
	q := func(kv ...string) string {
		v := url.Values{"serverSelectionTimeoutMS": {"2000"}} // the refusals need not wait spid's 10 s
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return "mongodb://" + tlsAddr + "/?" + v.Encode()
	}
	input := bson.A{bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: "a"}}, bson.D{{Key: "_id", Value: 2}, {Key: "v", Value: "b"}}}
	for _, tc := range []struct {
		name, uri, want string // want: "" to write, else a part of errorMsg
	}{
		{"mtls", q("tls", "true", "tlsCAFile", p.CAFile, "tlsCertificateKeyFile", p.ClientFile), ""},
		{"nocert", q("tls", "true", "tlsCAFile", p.CAFile), "the deployment cannot be reached"},
		{"untrusted", q("tls", "true", "tlsCertificateKeyFile", p.ClientFile), "certificate signed by unknown authority"},
		{"x509", q("tls", "true", "tlsCAFile", p.CAFile, "tlsCertificateKeyFile", p.ClientFile, "authMechanism", "MONGODB-X509"), "authenticat"},
	} {
		a.ok("POST", "/streams/default/connections", map[string]any{"name": tc.name, "type": "Cluster", "clusterName": "ferret", "connectionString": tc.uri,
			"dbRoleToExecute": map[string]any{"role": "readWriteAnyDatabase", "type": "BUILT_IN"}})
		pipe := bson.A{
			bson.D{{Key: "$source", Value: bson.D{{Key: "documents", Value: input}}}},
			bson.D{{Key: "$merge", Value: bson.D{{Key: "into", Value: bson.D{{Key: "connectionName", Value: tc.name}, {Key: "db", Value: "tls"}, {Key: "coll", Value: tc.name}}}}}},
		}
		mustAdmin(t, c, bson.D{{Key: "createStreamProcessor", Value: tc.name}, {Key: "pipeline", Value: pipe}})
		mustAdmin(t, c, bson.D{{Key: "startStreamProcessor", Value: tc.name}})
		var msg string
		var code int32
		waitUntil(t, tc.name+" to write or fail", func() bool {
			_, code, msg = processorState(t, c, tc.name)
			if msg != "" {
				return true
			}
			n, _ := fc.Database("tls").Collection(tc.name).CountDocuments(t.Context(), bson.D{})
			return n == 2
		})
		switch {
		case tc.want == "" && msg != "":
			t.Errorf("%s: the processor failed: %d %q", tc.name, code, msg)
		case tc.want != "" && (code != 421 || !strings.Contains(msg, tc.want) || !strings.Contains(msg, tlsAddr)):
			t.Errorf("%s: errorCode %d, errorMsg %q; want 421 naming %s with %q", tc.name, code, msg, tlsAddr, tc.want)
		}
		t.Logf("%s: %q", tc.name, msg)
		mustAdmin(t, c, bson.D{{Key: "stopStreamProcessor", Value: tc.name}})
	}
	if got := collection(t, fc, "tls", "mtls"); len(got) != 2 {
		t.Errorf("tls.mtls: %v", got)
	}
	for _, name := range []string{"nocert", "untrusted", "x509"} {
		if n, _ := fc.Database("tls").Collection(name).CountDocuments(t.Context(), bson.D{}); n != 0 {
			t.Errorf("tls.%s holds %d documents", name, n)
		}
	}
	logs := s.Stdout.String() + s.Stderr.String()
	if strings.Contains(logs, "PRIVATE KEY") || strings.Contains(logs, "BEGIN CERTIFICATE") {
		t.Error("spid's log carries a certificate or key")
	}
}
