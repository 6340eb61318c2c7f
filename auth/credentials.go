// Package auth holds what database-user authentication needs: SCRAM credential derivation
// (the server never keeps a password), MongoDB's SCRAM-SHA-1 password digest, and later the
// SCRAM server conversations and X.509 subject mapping.
package auth

import (
	"crypto/md5" // MongoDB's SCRAM-SHA-1 password digest is defined as MD5.
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/xdg-go/scram"
	"github.com/xdg-go/stringprep"

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

// ErrSASLprep says a password cannot be a SCRAM-SHA-256 password: SASLprep (RFC 4013) refuses
// it (control, private-use or unassigned characters, or a bidirectional-text violation).
var ErrSASLprep = errors.New("password is not allowed by SASLprep")

// DeriveCredentials computes the SCRAM-SHA-1 and SCRAM-SHA-256 credentials for a password with
// fresh salts; see DeriveSHA1 and DeriveSHA256.
func DeriveCredentials(username, password string) (sha1, sha256 *store.ScramCredential, err error) {
	if sha256, err = DeriveSHA256(username, password); err != nil {
		return nil, nil, err
	}
	if sha1, err = DeriveSHA1(username, password); err != nil {
		return nil, nil, err
	}
	return sha1, sha256, nil
}

// DeriveSHA1 computes a SCRAM-SHA-1 credential with a fresh salt. Its password is MongoDB's
// digest of user name and password; nothing is SASLprep'd (MongoDB authentication spec,
// "SCRAM-SHA-1": drivers do not SASLprep), so any password works.
func DeriveSHA1(username, password string) (*store.ScramCredential, error) {
	c, err := scram.SHA1.NewClientUnprepped(username, MongoSHA1Digest(username, password), "")
	if err != nil {
		return nil, err
	}
	return derive(c, sha1SaltSize, SHA1Iterations)
}

// DeriveSHA256 computes a SCRAM-SHA-256 credential with a fresh salt. Only the password is
// SASLprep'd; user names never are (MongoDB authentication spec, "SCRAM-SHA-256"), so a user
// name in any script works. A password SASLprep refuses is ErrSASLprep.
func DeriveSHA256(username, password string) (*store.ScramCredential, error) {
	prepped, err := stringprep.SASLprep.Prepare(password)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSASLprep, err)
	}
	c, err := scram.SHA256.NewClientUnprepped(username, prepped, "")
	if err != nil {
		return nil, err
	}
	return derive(c, sha256SaltSize, SHA256Iterations)
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
