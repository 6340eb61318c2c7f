package e2e

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/xdg-go/scram"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// rawConn speaks OP_MSG on one TCP connection, without a driver, so tests control every byte.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	id int32
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &rawConn{t: t, c: c}
}

// run sends one command and returns the reply document.
func (r *rawConn) run(cmd bson.D) bson.Raw {
	r.t.Helper()
	r.id++
	body, err := bson.Marshal(cmd)
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.c.Write(message(r.id, 2013, opMsg(0, body0(body)))); err != nil {
		r.t.Fatal(err)
	}
	reply, _, err := readReply(r.c)
	if err != nil {
		r.t.Fatalf("reply to %v: %v", cmd[0].Key, err)
	}
	return reply
}

func codeOf(reply bson.Raw) int32 {
	c, _ := reply.Lookup("code").AsInt64OK()
	return int32(c)
}

func bin(s string) bson.Binary { return bson.Binary{Data: []byte(s)} }

func saslStartCmd(payload string) bson.D {
	return bson.D{{Key: "saslStart", Value: 1}, {Key: "mechanism", Value: "SCRAM-SHA-256"}, {Key: "payload", Value: bin(payload)},
		{Key: "options", Value: bson.D{{Key: "skipEmptyExchange", Value: true}}}, {Key: "$db", Value: "admin"}}
}

func saslContinueCmd(id int32, payload string) bson.D {
	return bson.D{{Key: "saslContinue", Value: 1}, {Key: "conversationId", Value: id}, {Key: "payload", Value: bin(payload)}, {Key: "$db", Value: "admin"}}
}

