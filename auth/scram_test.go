package auth

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/xdg-go/scram"

	"github.com/spi-streams/spi/store"
)

// The example exchanges of RFC 5802 (SCRAM-SHA-1) and RFC 7677 (SCRAM-SHA-256), byte for byte,
// with credentials stored the way spid stores them.
func TestRFCExchanges(t *testing.T) {
	cases := []struct {
		mech, salt, serverNonce string
		hash                    scram.HashGeneratorFcn
		msgs                    [4]string // client-first, server-first, client-final, server-final
	}{
		{MechSHA1, "QSXCR+Q6sek8bf92", "3rfcNHYJY1ZVvWVs7j", scram.SHA1, [4]string{
			"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
			"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
			"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
			"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
		}},
		{MechSHA256, "W22ZaJ0SNY7soEsUEjb6gQ==", "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0", scram.SHA256, [4]string{
			"n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
			"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
			"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
			"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
		}},
	}
	for _, c := range cases {
		salt, _ := base64.StdEncoding.DecodeString(c.salt)
		client, err := c.hash.NewClientUnprepped("user", "pencil", "")
		if err != nil {
			t.Fatal(err)
		}
		sc, err := client.GetStoredCredentialsWithError(scram.KeyFactors{Salt: string(salt), Iters: 4096})
		if err != nil {
			t.Fatal(err)
		}
		cred := &store.ScramCredential{Salt: salt, Iterations: 4096, StoredKey: sc.StoredKey, ServerKey: sc.ServerKey}
		conv, err := newConversation(c.mech, func(u string) *store.ScramCredential {
			if u == "user" {
				return cred
			}
			return nil
		}, func() string { return c.serverNonce })
		if err != nil {
			t.Fatal(err)
		}
		first, err := conv.Step([]byte(c.msgs[0]))
		if err != nil || string(first) != c.msgs[1] {
			t.Fatalf("%s server-first: %q %v", c.mech, first, err)
		}
		final, err := conv.Step([]byte(c.msgs[2]))
		if err != nil || string(final) != c.msgs[3] || !conv.Valid() {
			t.Fatalf("%s server-final: %q %v", c.mech, final, err)
		}
		// The same client-final replayed into a new conversation fails: the server nonce differs.
		again, _ := NewConversation(c.mech, func(string) *store.ScramCredential { return cred })
		if _, err := again.Step([]byte(c.msgs[0])); err != nil {
			t.Fatal(err)
		}
		if _, err := again.Step([]byte(c.msgs[2])); err == nil || again.Valid() {
			t.Errorf("%s: a replayed proof was accepted", c.mech)
		}
	}
}

// An unknown user gets a plausible server-first message (stable salt, usual iteration count)
// and fails only at the proof, like a wrong password.
func TestUnknownUserLooksLikeWrongPassword(t *testing.T) {
	none := func(string) *store.ScramCredential { return nil }
	var firsts []string
	for range 2 {
		conv, err := NewConversation(MechSHA256, none)
		if err != nil {
			t.Fatal(err)
		}
		out, err := conv.Step([]byte("n,,n=ghost,r=abcdefghijklmnopqrstuvwx"))
		if err != nil {
			t.Fatalf("server-first for an unknown user failed early: %v", err)
		}
		firsts = append(firsts, string(out))
		if _, err := conv.Step([]byte("c=biws,r=x,p=AAAA")); err == nil || conv.Valid() {
			t.Error("an unknown user authenticated")
		}
	}
	salt := func(s string) string { return strings.Split(s, ",")[1] }
	if salt(firsts[0]) != salt(firsts[1]) {
		t.Errorf("the decoy salt changes between attempts: %q vs %q", firsts[0], firsts[1])
	}
}
