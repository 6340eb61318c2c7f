package auth

import (
	"testing"

	"github.com/xdg-go/scram"
)

// Credentials derived here let a real SCRAM client conversation (xdg-go/scram, the library the
// Go driver uses) complete against a server that only knows the stored credentials.
func TestDerivedCredentialsAuthenticate(t *testing.T) {
	for _, pw := range []string{"correct horse battery", "I\u00ADX", "\u2168"} { // SASLprep cases of RFC 4013
		sha1, sha256, err := DeriveCredentials("user", pw)
		if err != nil {
			t.Fatal(err)
		}
		if sha1.Iterations != 10000 || sha256.Iterations != 15000 {
			t.Errorf("iterations %d/%d", sha1.Iterations, sha256.Iterations)
		}
		cases := []struct {
			hash   scram.HashGeneratorFcn
			cred   scram.StoredCredentials
			client *scram.Client
		}{
			{scram.SHA1, scram.StoredCredentials{KeyFactors: scram.KeyFactors{Salt: string(sha1.Salt), Iters: sha1.Iterations}, StoredKey: sha1.StoredKey, ServerKey: sha1.ServerKey}, mustClient(t, scram.SHA1, "user", MongoSHA1Digest("user", pw), false)},
			{scram.SHA256, scram.StoredCredentials{KeyFactors: scram.KeyFactors{Salt: string(sha256.Salt), Iters: sha256.Iterations}, StoredKey: sha256.StoredKey, ServerKey: sha256.ServerKey}, mustClient(t, scram.SHA256, "user", pw, true)},
		}
		for _, c := range cases {
			srv, err := c.hash.NewServer(func(string) (scram.StoredCredentials, error) { return c.cred, nil })
			if err != nil {
				t.Fatal(err)
			}
			if !converse(t, c.client.NewConversation(), srv.NewConversation()) {
				t.Errorf("password %q: conversation failed", pw)
			}
		}
	}
	if _, _, err := DeriveCredentials("user", "bad\u0007control"); err == nil {
		t.Error("a password SASLprep prohibits was accepted")
	}
}

func mustClient(t *testing.T, h scram.HashGeneratorFcn, user, pw string, prep bool) *scram.Client {
	t.Helper()
	var c *scram.Client
	var err error
	if prep {
		c, err = h.NewClient(user, pw, "")
	} else {
		c, err = h.NewClientUnprepped(user, pw, "")
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func converse(t *testing.T, cc *scram.ClientConversation, sc *scram.ServerConversation) bool {
	t.Helper()
	msg, err := cc.Step("")
	for i := 0; i < 4 && err == nil; i++ {
		var reply string
		reply, err = sc.Step(msg)
		if err != nil {
			return false
		}
		msg, err = cc.Step(reply)
		if cc.Done() && sc.Valid() {
			return err == nil
		}
	}
	return false
}
