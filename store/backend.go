// Package store keeps spid's metadata: the project, workspaces, connection registry entries,
// database users, custom roles and API keys (and later processors and checkpoints).
//
// A Backend is a transactional key-value store; the embedded one is a bbolt file in the data
// directory. Store layers typed records on top and seals every value with AES-GCM under the
// master key, so registry credentials and key material are encrypted at rest.
package store

import (
	"errors"
)

// Backend is the storage a Store runs on. Every implementation gives serializable
// transactions: a write transaction that returns nil is durable before Update returns.
type Backend interface {
	// View runs fn in a read-only transaction.
	View(fn func(Tx) error) error
	// Update runs fn in a read-write transaction, committing if fn returns nil.
	Update(fn func(Tx) error) error
	// Close releases the backend.
	Close() error
}

// Tx is one transaction's view of the key-value space, organised in named buckets.
type Tx interface {
	// Get returns the value stored under key, or nil if there is none. The slice is valid only
	// inside the transaction.
	Get(bucket, key string) []byte
	// Put stores value under key.
	Put(bucket, key string, value []byte) error
	// Delete removes key; removing a missing key is not an error.
	Delete(bucket, key string) error
	// Scan calls fn for each key with the given prefix, in key order.
	Scan(bucket, prefix string, fn func(key string, value []byte) error) error
}

// Errors callers can test for with errors.Is.
var (
	// ErrNotFound is returned when a record does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists is returned when creating a record whose name is taken.
	ErrExists = errors.New("already exists")
)
