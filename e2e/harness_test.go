// Package e2e drives a real spid binary with real clients: mongosh 2.12.0 (and the Node driver
// inside it), the Go driver, raw sockets, and FerretDB as a reference server in benchmarks.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// spidBin and spictlBin are the binaries built once for the whole run.
var spidBin, spictlBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "spi-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	spidBin = filepath.Join(dir, "spid")
	spictlBin = filepath.Join(dir, "spictl")
	build := exec.Command("go", "build", "-o", dir+"/", "./cmd/spid", "./cmd/spictl")
	build.Dir = ".."
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building spid and spictl:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// lockedBuffer collects a child process's output while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// spid is one running server.
type spid struct {
	cmd      *exec.Cmd
	URI      string // the mongodb:// URI spid printed
	Addr     string // host:port
	AdminURL string // the control plane's base URL spid printed
	DataDir  string
	Stdout   *lockedBuffer
	Stderr   *lockedBuffer
	done     chan error
	killed   bool
}

// credentials are the first-start credentials spid wrote to its data directory.
type credentials struct {
	GroupID    string `json:"groupId"`
	PublicKey  string `json:"publicKey"`
	PrivateKey string `json:"privateKey"`
	Username   string `json:"username"`
	Password   string `json:"password"`
	AdminURL   string `json:"adminUrl"`
}

// Creds reads <data-dir>/initial-credentials.json.
func (s *spid) Creds(t *testing.T) credentials {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.DataDir, "initial-credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c credentials
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	c.AdminURL = s.AdminURL // the file records the first start's; this run may use another port
	return c
}

var (
	printedURI   = regexp.MustCompile(`mongosh "(mongodb://([^/"]+)/)"`)
	printedAdmin = regexp.MustCompile(`Control plane \(Admin API(?: at |\): )(https?://[^)\s]+)`)
)

// startSpid starts spid on free loopback ports with a fresh data directory and waits until it
// prints how to connect. The server is stopped with SIGTERM when the test ends, and must exit
// with status 0.
func startSpid(t *testing.T, args ...string) *spid {
	t.Helper()
	return startSpidIn(t, t.TempDir(), args...)
}

// startSpidIn is startSpid on a given data directory (to restart on the same data).
func startSpidIn(t *testing.T, dataDir string, args ...string) *spid {
	t.Helper()
	return startSpidWrapped(t, dataDir, nil, args...)
}

// startSpidWrapped is startSpidIn with spid run by a wrapper command (e.g. a shell that lowers
// `ulimit -n` and execs spid): wrap[0] runs with wrap[1:], then spid's path and arguments.
func startSpidWrapped(t *testing.T, dataDir string, wrap []string, args ...string) *spid {
	t.Helper()
	s := &spid{DataDir: dataDir, Stdout: &lockedBuffer{}, Stderr: &lockedBuffer{}, done: make(chan error, 1)}
	base := []string{"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--data-dir", dataDir}
	argv := append([]string{spidBin}, append(base, args...)...)
	if len(wrap) > 0 {
		argv = append(append([]string{}, wrap...), argv...)
	}
	s.cmd = exec.Command(argv[0], argv[1:]...)
	s.cmd.Stderr = s.Stderr
	pr, pw := io.Pipe()
	s.cmd.Stdout = io.MultiWriter(s.Stdout, pw)
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting spid: %v", err)
	}
	go func() { s.done <- s.cmd.Wait(); _ = pw.Close() }()
	found := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		admin := ""
		for sc.Scan() {
			if m := printedAdmin.FindStringSubmatch(sc.Text()); m != nil {
				admin = m[1]
			}
			if m := printedURI.FindStringSubmatch(sc.Text()); m != nil {
				found <- append(m, admin)
				break
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	select {
	case m := <-found:
		s.URI, s.Addr, s.AdminURL = m[1], m[2], m[3]
	case err := <-s.done:
		t.Fatalf("spid exited before it was ready: %v\nstdout:\n%s\nstderr:\n%s", err, s.Stdout, s.Stderr)
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		t.Fatalf("spid did not print a mongosh command within 30s\nstdout:\n%s\nstderr:\n%s", s.Stdout, s.Stderr)
	}
	t.Cleanup(func() { s.Stop(t) })
	return s
}

// Kill ends spid with SIGKILL, as a crash would, and waits for it to be gone.
func (s *spid) Kill(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := <-s.done; err == nil {
		t.Fatal("spid exited cleanly after SIGKILL")
	}
	s.killed = true
}

// Admin returns a mongodb:// URI for addr (default: the default workspace) that logs in as the
// first-start atlasAdmin user. extra is appended to the query, e.g. "&compressors=zstd".
func (s *spid) Admin(t *testing.T, addr, extra string) string {
	t.Helper()
	if addr == "" {
		addr = s.Addr
	}
	c := s.Creds(t)
	return "mongodb://" + url.UserPassword(c.Username, c.Password).String() + "@" + addr + "/?authSource=admin" + extra
}

// Stop sends SIGTERM and checks spid exits cleanly. Calling it twice, or after Kill, is harmless.
func (s *spid) Stop(t *testing.T) {
	t.Helper()
	if s.killed || s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("spid exited with %v after SIGTERM\nstderr:\n%s", err, s.Stderr)
		}
	case <-time.After(60 * time.Second):
		_ = s.cmd.Process.Kill()
		t.Errorf("spid did not exit within 60s of SIGTERM\nstderr:\n%s", s.Stderr)
	}
}

// mongoshPath is the pinned mongosh installed by `npm ci` in this folder.
func mongoshPath(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("node_modules", ".bin", "mongosh"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("mongosh is not installed (%v): run `make test`, which runs `npm ci` in e2e/", err)
	}
	return p
}

// mongoshEnv gives mongosh a private home, so tests neither read nor write the user's
// ~/.mongodb, and keeps telemetry off.
func mongoshEnv(t *testing.T) []string {
	home := t.TempDir()
	env := []string{"HOME=" + home, "DO_NOT_TRACK=1"}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PATH=") || strings.HasPrefix(kv, "LANG=") || strings.HasPrefix(kv, "TMPDIR=") {
			env = append(env, kv)
		}
	}
	return env
}

type result struct {
	Stdout, Stderr string
	Exit           int
}

// runMongosh runs mongosh non-interactively and returns what it printed.
func runMongosh(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, mongoshPath(t), args...)
	cmd.Env = mongoshEnv(t)
	return runCmd(t, cmd)
}

// runCmd runs a client program and returns what it printed and its exit status; failing to
// start it at all fails the test.
func runCmd(t *testing.T, cmd *exec.Cmd) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{Stdout: stdout.String(), Stderr: stderr.String()}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("running %s: %v", filepath.Base(cmd.Path), err)
		}
		r.Exit = ee.ExitCode()
	}
	return r
}
