package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// buckets are created when the file is first opened.
var buckets = []string{bucketMeta, bucketWorkspaces, bucketConnections, bucketUsers, bucketRoles, bucketAPIKeys, bucketProcessors, bucketCheckpoints}

// boltBackend is the embedded Backend: one bbolt file, fsynced on every commit.
type boltBackend struct {
	db *bolt.DB
}

// OpenBolt opens (creating if needed) the metadata file in dir. A second process opening the
// same file waits at most a second for the lock, then fails.
func OpenBolt(dir string) (Backend, error) {
	path := filepath.Join(dir, "spi.db")
	if err := checkBoltFile(path); err != nil {
		return nil, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("%s is locked: is another spid using this data directory?", path)
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range buckets {
			if _, err := tx.CreateBucketIfNotExists([]byte(b)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("initialising %s: %w", path, err)
	}
	return &boltBackend{db: db}, nil
}

// Layout of a bbolt meta page (go.etcd.io/bbolt internal/common: page and Meta): a 16-byte
// page header, then magic, version, pageSize, flags (uint32 each), the root bucket (16 bytes),
// the freelist page, the high-water page id and the transaction id (uint64 each), then an
// FNV-64a checksum of everything before it. Native (little-endian) byte order.
const (
	boltMagic       = 0xED0CDAED
	boltPageHeader  = 16
	boltMetaSumEnd  = 56 // bytes of the meta covered by its checksum
	boltMetaPgidOff = 40
	boltMetaTxidOff = 48
)

// checkBoltFile refuses a metadata file shorter than its own meta pages say it is. bbolt maps
// the file into memory and would crash the process with SIGBUS on the first read past its end;
// a clear error is better. A missing or empty file is a new store.
func checkBoltFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("opening %s: %w", path, err)
	}
	defer func() { _ = f.Close() }()
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return err
	}
	meta := func(off int64) (pageSize uint32, pgid, txid uint64, ok bool) {
		b := make([]byte, boltMetaSumEnd+8)
		if _, err := f.ReadAt(b, off+boltPageHeader); err != nil && !errors.Is(err, io.EOF) {
			return 0, 0, 0, false
		}
		h := fnv.New64a()
		_, _ = h.Write(b[:boltMetaSumEnd])
		if binary.LittleEndian.Uint32(b[0:]) != boltMagic || binary.LittleEndian.Uint64(b[boltMetaSumEnd:]) != h.Sum64() {
			return 0, 0, 0, false
		}
		return binary.LittleEndian.Uint32(b[8:]), binary.LittleEndian.Uint64(b[boltMetaPgidOff:]),
			binary.LittleEndian.Uint64(b[boltMetaTxidOff:]), true
	}
	ps0, pgid, txid, ok0 := meta(0)
	second := int64(ps0)
	if !ok0 {
		second = int64(os.Getpagesize())
	}
	ps1, pgid1, txid1, ok1 := meta(second)
	switch {
	case !ok0 && !ok1:
		return fmt.Errorf("%s is not a readable spi store (both meta pages are damaged or it is not a bbolt file); restore it from a backup", path)
	case !ok0 || (ok1 && txid1 > txid):
		ps0, pgid = ps1, pgid1
	}
	if need := int64(pgid) * int64(ps0); st.Size() < need {
		return fmt.Errorf("%s is truncated: it holds %d bytes but its pages need %d; restore it from a backup (spid did not open it, to avoid a crash)", path, st.Size(), need)
	}
	return nil
}

func (b *boltBackend) View(fn func(Tx) error) error {
	return b.db.View(func(tx *bolt.Tx) error { return fn(boltTx{tx}) })
}

func (b *boltBackend) Update(fn func(Tx) error) error {
	return b.db.Update(func(tx *bolt.Tx) error { return fn(boltTx{tx}) })
}

func (b *boltBackend) Close() error { return b.db.Close() }

type boltTx struct{ tx *bolt.Tx }

func (t boltTx) bucket(name string) (*bolt.Bucket, error) {
	b := t.tx.Bucket([]byte(name))
	if b == nil {
		return nil, fmt.Errorf("store: no bucket %q", name)
	}
	return b, nil
}

func (t boltTx) Get(bucket, key string) []byte {
	b, err := t.bucket(bucket)
	if err != nil {
		return nil
	}
	return b.Get([]byte(key))
}

func (t boltTx) Put(bucket, key string, value []byte) error {
	b, err := t.bucket(bucket)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), value)
}

func (t boltTx) Delete(bucket, key string) error {
	b, err := t.bucket(bucket)
	if err != nil {
		return err
	}
	return b.Delete([]byte(key))
}

func (t boltTx) Scan(bucket, prefix string, fn func(key string, value []byte) error) error {
	b, err := t.bucket(bucket)
	if err != nil {
		return err
	}
	c := b.Cursor()
	p := []byte(prefix)
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		if err := fn(string(k), v); err != nil {
			return err
		}
	}
	return nil
}
