// Package audit writes append-only audit logs: one JSON object per line, synced as written.
// Callers pass records built from fields they choose; a record never embeds a request body, so
// no secret can reach the log.
package audit

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// Log is one audit log file.
type Log struct {
	mu sync.Mutex
	f  *os.File
}

// Open opens (creating, mode 0600, with its directory) the log at path for appending.
func Open(path string) (*Log, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the audit log: %w", err)
	}
	return &Log{f: f}, nil
}

// Record appends one record. A nil Log records nothing. A failed write is reported on stderr:
// the audit log must not fail silently, nor take the server down.
func (l *Log) Record(rec any) {
	if l == nil {
		return
	}
	b, err := json.Marshal(rec)
	if err != nil {
		fmt.Fprintln(os.Stderr, "spid: encoding an audit record failed:", err)
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err = l.f.Write(append(b, '\n')); err == nil {
		err = l.f.Sync()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "spid: writing the audit log failed:", err)
	}
}

// Close closes the file.
func (l *Log) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}
