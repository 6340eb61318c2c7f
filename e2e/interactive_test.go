package e2e

import (
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
)

// terminal is mongosh running in a pseudo-terminal, as a person would run it.
type terminal struct {
	t   *testing.T
	pty *os.File
	cmd *exec.Cmd

	mu  sync.Mutex
	out strings.Builder
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r`)

func startTerminal(t *testing.T, args ...string) *terminal {
	t.Helper()
	cmd := exec.Command(mongoshPath(t), args...)
	cmd.Env = append(mongoshEnv(t), "TERM=xterm")
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 50, Cols: 200})
	if err != nil {
		t.Fatalf("starting mongosh in a pty: %v", err)
	}
	term := &terminal{t: t, pty: f, cmd: cmd}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := f.Read(buf)
			term.mu.Lock()
			term.out.Write(buf[:n])
			term.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = f.Close()
	})
	return term
}

// screen is everything printed so far with terminal control sequences removed.
func (term *terminal) screen() string {
	term.mu.Lock()
	defer term.mu.Unlock()
	return ansi.ReplaceAllString(term.out.String(), "")
}

// waitFor waits until the screen, after offset, contains want.
func (term *terminal) waitFor(offset int, want string) string {
	term.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		s := term.screen()
		if len(s) >= offset && strings.Contains(s[offset:], want) {
			return s
		}
		time.Sleep(50 * time.Millisecond)
	}
	term.t.Fatalf("mongosh did not print %q; screen:\n%s", want, term.screen())
	return ""
}

func (term *terminal) send(line string) {
	if _, err := io.WriteString(term.pty, line+"\r"); err != nil {
		term.t.Fatalf("typing into mongosh: %v", err)
	}
}

// The interactive shell starts without any banner caused by the server and answers commands at
// its prompt, including an unknown one.
func TestMongoshInteractive(t *testing.T) {
	s := startSpid(t)
	term := startTerminal(t, s.Admin(t, "", ""))
	startup := term.waitFor(0, "test> ")

	if !strings.Contains(startup, "Using MongoDB:\t\t7.0.0") {
		t.Errorf("greeting lacks the server version:\n%s", startup)
	}
	// Banners a server can cause at startup (mongosh-wire.md §3.4) must all be absent.
	for _, bad := range []string{
		"startup warnings",                       // getLog startupWarnings
		"failed to respond to a ping",            // ping
		"not a genuine MongoDB",                  // buildInfo / getParameter probes
		"Using MongoDB:\t\tundefined",            // buildInfo failed
		"Error", "error", "MongoServerSelection", // anything else going wrong
	} {
		if strings.Contains(startup, bad) {
			t.Errorf("startup printed %q:\n%s", bad, startup)
		}
	}
	// The one banner mongosh prints is about its own runtime, not the server: mongosh 2.12.0
	// deprecates the Node.js 20 this machine has. Everything else before the prompt must be the
	// usual greeting.
	for _, line := range strings.Split(startup, "\n") {
		if strings.Contains(strings.ToLower(line), "warning") && !strings.HasPrefix(line, "Deprecation warnings:") {
			t.Errorf("unexpected warning line %q", line)
		}
	}

	off := len(startup)
	term.send("db.runCommand({ping: 1})")
	term.waitFor(off, "{ ok: 1 }")

	off = len(term.screen())
	term.send("db.runCommand({noSuchCommand: 1})")
	after := term.waitFor(off, "MongoServerError[CommandNotFound]: no such command: 'noSuchCommand'")
	if !strings.Contains(after[off:], "test> ") {
		term.waitFor(off, "test> ")
	}

	term.send("exit")
	done := make(chan error, 1)
	go func() { done <- term.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("mongosh exited with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("mongosh did not exit after `exit`; screen:\n%s", term.screen())
	}
}
