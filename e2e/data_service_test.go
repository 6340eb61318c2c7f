package e2e

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// dataServiceScript connects with mongodb-data-service (what Compass and the VS Code extension
// use), runs instance(), and prints it with the verdict of isAtlasStream, the stream detection
// the extension uses, taken from the copy of mongodb-build-info the data service depends on.
// argv: connection string, then optionally a host name to resolve to 127.0.0.1 (the test's
// stand-in for the /etc/hosts line of the README's recipe: it changes name resolution only,
// so TLS still checks the certificate against that name).
const dataServiceScript = `
const dns = require('dns');
if (argv[1]) {
  const alias = argv[1], lookup = dns.lookup;
  dns.lookup = function (host, opts, cb) {
    if (typeof opts === 'function') { cb = opts; opts = {}; }
    if (host !== alias) return lookup.call(dns, host, opts, cb);
    if (opts && opts.all) return process.nextTick(cb, null, [{address: '127.0.0.1', family: 4}]);
    return process.nextTick(cb, null, '127.0.0.1', 4);
  };
}
const connect = require('mongodb-data-service').connect;
const { isAtlasStream } = require(require.resolve('mongodb-build-info', { paths: [dsPath] }));
const ds = await connect({ connectionOptions: { connectionString: argv[0] } });
const instance = await ds.instance();
await ds.disconnect();
console.log(JSON.stringify({ isAtlasStream: isAtlasStream(argv[0]), instance }));
`

type dataServiceOutcome struct {
	IsAtlasStream bool `json:"isAtlasStream"`
	Instance      struct {
		Auth struct {
			User struct {
				User string `json:"user"`
				DB   string `json:"db"`
			} `json:"user"`
		} `json:"auth"`
		Build struct {
			Version string `json:"version"`
		} `json:"build"`
		Host struct {
			OS       string `json:"os"`
			Arch     string `json:"arch"`
			CPUCores int    `json:"cpu_cores"`
		} `json:"host"`
		GenuineMongoDB struct {
			IsGenuine bool `json:"isGenuine"`
		} `json:"genuineMongoDB"`
		FCV string `json:"featureCompatibilityVersion"`
	} `json:"instance"`
}

func checkInstance(t *testing.T, o dataServiceOutcome, user string) {
	t.Helper()
	in := o.Instance
	if in.Auth.User.User != user || in.Auth.User.DB != "admin" || in.Build.Version != "7.0.0" || in.FCV != "7.0" ||
		in.Host.OS == "" || in.Host.Arch == "" || in.Host.CPUCores < 1 || !in.GenuineMongoDB.IsGenuine {
		t.Errorf("instance() = %+v", in)
	}
}

// connect() followed by instance() succeeds against spid: every probe instance() sends gets an
// answer, hostInfo included.
func TestDataServiceInstance(t *testing.T) {
	s := startSpid(t)
	r := runNode(t, dataServiceScript, s.Admin(t, "", ""))
	var o dataServiceOutcome
	lastJSON(t, r, &o)
	checkInstance(t, o, s.Creds(t).Username)
	if o.IsAtlasStream {
		t.Error("isAtlasStream is true for a loopback address")
	}
}

// The README's recipe for the extension's stream view, run as written: its openssl lines make a
// CA and a certificate for the alias, spid serves TLS with them, and the data service connects
// through the alias, verifying the certificate, and its detection says "stream workspace".
func TestDataServiceStreamRecipe(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "<!-- recipe: stream view")
	if !ok {
		t.Fatal("README.md has no stream view recipe")
	}
	block := regexp.MustCompile("(?s)```sh\n(.*?)```").FindStringSubmatch(after)
	if block == nil {
		t.Fatal("the recipe has no sh block")
	}
	var script []string
	host := ""
	for _, line := range strings.Split(block[1], "\n") {
		switch {
		case strings.HasPrefix(line, "HOST="):
			host = strings.TrimPrefix(line, "HOST=")
			script = append(script, line)
		case strings.HasPrefix(line, "openssl "):
			script = append(script, line)
		}
	}
	if host == "" || len(script) < 4 || !strings.Contains(block[1], `--tls-cert server.pem --tls-key server-key.pem`) {
		t.Fatalf("unexpected recipe:\n%s", block[1])
	}
	dir := t.TempDir()
	cmd := exec.CommandContext(t.Context(), "sh", "-e", "-c", strings.Join(script, "\n"))
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the recipe's openssl lines failed: %v\n%s", err, out)
	}
	s := startSpid(t, "--tls-cert", filepath.Join(dir, "server.pem"), "--tls-key", filepath.Join(dir, "server-key.pem"))
	_, port, _ := net.SplitHostPort(s.Addr)
	c := s.Creds(t)
	uri := "mongodb://" + c.Username + ":" + c.Password + "@" + host + ":" + port +
		"/?tls=true&tlsCAFile=" + filepath.Join(dir, "ca.pem") + "&authSource=admin&serverSelectionTimeoutMS=15000"
	r := runNode(t, dataServiceScript, uri, host)
	var o dataServiceOutcome
	lastJSON(t, r, &o)
	if !o.IsAtlasStream {
		t.Errorf("isAtlasStream(%q) is false", uri)
	}
	checkInstance(t, o, c.Username)
	// Without the recipe's CA the same connection is refused: the certificate really is checked.
	other := exec.CommandContext(t.Context(), "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
		"-nodes", "-days", "1", "-subj", "/CN=another CA", "-keyout", "other-key.pem", "-out", "other.pem")
	other.Dir = dir
	if out, err := other.CombinedOutput(); err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	bad := strings.Replace(uri, "tlsCAFile="+filepath.Join(dir, "ca.pem"), "tlsCAFile="+filepath.Join(dir, "other.pem"), 1)
	bad = strings.Replace(bad, "serverSelectionTimeoutMS=15000", "serverSelectionTimeoutMS=3000", 1)
	if r := runNode(t, dataServiceScript, bad, host); r.Exit == 0 {
		t.Errorf("connected with a CA file that is not the recipe's CA:\n%s", r.Stdout)
	}
}
