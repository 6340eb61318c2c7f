// Package audit writes append-only audit logs: one JSON object per line, synced as written.
// Callers pass records built from fields they choose; a record never embeds a request body, so
// no secret can reach the log.
//
// Every log is bounded: when a record would take the file past its size limit (DefaultMaxBytes
// unless MaxBytes says otherwise) the file is rotated (path -> path.1 -> ... -> path.N, the
// oldest dropped) and a warning goes to the operational log. Fields a client controls are cut
// with Clip before they reach a record, so that one request cannot write more than a few
// hundred bytes.
package audit

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"unicode/utf8"
)

// Defaults of the size bound.
const (
	// DefaultMaxBytes is the size at which a log file is rotated: 64 MiB.
	DefaultMaxBytes = 64 << 20
	// DefaultKeep is how many rotated files are kept beside the live one.
	DefaultKeep = 3
	// FieldMax is the length Clip cuts a client-supplied field to by default, in bytes.
	FieldMax = 128
)

// Log is one audit log file.
type Log struct {
	mu    sync.Mutex
	f     *os.File
	path  string
	size  int64
	max   int64
	keep  int
	log   *slog.Logger
	warns int // rotations so far, for the operational log
}

// Option configures Open.
type Option func(*Log)

// MaxBytes sets the size bound of the file in bytes; n <= 0 keeps DefaultMaxBytes.
func MaxBytes(n int64) Option {
	return func(l *Log) {
		if n > 0 {
			l.max = n
		}
	}
}

// Keep sets how many rotated files are kept (path.1 is the newest); 0 drops the old file at
// each rotation.
func Keep(n int) Option {
	return func(l *Log) {
		if n >= 0 {
			l.keep = n
		}
	}
}

// Logger sets the operational log that hears about rotations and write failures; without it
// they go to stderr.
func Logger(lg *slog.Logger) Option { return func(l *Log) { l.log = lg } }

// Open opens (creating, mode 0600, with its directory) the log at path for appending, bounded
// by DefaultMaxBytes and DefaultKeep unless opts say otherwise.
func Open(path string, opts ...Option) (*Log, error) {
	l := &Log{path: path, max: DefaultMaxBytes, keep: DefaultKeep}
	for _, o := range opts {
		o(l)
	}
	if l.log == nil {
		l.log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *Log) open() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("opening the audit log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("opening the audit log: %w", err)
	}
	l.f, l.size = f, st.Size()
	return nil
}

// Record appends one record. A nil Log records nothing. A failed write is reported on the
// operational log: the audit log must not fail silently, nor take the server down.
func (l *Log) Record(rec any) {
	if l == nil {
		return
	}
	b, err := json.Marshal(rec)
	if err != nil {
		l.log.Error("encoding an audit record failed", "err", err)
		return
	}
	b = append(b, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return
	}
	if l.size > 0 && l.size+int64(len(b)) > l.max {
		if err := l.rotate(); err != nil {
			l.log.Error("rotating the audit log failed; records are appended past its size limit", "path", l.path, "err", err)
		}
	}
	n, err := l.f.Write(b)
	l.size += int64(n)
	if err == nil {
		err = l.f.Sync()
	}
	if err != nil {
		l.log.Error("writing the audit log failed", "path", l.path, "err", err)
	}
}

// rotate moves the live file to path.1 (path.1 to path.2, ...), drops the oldest and opens a
// new live file. l.mu is held.
func (l *Log) rotate() error {
	if err := l.f.Close(); err != nil {
		return err
	}
	l.f = nil
	var err error
	if l.keep == 0 {
		err = os.Remove(l.path)
	} else {
		for i := l.keep - 1; i >= 1; i-- {
			if e := os.Rename(l.path+"."+strconv.Itoa(i), l.path+"."+strconv.Itoa(i+1)); e != nil && !os.IsNotExist(e) {
				err = e
			}
		}
		if e := os.Rename(l.path, l.path+".1"); e != nil {
			err = e
		}
	}
	l.warns++
	l.log.Warn("audit log reached its size limit and was rotated", "path", l.path, "max_bytes", l.max,
		"rotated_files_kept", l.keep, "rotations", l.warns)
	if oerr := l.open(); oerr != nil {
		return oerr
	}
	return err
}

// Close closes the file.
func (l *Log) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// Clip returns s cut to at most max bytes (FieldMax if max <= 0) on a UTF-8 boundary, plus a
// marker that says how many bytes were cut, e.g. "/api/atl...[+1048000 bytes]". A string that
// fits is returned unchanged. Use it for every client-supplied field of a log or audit record.
func Clip(s string, max int) string {
	if max <= 0 {
		max = FieldMax
	}
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "...[+" + strconv.Itoa(len(s)-cut) + " bytes]"
}
