package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// debianPython is Debian's python3, into which python3-pymongo, python3-snappy and
// python3-zstandard install (`make deps` does it through scripts/apt-install.sh). A python3
// earlier on PATH (pyenv, a virtualenv) would not see them.
const debianPython = "/usr/bin/python3"

// runPython runs a pymongo script with the given arguments (sys.argv[1:]).
func runPython(t *testing.T, script string, args ...string) result {
	t.Helper()
	if err := exec.Command(debianPython, "-c", "import pymongo, snappy, zstandard").Run(); err != nil {
		t.Fatalf("Debian's pymongo is not installed (%v): run `make deps`", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, debianPython, append([]string{"-c", script}, args...)...)
	cmd.Env = []string{"HOME=" + t.TempDir(), "PATH=/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE=1", "PYTHONWARNINGS=ignore"}
	return runCmd(t, cmd)
}

// nodePrelude makes the Node driver that mongodb-data-service depends on (pinned in
// package-lock.json) available to a script as MongoClient.
const nodePrelude = `
const dsPath = require.resolve('mongodb-data-service');
const { MongoClient } = require(require.resolve('mongodb', { paths: [dsPath] }));
const argv = process.argv.slice(1);
function fail(e) { console.error(e && e.stack || e); process.exit(1); }
`

// runNode runs a Node.js script from e2e/ (so it finds e2e/node_modules) with the given
// arguments (argv). The script's promise must settle; a rejection fails with exit status 1.
func runNode(t *testing.T, script string, args ...string) result {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is not installed")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{"-e", nodePrelude + "(async () => {\n" + script + "\n})().catch(fail);"}, args...)...)
	cmd.Env = mongoshEnv(t)
	return runCmd(t, cmd)
}

// jsonLines decodes each line a client printed as one JSON value into out's elements.
func lastJSON(t *testing.T, r result, v any) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	if r.Exit != 0 || len(lines) == 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.Exit, r.Stdout, r.Stderr)
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), v); err != nil {
		t.Fatalf("last line %q: %v\nstderr:\n%s", lines[len(lines)-1], err, r.Stderr)
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
