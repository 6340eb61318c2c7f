package e2e

import (
	"strings"
	"testing"
)

// mongosh --quiet --eval: each probe prints ok: 1, exits 0 and writes nothing to stderr.
func TestMongoshEval(t *testing.T) {
	s := startSpid(t)
	cases := []struct {
		name, eval string
		want       []string
	}{
		{"ping", `printjson(db.runCommand({ping:1}))`, []string{"ok: 1"}},
		{"hello", `printjson(db.hello())`, []string{"isWritablePrimary: true", "maxWireVersion: 21", "ok: 1"}},
		{"show dbs", `show dbs`, nil},
		{"buildInfo", `printjson(db.adminCommand({buildInfo:1}).version)`, []string{"7.0.0"}},
		{"getParameter", `printjson(db.adminCommand({getParameter:1, featureCompatibilityVersion:1}))`, []string{"version: '7.0'", "ok: 1"}},
		{"startupWarnings", `printjson(db.adminCommand({getLog:'startupWarnings'}))`, []string{"log: []", "ok: 1"}},
		{"whatsmyuri", `printjson(db.adminCommand({whatsmyuri:1}))`, []string{"you: '127.0.0.1:"}},
		{"show collections", `show collections`, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runMongosh(t, s.Admin(t, "", ""), "--quiet", "--eval", c.eval)
			if r.Exit != 0 || r.Stderr != "" {
				t.Fatalf("exit %d, stderr %q, stdout %q", r.Exit, r.Stderr, r.Stdout)
			}
			for _, w := range c.want {
				if !strings.Contains(r.Stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, r.Stdout)
				}
			}
			if c.want == nil && strings.TrimSpace(r.Stdout) != "" {
				t.Errorf("expected no output, got %q", r.Stdout)
			}
		})
	}
}

// An unknown command is CommandNotFound (59), and mongosh reports it as a server error.
func TestMongoshUnknownCommand(t *testing.T) {
	s := startSpid(t)
	r := runMongosh(t, s.Admin(t, "", ""), "--quiet", "--eval",
		`try { db.runCommand({noSuchCommand: 1}) } catch (e) { print(e.name, e.code, e.codeName, e.message) }`)
	if r.Exit != 0 || r.Stderr != "" {
		t.Fatalf("exit %d, stderr %q", r.Exit, r.Stderr)
	}
	want := "MongoServerError 59 CommandNotFound no such command: 'noSuchCommand'"
	if strings.TrimSpace(r.Stdout) != want {
		t.Errorf("got %q, want %q", strings.TrimSpace(r.Stdout), want)
	}
	// Uncaught, --eval prints the error and exits 1.
	r = runMongosh(t, s.Admin(t, "", ""), "--quiet", "--eval", `db.runCommand({atlasVersion: 1})`)
	if r.Exit != 1 || !strings.Contains(r.Stdout+r.Stderr, "MongoServerError: no such command: 'atlasVersion'") {
		t.Errorf("exit %d, stdout %q, stderr %q", r.Exit, r.Stdout, r.Stderr)
	}
}
