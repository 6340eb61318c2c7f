package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Issue 10, acceptance 3: SASL PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, TLS and mutual TLS against
// kfake; wrong credentials say "authentication failed"; no credential shows anywhere.

// pemKeyOf is the PKCS #8 PEM of a generated certificate's private key, and the certificate's PEM.
func pemKeyOf(t *testing.T, c tls.Certificate) (certPEM, keyPEM string) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// keyCore is a distinctive substring of a PEM private key: 40 characters from the middle of
// its base64 body, which a log line or reply quoting any part of the key would likely carry.
func keyCore(keyPEM string) string {
	lines := strings.Split(strings.TrimSpace(keyPEM), "\n")
	body := strings.Join(lines[1:len(lines)-1], "")
	return body[len(body)/2-20 : len(body)/2+20]
}

// createKafkaCopy creates and starts, with the Go driver, a processor copying topic in to topic
// out through connection conn.
func createKafkaCopy(t *testing.T, c *mongo.Client, name, conn, in, out string) {
	t.Helper()
	pipeline := bson.A{
		bson.D{{Key: "$source", Value: bson.D{{Key: "connectionName", Value: conn}, {Key: "topic", Value: in},
			{Key: "config", Value: bson.D{{Key: "auto_offset_reset", Value: "earliest"}}}}}},
		bson.D{{Key: "$emit", Value: bson.D{{Key: "connectionName", Value: conn}, {Key: "topic", Value: out}}}},
	}
	mustAdmin(t, c, bson.D{{Key: "createStreamProcessor", Value: name}, {Key: "pipeline", Value: pipeline}})
	mustAdmin(t, c, bson.D{{Key: "startStreamProcessor", Value: name}})
}

// listed is a processor's state and errorMsg as listStreamProcessors shows them.
func listed(t *testing.T, c *mongo.Client, name string) (state, errorMsg string) {
	t.Helper()
	m := mustAdmin(t, c, bson.D{{Key: "listStreamProcessors", Value: int32(1)}, {Key: "filter", Value: bson.D{{Key: "name", Value: name}}}})
	ps, _ := m["streamProcessors"].(bson.A)
	if len(ps) != 1 {
		t.Fatalf("listStreamProcessors {name: %s}: %v", name, m)
	}
	p := ps[0].(bson.D)
	for _, e := range p {
		switch e.Key {
		case "state":
			state, _ = e.Value.(string)
		case "errorMsg":
			errorMsg, _ = e.Value.(string)
		}
	}
	return state, errorMsg
}

// outputCount is a processor's outputMessageCount from getStreamProcessorStats.
func outputCount(t *testing.T, c *mongo.Client, name string) int64 {
	t.Helper()
	m := mustAdmin(t, c, bson.D{{Key: "getStreamProcessorStats", Value: name}})
	st, _ := m["stats"].(bson.D)
	for _, e := range st {
		if e.Key == "outputMessageCount" {
			n, _ := e.Value.(int64)
			return n
		}
	}
	return -1
}

