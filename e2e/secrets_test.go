package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func secret(t *testing.T, label string) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return label + "-" + hex.EncodeToString(b)
}

// runSpictl runs spictl with the given credentials in its environment.
func runSpictl(t *testing.T, c credentials, args ...string) result {
	t.Helper()
	cmd := exec.Command(spictlBin, args...)
	cmd.Env = append(os.Environ(), "SPI_ADMIN_URL="+c.AdminURL, "SPI_GROUP_ID="+c.GroupID,
		"SPI_PUBLIC_KEY="+c.PublicKey, "SPI_PRIVATE_KEY="+c.PrivateKey, "HOME="+t.TempDir())
	return runCmd(t, cmd)
}

// No secret given on create or update appears in any later response, in spictl's output, in
// spid's logs (at debug level), in the audit log, or in clear in the data directory.
func TestSecretsNeverShown(t *testing.T) {
	s := startSpid(t, "--log-level", "debug")
	c := s.Creds(t)
	a := newAPI(t, c)
	secrets := map[string]string{}
	for _, label := range []string{"kafkaPassword", "kafkaPassword2", "sslKey", "sslKeyPassword", "clientSecret",
		"clusterPassword", "httpsHeader", "userPassword", "userPassword2"} {
		secrets[label] = secret(t, label)
	}

	a.ok("POST", "/streams/default/connections", map[string]any{
		"name": "kafka1", "type": "Kafka", "bootstrapServers": "broker:9092",
		"authentication": map[string]any{"mechanism": "SCRAM-256", "username": "svc", "password": secrets["kafkaPassword"],
			"sslKey": secrets["sslKey"], "sslKeyPassword": secrets["sslKeyPassword"]},
		"security": map[string]any{"protocol": "SASL_SSL"},
	})
	a.ok("PATCH", "/streams/default/connections/kafka1", map[string]any{"authentication": map[string]any{"password": secrets["kafkaPassword2"]}})
	a.ok("POST", "/streams/default/connections", map[string]any{
		"name": "oidc", "type": "Kafka", "bootstrapServers": "broker:9092",
		"authentication": map[string]any{"mechanism": "OAUTHBEARER", "method": "OIDC", "tokenEndpointUrl": "https://idp/token",
			"clientId": "spi", "clientSecret": secrets["clientSecret"]},
		"security": map[string]any{"protocol": "SASL_SSL"},
	})
	a.ok("POST", "/streams/default/connections", map[string]any{
		"name": "cluster0", "type": "Cluster", "clusterName": "c0", "connectionString": "mongodb://db.internal:27017/",
		"dbRoleToExecute": map[string]any{"role": "readWriteAnyDatabase", "type": "BUILT_IN"},
		"authentication":  map[string]any{"username": "executor", "password": secrets["clusterPassword"]},
	})
	a.ok("POST", "/streams/default/connections", map[string]any{
		"name": "hook", "type": "Https", "url": "https://hooks.internal/x",
		"headers": map[string]any{"Authorization": "Bearer " + secrets["httpsHeader"]},
	})
	// Sending the masked value back keeps the stored header.
	hook := a.ok("PATCH", "/streams/default/connections/hook", map[string]any{"headers": map[string]any{"Authorization": "********"}})
	if hook["headers"].(map[string]any)["Authorization"] != "********" {
		t.Errorf("header not masked: %v", hook["headers"])
	}
	a.ok("POST", "/databaseUsers", map[string]any{"databaseName": "admin", "username": "alice", "password": secrets["userPassword"],
		"roles": []any{map[string]any{"roleName": "readAnyDatabase", "databaseName": "admin"}}})
	a.ok("PATCH", "/databaseUsers/admin/alice", map[string]any{"password": secrets["userPassword2"]})
	key := a.ok("POST", "/apiKeys", map[string]any{"desc": "ci", "roles": []any{"GROUP_READ_ONLY"}})
	private, _ := key["privateKey"].(string)
	if len(private) != 36 || strings.Contains(private, "*") {
		t.Fatalf("a new key's private key is shown in full once; got %q", private)
	}
	secrets["apiPrivateKey"] = private
	secrets["initialPrivateKey"] = c.PrivateKey
	secrets["initialPassword"] = c.Password

	var seen strings.Builder
	for _, path := range []string{"/streams", "/streams/default?includeConnections=true", "/streams/default/connections",
		"/streams/default/connections/kafka1", "/streams/default/connections/oidc", "/streams/default/connections/cluster0",
		"/streams/default/connections/hook", "/databaseUsers", "/databaseUsers/admin/alice", "/databaseUsers/admin/admin",
		"/customDBRoles/roles", "/apiKeys", "/apiKeys/" + key["id"].(string)} {
		status, body := a.call("GET", path, nil)
		if status != 200 {
			t.Errorf("GET %s: %d %s", path, status, body)
		}
		seen.Write(body)
	}
	for _, args := range [][]string{
		{"workspaces", "list"}, {"workspaces", "get", "default", "--json"},
		{"connections", "list", "--workspace", "default"}, {"connections", "list", "--workspace", "default", "--json"},
		{"connections", "get", "kafka1", "--workspace", "default"}, {"connections", "get", "cluster0", "--workspace", "default", "--json"},
		{"connections", "get", "hook", "--workspace", "default", "--json"},
		{"users", "list"}, {"users", "get", "alice"}, {"users", "list", "--json"},
		{"roles", "list"}, {"keys", "list"}, {"keys", "list", "--json"},
	} {
		r := runSpictl(t, c, args...)
		if r.Exit != 0 {
			t.Errorf("spictl %v: exit %d: %s", args, r.Exit, r.Stderr)
		}
		seen.WriteString(r.Stdout + r.Stderr)
	}
	s.Stop(t)
	logs := s.Stderr.String()
	audit, err := os.ReadFile(filepath.Join(s.DataDir, "audit", "control-plane.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := os.ReadFile(filepath.Join(s.DataDir, "spi.db"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs, "admin request") || !bytes.Contains(audit, []byte(`"method":"PATCH"`)) {
		t.Fatalf("the logs or the audit log are not being written; the check below would prove nothing")
	}
	for label, v := range secrets {
		if label == "apiPrivateKey" {
			// Shown once, in the reply that created it; never again.
			if n := strings.Count(seen.String(), v); n != 0 {
				t.Errorf("the API private key appears %d times after its creation", n)
			}
		} else if strings.Contains(seen.String(), v) {
			t.Errorf("%s appears in an API reply or spictl output", label)
		}
		if strings.Contains(logs, v) {
			t.Errorf("%s appears in spid's logs", label)
		}
		if bytes.Contains(audit, []byte(v)) {
			t.Errorf("%s appears in the audit log", label)
		}
		if bytes.Contains(db, []byte(v)) {
			t.Errorf("%s is stored in clear in spi.db", label)
		}
	}
}
