package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// MasterKeyFile is the name of the master key file inside the data directory.
const MasterKeyFile = "master.key"

// masterKeySize is the AES-256 key length.
const masterKeySize = 32

// LoadMasterKey returns the key that seals the store: from SPI_MASTER_KEY (base64 of 32 bytes)
// when env is non-empty, else from <dir>/master.key, which is created (mode 0600) on first use.
func LoadMasterKey(dir, env string) ([]byte, error) {
	if env != "" {
		k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(env))
		if err != nil || len(k) != masterKeySize {
			return nil, errors.New("SPI_MASTER_KEY must be the base64 encoding of 32 bytes")
		}
		return k, nil
	}
	path := filepath.Join(dir, MasterKeyFile)
	b, err := os.ReadFile(path)
	if err == nil {
		fi, err := os.Stat(path)
		if err == nil && fi.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("%s is readable by other users (mode %v); run chmod 600 on it", path, fi.Mode().Perm())
		}
		k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(k) != masterKeySize {
			return nil, fmt.Errorf("%s does not hold a base64-encoded 32-byte key", path)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	// A store sealed under a key that is not here cannot be opened with a new one: writing a
	// fresh key would only hide the real problem (and another missing key later).
	if st, err := os.Stat(filepath.Join(dir, "spi.db")); err == nil && st.Size() > 0 {
		return nil, fmt.Errorf("the master key is missing: %s does not exist, but the store %s does and was sealed with it; restore the key file or set SPI_MASTER_KEY (no new key was written)",
			path, filepath.Join(dir, "spi.db"))
	}
	k := make([]byte, masterKeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(path, []byte(base64.StdEncoding.EncodeToString(k)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}
	return k, nil
}

// writeFileAtomic writes data to a temporary file, syncs it, and renames it over path, so a
// crash leaves either the old file or the new one.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() { _ = os.Remove(tmp) }()
	if err := f.Chmod(perm); err != nil {
		_ = f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer func() { _ = d.Close() }()
	return d.Sync()
}

// WriteFileAtomic is writeFileAtomic for other packages (the first-start credentials file).
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	return writeFileAtomic(path, data, perm)
}

// sealer encrypts record values. The bucket and key are authenticated as associated data, so a
// sealed value cannot be moved to another record.
type sealer struct {
	aead cipher.AEAD
}

func newSealer(key []byte) (*sealer, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

// sealVersion prefixes every sealed value, leaving room for key rotation.
const sealVersion = 1

func (s *sealer) seal(bucket, key string, plain []byte) []byte {
	nonce := make([]byte, s.aead.NonceSize(), 1+s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic("store: no randomness: " + err.Error())
	}
	out := append([]byte{sealVersion}, nonce...)
	return s.aead.Seal(out, nonce, plain, []byte(bucket+"/"+key))
}

var errUnseal = errors.New("cannot decrypt a stored record: the master key does not match this data directory, or the file is damaged")

func (s *sealer) open(bucket, key string, sealed []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < 1+n || sealed[0] != sealVersion {
		return nil, errUnseal
	}
	plain, err := s.aead.Open(nil, sealed[1:1+n], sealed[1+n:], []byte(bucket+"/"+key))
	if err != nil {
		return nil, errUnseal
	}
	return plain, nil
}
