// Package storetest opens throwaway stores for tests of the packages built on the store.
package storetest

import (
	"testing"

	"github.com/spi-streams/spi/store"
)

// Open returns an empty store in a temporary directory, closed when the test ends.
func Open(t testing.TB) *store.Store {
	t.Helper()
	dir := t.TempDir()
	key, err := store.LoadMasterKey(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := store.OpenBolt(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(b, key)
	if err != nil {
		_ = b.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}
