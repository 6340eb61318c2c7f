package store

import (
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Bucket names, one per kind of record.
const (
	bucketMeta        = "meta"
	bucketWorkspaces  = "workspaces"
	bucketConnections = "connections"
	bucketUsers       = "users"
	bucketRoles       = "roles"
	bucketAPIKeys     = "apiKeys"
	bucketProcessors  = "processors"
	bucketCheckpoints = "checkpoints"
)

// SchemaVersion is the layout this release writes. Opening a store written by a newer release
// fails; an older one is migrated forward.
const SchemaVersion = 1

const (
	keySchemaVersion = "schemaVersion"
	keyKeyCheck      = "keyCheck"
	keyProject       = "project"
	keyCheckValue    = "spi master key check"
)

// Store is the typed metadata store.
type Store struct {
	b    Backend
	seal *sealer
	// gen counts committed write transactions, so readers can cache what they read and
	// notice cheaply when anything may have changed.
	gen atomic.Uint64
}

// Open opens the store on b with the master key, initialising an empty backend and checking that
// the key matches the data.
func Open(b Backend, masterKey []byte) (*Store, error) {
	seal, err := newSealer(masterKey)
	if err != nil {
		return nil, err
	}
	s := &Store{b: b, seal: seal}
	err = b.Update(func(tx Tx) error {
		v := tx.Get(bucketMeta, keySchemaVersion)
		if v == nil {
			if err := tx.Put(bucketMeta, keySchemaVersion, []byte(strconv.Itoa(SchemaVersion))); err != nil {
				return err
			}
			return tx.Put(bucketMeta, keyKeyCheck, seal.seal(bucketMeta, keyKeyCheck, []byte(keyCheckValue)))
		}
		n, err := strconv.Atoi(string(v))
		if err != nil {
			return fmt.Errorf("store: unreadable schema version %q", v)
		}
		if n > SchemaVersion {
			return fmt.Errorf("store: the data directory was written by a newer spid (schema %d; this one reads up to %d)", n, SchemaVersion)
		}
		if _, err := seal.open(bucketMeta, keyKeyCheck, tx.Get(bucketMeta, keyKeyCheck)); err != nil {
			return err
		}
		return migrate(tx, n)
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// migrate brings a store at schema version from up to SchemaVersion. There is nothing to do
// yet: version 1 is the first.
func migrate(tx Tx, from int) error {
	if from == SchemaVersion {
		return nil
	}
	return tx.Put(bucketMeta, keySchemaVersion, []byte(strconv.Itoa(SchemaVersion)))
}

// Close closes the backend.
func (s *Store) Close() error { return s.b.Close() }

// View runs fn in a read-only transaction.
func (s *Store) View(fn func(*Txn) error) error {
	return s.b.View(func(tx Tx) error { return fn(&Txn{tx: tx, seal: s.seal}) })
}

// Update runs fn in a read-write transaction; its writes are durable once Update returns nil.
func (s *Store) Update(fn func(*Txn) error) error {
	err := s.b.Update(func(tx Tx) error { return fn(&Txn{tx: tx, seal: s.seal}) })
	if err == nil {
		s.gen.Add(1)
	}
	return err
}

// Generation changes after every committed write. A value read at generation g is current for
// as long as Generation still returns g.
func (s *Store) Generation() uint64 { return s.gen.Load() }

// Txn is a typed transaction.
type Txn struct {
	tx   Tx
	seal *sealer
}

func get[T any](t *Txn, bucket, key string) (T, error) {
	var v T
	raw := t.tx.Get(bucket, key)
	if raw == nil {
		return v, ErrNotFound
	}
	plain, err := t.seal.open(bucket, key, raw)
	if err != nil {
		return v, err
	}
	if err := bson.Unmarshal(plain, &v); err != nil {
		return v, fmt.Errorf("store: decoding %s/%s: %w", bucket, key, err)
	}
	return v, nil
}

func put[T any](t *Txn, bucket, key string, v T) error {
	plain, err := bson.Marshal(v)
	if err != nil {
		return err
	}
	return t.tx.Put(bucket, key, t.seal.seal(bucket, key, plain))
}

func list[T any](t *Txn, bucket, prefix string) ([]T, error) {
	var out []T
	err := t.tx.Scan(bucket, prefix, func(key string, raw []byte) error {
		plain, err := t.seal.open(bucket, key, raw)
		if err != nil {
			return err
		}
		var v T
		if err := bson.Unmarshal(plain, &v); err != nil {
			return fmt.Errorf("store: decoding %s/%s: %w", bucket, key, err)
		}
		out = append(out, v)
		return nil
	})
	return out, err
}

func remove(t *Txn, bucket, key string) error {
	if t.tx.Get(bucket, key) == nil {
		return ErrNotFound
	}
	return t.tx.Delete(bucket, key)
}

// sep joins the parts of a compound key; names never contain it.
const sep = "\x00"

// Project returns the project, or ErrNotFound before first start completes.
func (t *Txn) Project() (Project, error) { return get[Project](t, bucketMeta, keyProject) }

// PutProject stores the project.
func (t *Txn) PutProject(p Project) error { return put(t, bucketMeta, keyProject, p) }

// Workspace returns the named workspace.
func (t *Txn) Workspace(name string) (Workspace, error) {
	return get[Workspace](t, bucketWorkspaces, name)
}

// Workspaces lists all workspaces by name.
func (t *Txn) Workspaces() ([]Workspace, error) { return list[Workspace](t, bucketWorkspaces, "") }

// PutWorkspace creates or replaces a workspace.
func (t *Txn) PutWorkspace(w Workspace) error { return put(t, bucketWorkspaces, w.Name, w) }

// DeleteWorkspace removes a workspace and its connection registry.
func (t *Txn) DeleteWorkspace(name string) error {
	if err := remove(t, bucketWorkspaces, name); err != nil {
		return err
	}
	var keys []string
	err := t.tx.Scan(bucketConnections, name+sep, func(k string, _ []byte) error {
		keys = append(keys, k)
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := t.tx.Delete(bucketConnections, k); err != nil {
			return err
		}
	}
	return nil
}

// Connection returns a connection of a workspace.
func (t *Txn) Connection(workspace, name string) (Connection, error) {
	return get[Connection](t, bucketConnections, workspace+sep+name)
}

// Connections lists a workspace's connections by name.
func (t *Txn) Connections(workspace string) ([]Connection, error) {
	return list[Connection](t, bucketConnections, workspace+sep)
}

// PutConnection creates or replaces a connection.
func (t *Txn) PutConnection(c Connection) error {
	return put(t, bucketConnections, c.Workspace+sep+c.Name, c)
}

// DeleteConnection removes a connection.
func (t *Txn) DeleteConnection(workspace, name string) error {
	return remove(t, bucketConnections, workspace+sep+name)
}

// User returns a database user.
func (t *Txn) User(database, username string) (User, error) {
	return get[User](t, bucketUsers, database+sep+username)
}

// Users lists all database users, by database then name.
func (t *Txn) Users() ([]User, error) { return list[User](t, bucketUsers, "") }

// PutUser creates or replaces a database user.
func (t *Txn) PutUser(u User) error { return put(t, bucketUsers, u.Database+sep+u.Username, u) }

// DeleteUser removes a database user.
func (t *Txn) DeleteUser(database, username string) error {
	return remove(t, bucketUsers, database+sep+username)
}

// Role returns a custom role.
func (t *Txn) Role(name string) (Role, error) { return get[Role](t, bucketRoles, name) }

// Roles lists the custom roles by name.
func (t *Txn) Roles() ([]Role, error) { return list[Role](t, bucketRoles, "") }

// PutRole creates or replaces a custom role.
func (t *Txn) PutRole(r Role) error { return put(t, bucketRoles, r.Name, r) }

// DeleteRole removes a custom role.
func (t *Txn) DeleteRole(name string) error { return remove(t, bucketRoles, name) }

// APIKey returns an API key by its public key.
func (t *Txn) APIKey(publicKey string) (APIKey, error) {
	return get[APIKey](t, bucketAPIKeys, publicKey)
}

// APIKeys lists the API keys by public key.
func (t *Txn) APIKeys() ([]APIKey, error) { return list[APIKey](t, bucketAPIKeys, "") }

// PutAPIKey creates or replaces an API key.
func (t *Txn) PutAPIKey(k APIKey) error { return put(t, bucketAPIKeys, k.PublicKey, k) }

// DeleteAPIKey removes an API key.
func (t *Txn) DeleteAPIKey(publicKey string) error { return remove(t, bucketAPIKeys, publicKey) }

// Processor returns a workspace's processor by name.
func (t *Txn) Processor(workspace, name string) (Processor, error) {
	return get[Processor](t, bucketProcessors, workspace+sep+name)
}

// Processors lists a workspace's processors by name; an empty workspace lists every processor.
func (t *Txn) Processors(workspace string) ([]Processor, error) {
	prefix := ""
	if workspace != "" {
		prefix = workspace + sep
	}
	return list[Processor](t, bucketProcessors, prefix)
}

// PutProcessor creates or replaces a processor.
func (t *Txn) PutProcessor(p Processor) error {
	return put(t, bucketProcessors, p.Workspace+sep+p.Name, p)
}

// DeleteProcessor removes a processor and its checkpoint.
func (t *Txn) DeleteProcessor(workspace, name string) error {
	p, err := t.Processor(workspace, name)
	if err != nil {
		return err
	}
	if err := t.tx.Delete(bucketCheckpoints, p.ID); err != nil {
		return err
	}
	return remove(t, bucketProcessors, workspace+sep+name)
}

// Checkpoint returns a processor's last committed checkpoint.
func (t *Txn) Checkpoint(processorID string) (Checkpoint, error) {
	return get[Checkpoint](t, bucketCheckpoints, processorID)
}

// PutCheckpoint replaces a processor's checkpoint: only the last one is kept.
func (t *Txn) PutCheckpoint(c Checkpoint) error { return put(t, bucketCheckpoints, c.ProcessorID, c) }

// DeleteCheckpoint forgets a processor's checkpoint (resumeFromCheckpoint: false).
func (t *Txn) DeleteCheckpoint(processorID string) error {
	return t.tx.Delete(bucketCheckpoints, processorID)
}

// IsNotFound reports whether err means a record does not exist.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