// Issue 10, acceptance 3. One spid, three kfake clusters: SASL with a PLAIN, a SCRAM-SHA-256 and
// a SCRAM-SHA-512 user; SASL over TLS (SASL_SSL, the broker's certificate signed by a CA made
// here and given as brokerPublicCertificate); and mutual TLS (SSL: the broker requires and
// verifies a client certificate, given as sslCertificate and sslKey). A processor reads and
// writes through each, and what it wrote is read back with kafka-go under the same
// credentials; after the SASL_SSL broker restarts, its processor authenticates again and copies
// on. A wrong PLAIN password, a wrong SCRAM password and a client certificate of another CA each
// give a processor error that says authentication failed, first while the runtime retries
// (STARTED), then FAILED. No password, private key or part of one appears in any reply
// (listStreamConnections, listStreamProcessors, getStreamProcessor, stats, through the Go driver
// and mongosh; the Admin API's GETs; /metrics), in spid's output (at debug level) or in the
// audit logs.
func TestKafkaAuthentication(t *testing.T) {
	t.Parallel()
	pki := newPKI(t)
	serverCert, err := tls.LoadX509KeyPair(pki.ServerCert, pki.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pw := map[string]string{}
	for _, l := range []string{"plain", "s256", "s512", "tls", "wrongPlain", "wrongScram"} {
		pw[l] = secret(t, "kpw-"+l)
	}
	clientCert, clientKey := pemKeyOf(t, pki.Client)
	foreignCert, foreignKey := pemKeyOf(t, pki.Foreign)

	saslK := startKafka(t, 1, kfake.EnableSASL(),
		kfake.Superuser("PLAIN", "uplain", pw["plain"]),
		kfake.Superuser("SCRAM-SHA-256", "u256", pw["s256"]),
		kfake.Superuser("SCRAM-SHA-512", "u512", pw["s512"]),
		kfake.SeedTopics(1, "in-plain", "out-plain", "in-s256", "out-s256", "in-s512", "out-s512"))
	saslTLSK := startKafka(t, 1, kfake.DataDir(t.TempDir()), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "utls", pw["tls"]),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{serverCert}, MinVersion: tls.VersionTLS12}),
		kfake.SeedTopics(1, "in-saslssl", "out-saslssl"))
	mtlsK := startKafka(t, 1, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{serverCert}, MinVersion: tls.VersionTLS12,
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pki.Roots}),
		kfake.SeedTopics(1, "in-mtls", "out-mtls"))

	s := startSpid(t, "--log-level", "debug", "--processor-retry-timeout", "10s", "--checkpoint-interval", "1s")
	a := newAPI(t, s.Creds(t))
	conn := func(name string, k *kafkaCluster, protocol string, auth map[string]any, ca bool) {
		body := map[string]any{"name": name, "type": "Kafka", "bootstrapServers": k.Brokers,
			"security": map[string]any{"protocol": protocol}, "authentication": auth}
		if ca {
			body["security"].(map[string]any)["brokerPublicCertificate"] = string(caPEM)
		}
		a.ok("POST", "/streams/default/connections", body)
	}
	sasl := func(mech, user, pass string) map[string]any {
		return map[string]any{"mechanism": mech, "username": user, "password": pass}
	}
	conn("plain", saslK, "SASL_PLAINTEXT", sasl("PLAIN", "uplain", pw["plain"]), false)
	conn("s256", saslK, "SASL_PLAINTEXT", sasl("SCRAM-256", "u256", pw["s256"]), false)
	conn("s512", saslK, "SASL_PLAINTEXT", sasl("SCRAM-512", "u512", pw["s512"]), false)
	conn("saslssl", saslTLSK, "SASL_SSL", sasl("SCRAM-512", "utls", pw["tls"]), true)
	conn("mtls", mtlsK, "SSL", map[string]any{"sslCertificate": clientCert, "sslKey": clientKey}, true)
	conn("badPlain", saslK, "SASL_PLAINTEXT", sasl("PLAIN", "uplain", pw["wrongPlain"]), false)
	conn("badScram", saslK, "SASL_PLAINTEXT", sasl("SCRAM-256", "u256", pw["wrongScram"]), false)
	conn("badCert", mtlsK, "SSL", map[string]any{"sslCertificate": foreignCert, "sslKey": foreignKey}, true)

	c := connectGo(t, s.Admin(t, "", ""))
	mech := func(name string) saslMechanism {
		t.Helper()
		var m saslMechanism
		var err error
		switch name {
		case "plain":
			m = plain.Mechanism{Username: "uplain", Password: pw["plain"]}
		case "s256":
			m, err = scram.Mechanism(scram.SHA256, "u256", pw["s256"])
		case "s512":
			m, err = scram.Mechanism(scram.SHA512, "u512", pw["s512"])
		case "saslssl":
			m, err = scram.Mechanism(scram.SHA512, "utls", pw["tls"])
		}
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	tlsOf := map[string]*tls.Config{"saslssl": pki.tlsConfig(nil), "mtls": pki.tlsConfig(&pki.Client)}
	clusterOf := map[string]*kafkaCluster{"plain": saslK, "s256": saslK, "s512": saslK, "saslssl": saslTLSK, "mtls": mtlsK}
	good := []string{"plain", "s256", "s512", "saslssl", "mtls"}
	// Wrong credentials first: while the runtime retries (10 s here), the processor is STARTED
	// and already says why.
	bad := []string{"bad-plain", "bad-scram", "bad-cert"}
	createKafkaCopy(t, c, "bad-plain", "badPlain", "in-plain", "out-bad")
	createKafkaCopy(t, c, "bad-scram", "badScram", "in-s256", "out-bad")
	createKafkaCopy(t, c, "bad-cert", "badCert", "in-mtls", "out-bad")
	for _, name := range bad {
		var st, msg string
		waitUntil(t, name+" to report its authentication failure while retrying", func() bool {
			st, msg = listed(t, c, name)
			return st == "FAILED" || st == "STARTED" && strings.Contains(msg, "authentication failed")
		})
		if st != "STARTED" {
			t.Errorf("%s FAILED before it said, while retrying, that authentication failed: %s", name, msg)
		}
		t.Logf("%s while retrying: %s", name, msg)
	}
	for _, name := range good {
		var msgs []kafkaMsg
		for i := range 3 {
			msgs = append(msgs, kafkaMsg{Key: fmt.Appendf(nil, "%d", i), Value: fmt.Appendf(nil, `{"i":%d,"via":%q}`, i, name)})
		}
		produce(t, clusterOf[name], "in-"+name, msgs, tlsOf[name], mech(name))
		createKafkaCopy(t, c, "copy-"+name, name, "in-"+name, "out-"+name)
	}

	for _, name := range good {
		waitUntil(t, "copy-"+name+" to write 3 documents", func() bool {
			if st, msg := listed(t, c, "copy-"+name); st != "STARTED" {
				t.Fatalf("copy-%s is %s: %s", name, st, msg)
			}
			return outputCount(t, c, "copy-"+name) >= 3
		})
		out := readTopic(t, clusterOf[name], "out-"+name, 3, time.Minute, tlsOf[name], mech(name))
		var is []int
		for _, m := range out {
			var d struct {
				I   int
				Via string
			}
			if err := json.Unmarshal(m.Value, &d); err != nil || d.Via != name {
				t.Errorf("copy-%s wrote %s", name, m.Value)
			}
			is = append(is, d.I)
		}
		slices.Sort(is)
		if fmt.Sprint(is) != "[0 1 2]" {
			t.Errorf("copy-%s wrote documents %v, want 0, 1, 2 once each", name, is)
		}
	}

	// The SASL_SSL broker restarts (on its data): the processor connects and authenticates
	// again, and copies what is produced after (at least once).
	saslTLSK.restart(t, 500*time.Millisecond)
	var more []kafkaMsg
	for i := 3; i < 6; i++ {
		more = append(more, kafkaMsg{Key: fmt.Appendf(nil, "%d", i), Value: fmt.Appendf(nil, `{"i":%d,"via":"saslssl"}`, i)})
	}
	produce(t, saslTLSK, "in-saslssl", more, tlsOf["saslssl"], mech("saslssl"))
	waitUntil(t, "copy-saslssl to copy what was produced after the broker's restart", func() bool {
		if st, msg := listed(t, c, "copy-saslssl"); st != "STARTED" {
			t.Fatalf("copy-saslssl is %s after the broker's restart: %s", st, msg)
		}
		return outputCount(t, c, "copy-saslssl") >= 6
	})
	copied := map[int]bool{}
	for _, m := range readTopic(t, saslTLSK, "out-saslssl", 6, time.Minute, tlsOf["saslssl"], mech("saslssl")) {
		var d struct{ I int }
		_ = json.Unmarshal(m.Value, &d)
		copied[d.I] = true
	}
	if len(copied) != 6 {
		t.Errorf("after the broker's restart, out-saslssl has documents %v, want 0 to 5", copied)
	}

	for _, name := range bad {
		var msg string
		waitUntil(t, name+" to be FAILED after the retry window", func() bool {
			st, m := listed(t, c, name)
			msg = m
			return st == "FAILED"
		})
		if !strings.Contains(msg, "authentication failed") {
			t.Errorf("%s FAILED with %q, want it to say authentication failed", name, msg)
		}
		if state, _, m := processorState(t, c, name); state != "FAILED" || !strings.Contains(m, "authentication failed") {
			t.Errorf("getStreamProcessor %s: %s %q", name, state, m)
		}
	}

	// Every reply a user can ask for, through the data plane and the control plane.
	var seen strings.Builder
	reply := func(cmd bson.D) {
		m := mustAdmin(t, c, cmd)
		b, err := bson.MarshalExtJSON(m, false, false)
		if err != nil {
			t.Fatal(err)
		}
		seen.Write(b)
	}
	reply(bson.D{{Key: "listStreamConnections", Value: int32(1)}})
	reply(bson.D{{Key: "listStreamProcessors", Value: int32(1)}})
	procs := slices.Clone(bad)
	for _, name := range good {
		procs = append(procs, "copy-"+name)
	}
	for _, p := range procs {
		reply(bson.D{{Key: "getStreamProcessor", Value: p}})
		reply(bson.D{{Key: "getStreamProcessorStats", Value: p}})
		reply(bson.D{{Key: "getStreamProcessorStats", Value: p}, {Key: "verbose", Value: true}})
	}
	paths := []string{"/streams", "/streams/default?includeConnections=true", "/streams/default/connections", "/streams/default/processors"}
	for _, n := range []string{"plain", "s256", "s512", "saslssl", "mtls", "badPlain", "badScram", "badCert"} {
		paths = append(paths, "/streams/default/connections/"+n)
	}
	for _, p := range procs {
		paths = append(paths, "/streams/default/processor/"+p)
	}
	for _, p := range paths {
		status, body := a.call("GET", p, nil)
		if status != 200 {
			t.Errorf("GET %s: %d %s", p, status, body)
		}
		seen.Write(body)
	}
	resp, err := http.Get(s.AdminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	seen.Write(metrics)
	// And as mongosh shows them.
	seen.WriteString(mongoshScript(t, s.Admin(t, "", ""), `print(EJSON.stringify(sp.listConnections()));
for (const p of ["bad-cert", "copy-mtls", "copy-saslssl"]) { print(EJSON.stringify(sp[p].stats())); }`))
	if !strings.Contains(seen.String(), "authentication failed") || !strings.Contains(seen.String(), "saslssl") {
		t.Fatal("the replies do not show the connections and the errors: the check below would prove nothing")
	}

	s.Stop(t)
	var audit strings.Builder
	files, _ := filepath.Glob(filepath.Join(s.DataDir, "audit", "*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		audit.Write(b)
	}
	logs := s.Stdout.String() + s.Stderr.String()
	if !strings.Contains(audit.String(), "createStreamProcessor") || !strings.Contains(logs, "level=DEBUG") {
		t.Fatalf("the audit log or the debug log is not being written; the check below would prove nothing")
	}
	secrets := map[string]string{"client key": clientKey, "client key core": keyCore(clientKey),
		"foreign key": foreignKey, "foreign key core": keyCore(foreignKey)}
	for l, p := range pw {
		secrets["password "+l] = p
	}
	for label, v := range secrets {
		for where, text := range map[string]string{"a reply": seen.String(), "spid's log": logs, "the audit log": audit.String()} {
			if strings.Contains(text, v) {
				t.Errorf("%s appears in %s", label, where)
			}
		}
	}
}
