package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"

	"github.com/xdg-go/scram"

	"github.com/spi-streams/spi/store"
)

// SCRAM mechanism names as MongoDB spells them.
const (
	MechSHA1   = "SCRAM-SHA-1"
	MechSHA256 = "SCRAM-SHA-256"
	MechX509   = "MONGODB-X509"
)

// ErrAuthFailed is every authentication failure as the client sees it. The reason stays in the
// server's audit log: the reply never tells an unknown user from a wrong password.
var ErrAuthFailed = errors.New("Authentication failed.") //nolint:revive,staticcheck // MongoDB's exact text

// CredentialLookup returns a user's stored credential for one mechanism, or nil.
type CredentialLookup func(username string) *store.ScramCredential

// Conversation is the server side of one SCRAM exchange. It only uses stored credentials:
// no key is derived at login.
type Conversation struct {
	mech  string
	conv  *scram.ServerConversation
	known bool
}

// decoyKey keys the credentials invented for unknown users, so that repeated attempts for the
// same unknown name see the same salt, as they would for a real user.
var decoyKey = func() []byte {
	b := make([]byte, 32)
	if _, err := randRead(b); err != nil {
		panic("auth: no randomness: " + err.Error())
	}
	return b
}()

// decoy returns stable, meaningless credentials for a user that does not exist.
func decoy(mech, username string) scram.StoredCredentials {
	mac := func(label string, n int) string {
		h := hmac.New(sha256.New, decoyKey)
		h.Write([]byte(label + "\x00" + mech + "\x00" + username))
		return string(h.Sum(nil)[:n])
	}
	saltSize, iters, keySize := sha256SaltSize, SHA256Iterations, 32
	if mech == MechSHA1 {
		saltSize, iters, keySize = sha1SaltSize, SHA1Iterations, 20
	}
	return scram.StoredCredentials{
		KeyFactors: scram.KeyFactors{Salt: mac("salt", saltSize), Iters: iters},
		StoredKey:  []byte(mac("stored", keySize)),
		ServerKey:  []byte(mac("server", keySize)),
	}
}

// NewConversation starts a SCRAM conversation for mech ("SCRAM-SHA-1" or "SCRAM-SHA-256").
func NewConversation(mech string, lookup CredentialLookup) (*Conversation, error) {
	return newConversation(mech, lookup, nil)
}

func newConversation(mech string, lookup CredentialLookup, nonce scram.NonceGeneratorFcn) (*Conversation, error) {
	var hash scram.HashGeneratorFcn
	switch mech {
	case MechSHA1:
		hash = scram.SHA1
	case MechSHA256:
		hash = scram.SHA256
	default:
		return nil, errors.New("unsupported mechanism " + mech)
	}
	c := &Conversation{mech: mech}
	srv, err := hash.NewServer(func(username string) (scram.StoredCredentials, error) {
		if cred := lookup(username); cred != nil {
			c.known = true
			return scram.StoredCredentials{KeyFactors: scram.KeyFactors{Salt: string(cred.Salt), Iters: cred.Iterations},
				StoredKey: cred.StoredKey, ServerKey: cred.ServerKey}, nil
		}
		return decoy(mech, username), nil
	})
	if err != nil {
		return nil, err
	}
	if nonce != nil {
		srv = srv.WithNonceGenerator(nonce)
	}
	c.conv = srv.NewConversation()
	return c, nil
}

// Step consumes a client message and returns the server's next message.
func (c *Conversation) Step(payload []byte) ([]byte, error) {
	out, err := c.conv.Step(string(payload))
	if err != nil {
		return nil, err
	}
	if c.conv.Done() && !c.known {
		return nil, errors.New("unknown user")
	}
	return []byte(out), nil
}

// Done reports whether the exchange is over (successfully or not).
func (c *Conversation) Done() bool { return c.conv.Done() }

// Valid reports whether the client proved it knows the password of an existing user.
func (c *Conversation) Valid() bool { return c.known && c.conv.Valid() }

// Username is the user name the client gave.
func (c *Conversation) Username() string { return c.conv.Username() }

// Mechanism is the conversation's mechanism.
func (c *Conversation) Mechanism() string { return c.mech }
