package admin

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/spi-streams/spi/auth"
	"github.com/spi-streams/spi/store"
)

// InitialCredentials are created on first start and shown once. The JSON names are those of
// <data-dir>/initial-credentials.json.
type InitialCredentials struct {
	GroupID    string `json:"groupId"`
	PublicKey  string `json:"publicKey"`
	PrivateKey string `json:"privateKey"`
	Username   string `json:"username"`
	Password   string `json:"password"`
	AdminURL   string `json:"adminUrl,omitempty"`

	key store.APIKey
}

// DefaultWorkspace is the workspace first start creates on the --listen address.
const DefaultWorkspace = "default"

// InitialUser is the atlasAdmin database user first start creates.
const InitialUser = "admin"

// NewInitialCredentials draws the first owner API key and admin password. Nothing is stored
// until Bootstrap.
func NewInitialCredentials() (*InitialCredentials, error) {
	key, private := NewAPIKey("Created by spid on first start", []string{RoleOwner})
	pw := make([]byte, 18)
	var password string
	// A password starting with '-' would read as an option in the printed mongosh command
	// (--password -x...), so one in 64 draws is drawn again.
	for password == "" || password[0] == '-' {
		if _, err := rand.Read(pw); err != nil {
			return nil, err
		}
		password = base64.RawURLEncoding.EncodeToString(pw)
	}
	return &InitialCredentials{GroupID: newID(), PublicKey: key.PublicKey, PrivateKey: private,
		Username: InitialUser, Password: password, key: key}, nil
}

// Initialized reports whether the store already holds a project.
func Initialized(st *store.Store) (bool, error) {
	err := st.View(func(tx *store.Txn) error { _, err := tx.Project(); return err })
	if store.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// Bootstrap creates, in one transaction, the project, the default workspace on addr with the
// sample_stream_solar connection, the owner API key and the atlasAdmin user.
func Bootstrap(st *store.Store, c *InitialCredentials, addr string) error {
	sha1, sha256, err := auth.DeriveCredentials(c.Username, c.Password)
	if err != nil {
		return fmt.Errorf("deriving the admin credentials: %w", err)
	}
	now := time.Now().UTC()
	return st.Update(func(tx *store.Txn) error {
		if _, err := tx.Project(); err == nil {
			return fmt.Errorf("the data directory already holds a project")
		}
		steps := []func() error{
			func() error { return tx.PutProject(store.Project{ID: c.GroupID, Name: "spi", Created: now}) },
			func() error {
				return tx.PutWorkspace(store.Workspace{ID: newID(), Name: DefaultWorkspace, Address: addr,
					Region: store.Region{CloudProvider: defaultCloud, Region: defaultRegion}, Tier: defaultTier,
					MaxTierSize: defaultMaxTier, Created: now, Updated: now})
			},
			func() error { return tx.PutConnection(sampleConnection(DefaultWorkspace, now)) },
			func() error { return tx.PutAPIKey(c.key) },
			func() error {
				return tx.PutUser(store.User{ID: newID(), Database: "admin", Username: c.Username, X509Type: "NONE",
					Roles:     []store.RoleRef{{RoleName: "atlasAdmin", DatabaseName: "admin"}},
					SCRAMSHA1: sha1, SCRAMSHA256: sha256, Created: now, Updated: now})
			},
		}
		for _, step := range steps {
			if err := step(); err != nil {
				return err
			}
		}
		return nil
	})
}
