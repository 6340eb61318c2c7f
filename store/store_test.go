package store

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func openTest(t *testing.T, dir string) *Store {
	t.Helper()
	key, err := LoadMasterKey(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := OpenBolt(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(b, key)
	if err != nil {
		_ = b.Close()
		t.Fatal(err)
	}
	return s
}

func TestCRUDAndPersistence(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	err := s.Update(func(tx *Txn) error {
		if err := tx.PutWorkspace(Workspace{Name: "w1", Address: "127.0.0.1:1"}); err != nil {
			return err
		}
		if err := tx.PutWorkspace(Workspace{Name: "w2"}); err != nil {
			return err
		}
		for _, c := range []Connection{
			{Workspace: "w1", Name: "k", Type: TypeKafka, Kafka: &Kafka{BootstrapServers: "b:9092", Auth: KafkaAuth{Password: "hunter2"}}},
			{Workspace: "w1", Name: "s", Type: TypeSample},
			{Workspace: "w2", Name: "k", Type: TypeSample},
		} {
			if err := tx.PutConnection(c); err != nil {
				return err
			}
		}
		return tx.PutUser(User{Database: "admin", Username: "u"})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, dir)
	defer func() { _ = s.Close() }()
	err = s.Update(func(tx *Txn) error {
		c, err := tx.Connection("w1", "k")
		if err != nil || c.Kafka.Auth.Password.Reveal() != "hunter2" {
			return fmt.Errorf("connection after reopen: %+v: %w", c, err)
		}
		cs, err := tx.Connections("w1")
		if err != nil || len(cs) != 2 {
			return fmt.Errorf("w1 connections: %d: %w", len(cs), err)
		}
		if err := tx.DeleteWorkspace("w1"); err != nil {
			return err
		}
		if _, err := tx.Connection("w1", "k"); !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("deleting a workspace left its connections: %w", err)
		}
		if cs, _ := tx.Connections("w2"); len(cs) != 1 {
			return errors.New("deleting w1 touched w2")
		}
		if err := tx.DeleteUser("admin", "nobody"); !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("deleting a missing user: %w", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Secrets are never readable in the file, and the file cannot be read with another key.
func TestEncryptionAtRest(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	err := s.Update(func(tx *Txn) error {
		return tx.PutConnection(Connection{Workspace: "w", Name: "c", Type: TypeKafka,
			Kafka: &Kafka{Auth: KafkaAuth{Username: "visible-name", Password: "s3cr3t-pa55"}}})
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	raw, err := os.ReadFile(filepath.Join(dir, "spi.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"s3cr3t-pa55", "visible-name"} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("%q is readable in the store file", secret)
		}
	}
	fi, _ := os.Stat(filepath.Join(dir, MasterKeyFile))
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("master key mode %v", fi.Mode().Perm())
	}
	b, err := OpenBolt(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Close() }()
	other := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	key, _ := LoadMasterKey(dir, other)
	if _, err := Open(b, key); err == nil || !strings.Contains(err.Error(), "master key") {
		t.Errorf("opening with another key: %v", err)
	}
}

// A sealed value moved to another key fails to open.
func TestSealBindsRecordKey(t *testing.T) {
	sl, err := newSealer(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	v := sl.seal("users", "admin\x00a", []byte("x"))
	if _, err := sl.open("users", "admin\x00b", v); err == nil {
		t.Error("a value sealed for one key opened under another")
	}
	if p, err := sl.open("users", "admin\x00a", v); err != nil || string(p) != "x" {
		t.Errorf("open: %q %v", p, err)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	_ = s.b.Update(func(tx Tx) error { return tx.Put(bucketMeta, keySchemaVersion, []byte("99")) })
	_ = s.Close()
	b, err := OpenBolt(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Close() }()
	key, _ := LoadMasterKey(dir, "")
	if _, err := Open(b, key); err == nil || !strings.Contains(err.Error(), "newer spid") {
		t.Errorf("opening a newer schema: %v", err)
	}
}

func TestSecretRedaction(t *testing.T) {
	s := Secret("topsecret")
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "s", s, "auth", KafkaAuth{Password: s})
	out := buf.String() + fmt.Sprint(s) + fmt.Sprintf("%v %+v %#v %s %q", s, KafkaAuth{Password: s}, s, s, s)
	if strings.Contains(out, "topsecret") {
		t.Errorf("secret printed: %s", out)
	}
	if s.Reveal() != "topsecret" {
		t.Error("Reveal")
	}
}

func TestMasterKeyEnv(t *testing.T) {
	if _, err := LoadMasterKey(t.TempDir(), "not base64!"); err == nil {
		t.Error("bad SPI_MASTER_KEY accepted")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, MasterKeyFile), []byte(base64.StdEncoding.EncodeToString(make([]byte, 32))), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadMasterKey(dir, ""); err == nil {
		t.Error("a world-readable master key file was accepted")
	}
}

// A truncated metadata file is refused with a clear error instead of crashing on a read past
// its end; a store without its master key is refused, and no new key is written.
func TestTruncatedStoreAndMissingKey(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	for i := range 400 {
		ws := Workspace{ID: fmt.Sprint(i), Name: fmt.Sprintf("w%03d", i), Address: strings.Repeat("x", 200)}
		if err := s.Update(func(tx *Txn) error { return tx.PutWorkspace(ws) }); err != nil {
			t.Fatal(err)
		}
	}
	_ = s.Close()
	path := filepath.Join(dir, "spi.db")
	st, _ := os.Stat(path)
	if err := os.Truncate(path, st.Size()/2); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenBolt(dir); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("opening a truncated store: %v", err)
	}
	if err := os.Truncate(path, 100); err != nil {
		t.Fatal(err)
	}
	if b, err := OpenBolt(dir); err == nil {
		_ = b.Close()
		t.Errorf("opening a 100-byte store succeeded")
	}

	if err := os.Remove(filepath.Join(dir, MasterKeyFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadMasterKey(dir, ""); err == nil || !strings.Contains(err.Error(), "master key is missing") {
		t.Errorf("a store without its key: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, MasterKeyFile)); !os.IsNotExist(err) {
		t.Errorf("a new master key was written (%v)", err)
	}
}
