package audit

import (
	"bufio"
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestClip(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"0123456789abc", 10, "0123456789...[+3 bytes]"},
		{"ééééé", 3, "é...[+8 bytes]"}, // never cuts inside a rune
		{strings.Repeat("x", 1<<20), 0, strings.Repeat("x", FieldMax) + "...[+" + "1048448" + " bytes]"},
	} {
		got := Clip(tc.in, tc.max)
		if got != tc.want {
			t.Errorf("Clip(%.20q, %d) = %.60q, want %.60q", tc.in, tc.max, got, tc.want)
		}
		if !utf8.ValidString(got) {
			t.Errorf("Clip(%.20q) is not valid UTF-8", tc.in)
		}
	}
}

// The file never grows past its bound: it rotates, keeps the configured number of old files,
// and says so on the operational log.
func TestRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.jsonl")
	var ops bytes.Buffer
	l, err := Open(path, MaxBytes(1000), Keep(2), Logger(slog.New(slog.NewTextHandler(&ops, nil))))
	if err != nil {
		t.Fatal(err)
	}
	rec := map[string]string{"field": strings.Repeat("y", 80)}
	for range 100 {
		l.Record(rec)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, name := range []string{"a.jsonl", "a.jsonl.1", "a.jsonl.2"} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if st.Size() > 1000 {
			t.Errorf("%s has %d bytes, over the 1000-byte bound", name, st.Size())
		}
		total += countLines(t, filepath.Join(dir, name))
	}
	if _, err := os.Stat(filepath.Join(dir, "a.jsonl.3")); !os.IsNotExist(err) {
		t.Errorf("a third rotated file exists (%v); Keep(2) keeps two", err)
	}
	if total == 0 || total >= 100 {
		t.Errorf("%d records kept across the files", total)
	}
	if !strings.Contains(ops.String(), "audit log reached its size limit") || !strings.Contains(ops.String(), path) {
		t.Errorf("no operational log line about the rotation: %q", ops.String())
	}
	// Reopening appends to the live file and keeps counting its size.
	l, err = Open(path, MaxBytes(1000), Keep(2), Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		l.Record(rec)
	}
	_ = l.Close()
	if st, _ := os.Stat(path); st.Size() > 1000 {
		t.Errorf("after reopening the file grew to %d bytes", st.Size())
	}
}

func countLines(t *testing.T, path string) int {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	n := 0
	for sc := bufio.NewScanner(f); sc.Scan(); n++ {
	}
	return n
}