// Malformed SASL payloads, wrong conversation ids, replayed proofs, abandoned conversations and
// a thousand failed logins each get the documented error, and the server keeps serving others.
func TestSASLBadInput(t *testing.T) {
	// The login throttle, which would slow the thousand failures below, is TestLoginThrottle's
	// subject.
	s := startSpid(t, "--login-failures-free", "1000000")
	creds := s.Creds(t)
	witness := connectGo(t, s.Admin(t, "", ""))
	client, err := scram.SHA256.NewClient(creds.Username, creds.Password, "")
	if err != nil {
		t.Fatal(err)
	}
	wantAuthFailed := func(what string, reply bson.Raw) {
		t.Helper()
		msg, _ := reply.Lookup("errmsg").StringValueOK()
		name, _ := reply.Lookup("codeName").StringValueOK()
		if codeOf(reply) != 18 || msg != "Authentication failed." || name != "AuthenticationFailed" {
			t.Errorf("%s: %v", what, reply)
		}
	}
	// A good conversation, recorded so its proof can be replayed.
	conv := client.NewConversation()
	first, _ := conv.Step("")
	rc := dialRaw(t, s.Addr)
	r := rc.run(saslStartCmd(first))
	id := r.Lookup("conversationId").Int32()
	serverFirst := payloadOf(r)
	final, err := conv.Step(serverFirst)
	if err != nil {
		t.Fatal(err)
	}
	if r := rc.run(saslContinueCmd(id, final)); r.Lookup("done").Boolean() != true {
		t.Fatalf("good conversation: %v", r)
	}

	cases := []struct {
		name string
		do   func(rc *rawConn) bson.Raw
	}{
		{"empty client-first", func(rc *rawConn) bson.Raw { return rc.run(saslStartCmd("")) }},
		{"garbage client-first", func(rc *rawConn) bson.Raw { return rc.run(saslStartCmd("\xff\x00garbage")) }},
		{"channel binding requested", func(rc *rawConn) bson.Raw { return rc.run(saslStartCmd("p=tls-unique,,n=admin,r=abc")) }},
		{"no payload", func(rc *rawConn) bson.Raw {
			return rc.run(bson.D{{Key: "saslStart", Value: 1}, {Key: "mechanism", Value: "SCRAM-SHA-256"}, {Key: "$db", Value: "admin"}})
		}},
		{"continue without start", func(rc *rawConn) bson.Raw { return rc.run(saslContinueCmd(1, "c=biws,r=x,p=AAAA")) }},
		{"wrong conversation id", func(rc *rawConn) bson.Raw {
			r := rc.run(saslStartCmd("n,,n=admin,r=abcdefghijklmnop"))
			return rc.run(saslContinueCmd(r.Lookup("conversationId").Int32()+7, "c=biws,r=x,p=AAAA"))
		}},
		{"garbage client-final", func(rc *rawConn) bson.Raw {
			r := rc.run(saslStartCmd("n,,n=admin,r=abcdefghijklmnop"))
			return rc.run(saslContinueCmd(r.Lookup("conversationId").Int32(), "not a scram message"))
		}},
		{"replayed proof", func(rc *rawConn) bson.Raw {
			r := rc.run(saslStartCmd(first))
			return rc.run(saslContinueCmd(r.Lookup("conversationId").Int32(), final))
		}},
		{"wrong password", func(rc *rawConn) bson.Raw {
			bad, _ := scram.SHA256.NewClient(creds.Username, "not-the-password", "")
			c := bad.NewConversation()
			f, _ := c.Step("")
			r := rc.run(saslStartCmd(f))
			fin, _ := c.Step(payloadOf(r))
			return rc.run(saslContinueCmd(r.Lookup("conversationId").Int32(), fin))
		}},
	}
	for _, c := range cases {
		rc := dialRaw(t, s.Addr)
		wantAuthFailed(c.name, c.do(rc))
		// The connection stays usable and unauthenticated.
		if r := rc.run(bson.D{{Key: "buildInfo", Value: 1}, {Key: "$db", Value: "admin"}}); codeOf(r) != 13 {
			t.Errorf("%s: afterwards buildInfo gave %v, want 13 (not authenticated)", c.name, r)
		}
	}
	if r := dialRaw(t, s.Addr).run(bson.D{{Key: "saslStart", Value: 1}, {Key: "mechanism", Value: "PLAIN"},
		{Key: "payload", Value: bin("\x00admin\x00pw")}, {Key: "$db", Value: "admin"}}); codeOf(r) != 334 {
		t.Errorf("PLAIN: %v", r)
	}

	// Conversations left half-way: started and abandoned, with the connection closed.
	for range 20 {
		rc := dialRaw(t, s.Addr)
		rc.run(saslStartCmd("n,,n=admin,r=halfwayhalfwayhalfway"))
		_ = rc.c.Close()
	}

	// 1,000 failed logins in a row (the client's keys are derived once and cached), while another
	// client keeps working.
	bad, _ := scram.SHA256.NewClient(creds.Username, "wrong-password", "")
	var failures atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var witnessErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := witness.Ping(t.Context(), nil); err != nil {
				witnessErr = err
				return
			}
		}
	}()
	rc = dialRaw(t, s.Addr)
	for i := range 1000 {
		c := bad.NewConversation()
		f, _ := c.Step("")
		r := rc.run(saslStartCmd(f))
		fin, err := c.Step(payloadOf(r))
		if err != nil {
			t.Fatalf("attempt %d: %v", i, err)
		}
		if r := rc.run(saslContinueCmd(r.Lookup("conversationId").Int32(), fin)); codeOf(r) == 18 {
			failures.Add(1)
		}
	}
	close(stop)
	wg.Wait()
	if failures.Load() != 1000 || witnessErr != nil {
		t.Errorf("%d of 1000 failed logins got code 18; the other client saw %v", failures.Load(), witnessErr)
	}
	// And a correct login still works afterwards.
	if err := connectGo(t, s.Admin(t, "", "")).Ping(t.Context(), nil); err != nil {
		t.Errorf("a good login after the failures: %v", err)
	}
}

func payloadOf(r bson.Raw) string {
	_, data, _ := r.Lookup("payload").BinaryOK()
	return string(data)
}
