// Package auth holds what database-user authentication needs: SCRAM credential derivation
// (the server never keeps a password), MongoDB's SCRAM-SHA-1 password digest, and later the
// SCRAM server conversations and X.509 subject mapping.
package auth

import (
	"crypto/md5" // MongoDB's SCRAM-SHA-1 password digest is defined as MD5.
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/xdg-go/scram"

	"github.com/spi-streams/spi/store"
)

// Iteration counts and salt sizes mongod uses by default.
const (
	SHA1Iterations   = 10000
	SHA256Iterations = 15000
	sha1SaltSize     = 16
	sha256SaltSize   = 28
)

// MongoSHA1Digest is the password SCRAM-SHA-1 uses in MongoDB: md5hex("<user>:mongo:<password>").
func MongoSHA1Digest(username, password string) string {
	sum := md5.Sum([]byte(username + ":mongo:" + password))
	return hex.EncodeToString(sum[:])
}

// DeriveCredentials computes the SCRAM-SHA-1 and SCRAM-SHA-256 credentials for a password with
// fresh salts. The SHA-256 password is SASLprep'd first; a password SASLprep rejects is an error.
func DeriveCredentials(username, password string) (sha1, sha256 *store.ScramCredential, err error) {
	c256, err := scram.SHA256.NewClient(username, password, "")
	if err != nil {
		return nil, nil, fmt.Errorf("password is not allowed by SASLprep: %w", err)
	}
	c1, err := scram.SHA1.NewClientUnprepped(username, MongoSHA1Digest(username, password), "")
	if err != nil {
		return nil, nil, err
	}
	sha1, err = derive(c1, sha1SaltSize, SHA1Iterations)
	if err != nil {
		return nil, nil, err
	}
	sha256, err = derive(c256, sha256SaltSize, SHA256Iterations)
	if err != nil {
		return nil, nil, err
	}
	return sha1, sha256, nil
}

func derive(c *scram.Client, saltSize, iterations int) (*store.ScramCredential, error) {
	salt := make([]byte, saltSize)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	sc, err := c.GetStoredCredentialsWithError(scram.KeyFactors{Salt: string(salt), Iters: iterations})
	if err != nil {
		return nil, err
	}
	return &store.ScramCredential{Salt: salt, Iterations: iterations, StoredKey: sc.StoredKey, ServerKey: sc.ServerKey}, nil
}

var randRead = rand.Read
