package commands

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/auth"
	"github.com/spi-streams/spi/authz"
	"github.com/spi-streams/spi/store"
	"github.com/spi-streams/spi/wire"
)

// CodeMechanismUnavailable is returned for authentication mechanisms spid does not offer.
const CodeMechanismUnavailable Code = 334

func init() { codeNames[CodeMechanismUnavailable] = "MechanismUnavailable" }

// payloadOf reads a SASL payload, sent as binary data (drivers) or a string (some shells).
func payloadOf(doc bson.Raw) ([]byte, bool) {
	v, err := doc.LookupErr("payload")
	if err != nil {
		return nil, false
	}
	if _, data, ok := v.BinaryOK(); ok {
		return data, true
	}
	if s, ok := v.StringValueOK(); ok {
		return []byte(s), true
	}
	return nil, false
}

// mechanisms lists the SCRAM mechanisms a user has credentials for.
func mechanisms(u store.User) []string {
	var out []string
	if u.SCRAMSHA1 != nil {
		out = append(out, auth.MechSHA1)
	}
	if u.SCRAMSHA256 != nil {
		out = append(out, auth.MechSHA256)
	}
	return out
}

// startSASL begins a SCRAM conversation from a saslStart document (the command itself, or
// hello's speculativeAuthenticate) and appends the reply fields.
func (d *Dispatcher) startSASL(call *Call, doc bson.Raw, db string, r *Reply) *Error {
	s := sessionOf(call.Conn)
	s.conv = nil
	mech, _ := doc.Lookup("mechanism").StringValueOK()
	if e := d.throttleLogin(call, true, "", db, mech); e != nil {
		return e
	}
	if mech != auth.MechSHA1 && mech != auth.MechSHA256 {
		d.authFailure(call, auditRecord{Event: "authenticate", DB: db, Mechanism: mech, Outcome: "failure", Reason: "unsupported mechanism"}, true)
		return Errorf(CodeMechanismUnavailable, "Received authentication for mechanism %s which is not enabled; use SCRAM-SHA-256, SCRAM-SHA-1 or MONGODB-X509", wire.Clip(mech))
	}
	payload, ok := payloadOf(doc)
	if !ok {
		return d.loginFailed(call, "", db, mech, "saslStart without a payload")
	}
	ws := workspaceOf(call.Conn)
	lacksMech, outOfScope := false, false
	conv, err := auth.NewConversation(mech, func(username string) *store.ScramCredential {
		u, ok := d.loadUser(db, username)
		// A user outside its scopes fails here exactly like an unknown user; only the audit
		// record tells them apart.
		if !ok {
			return nil
		}
		if !authz.InScope(u, ws) {
			outOfScope = true
			return nil
		}
		cred := u.SCRAMSHA256
		if mech == auth.MechSHA1 {
			cred = u.SCRAMSHA1
		}
		lacksMech = cred == nil
		return cred
	})
	if err != nil {
		return d.loginFailed(call, "", db, mech, err.Error())
	}
	out, err := conv.Step(payload)
	if e := d.throttleLogin(call, false, conv.Username(), db, mech); e != nil {
		return e
	}
	if lacksMech {
		// As mongod does: the driver then picks a mechanism from saslSupportedMechs.
		d.authFailure(call, auditRecord{Event: "authenticate", User: conv.Username(), DB: db, Mechanism: mech, Outcome: "failure",
			Reason: "the user has no credentials for this mechanism"}, false)
		return Errorf(CodeMechanismUnavailable, "Unable to use %s based authentication for user without any %s credentials registered", mech, mech)
	}
	if err != nil {
		return d.loginFailed(call, conv.Username(), db, mech, "malformed client-first message")
	}
	s.nextID++
	s.conv, s.convDB, s.convID = conv, db, s.nextID
	s.convOutOfScope = outOfScope
	s.skipEmpty = false
	if o, err := doc.LookupErr("options"); err == nil && o.Type == bson.TypeEmbeddedDocument {
		s.skipEmpty, _ = o.Document().Lookup("skipEmptyExchange").BooleanOK()
	}
	r.Int32("conversationId", s.convID)
	r.Bool("done", false)
	r.Binary("payload", out)
	return nil
}

// saslStart begins SCRAM-SHA-256 or SCRAM-SHA-1 authentication.
func saslStart(_ context.Context, call *Call, r *Reply) error {
	if e := call.Server.startSASL(call, call.Body, call.DB, r); e != nil {
		return e
	}
	return nil
}

// saslContinue carries a SCRAM conversation forward: the client's proof, then (without
// skipEmptyExchange) an empty message that ends it.
func saslContinue(_ context.Context, call *Call, r *Reply) error {
	d := call.Server
	s := sessionOf(call.Conn)
	conv := s.conv
	if conv == nil {
		return d.loginFailed(call, "", call.DB, "", "saslContinue without a conversation in progress")
	}
	id, ok := call.Body.Lookup("conversationId").AsInt64OK()
	if !ok || id != int64(s.convID) {
		s.conv = nil
		return d.loginFailed(call, conv.Username(), s.convDB, conv.Mechanism(), "wrong conversationId")
	}
	payload, ok := payloadOf(call.Body)
	if !ok {
		s.conv = nil
		return d.loginFailed(call, conv.Username(), s.convDB, conv.Mechanism(), "saslContinue without a payload")
	}
	if conv.Done() {
		// The proof was verified by the previous step; this is the final empty exchange.
		s.conv = nil
		if len(payload) != 0 || !conv.Valid() {
			return d.loginFailed(call, conv.Username(), s.convDB, conv.Mechanism(), "unexpected message after the conversation ended")
		}
		r.Int32("conversationId", s.convID)
		r.Bool("done", true)
		r.Binary("payload", nil)
		return nil
	}
	out, err := conv.Step(payload)
	if err != nil || !conv.Valid() {
		s.conv = nil
		reason := "wrong password or unknown user"
		switch {
		case err != nil && conv.Username() == "":
			reason = "malformed client-final message"
		case s.convOutOfScope:
			reason = "workspace outside the user's scopes"
		}
		return d.loginFailed(call, conv.Username(), s.convDB, conv.Mechanism(), reason)
	}
	u, ok := d.loadUser(s.convDB, conv.Username())
	if !ok {
		s.conv = nil
		return d.loginFailed(call, conv.Username(), s.convDB, conv.Mechanism(), "the user was removed during authentication")
	}
	if e := d.login(call, u, conv.Mechanism()); e != nil {
		s.conv = nil
		return e
	}
	if s.skipEmpty {
		s.conv = nil
	}
	r.Int32("conversationId", s.convID)
	r.Bool("done", s.skipEmpty)
	r.Binary("payload", out)
	return nil
}

// x509Login authenticates the connection by its verified client certificate. user, if given,
// must be the certificate's subject.
func (d *Dispatcher) x509Login(call *Call, user string) (string, *Error) {
	st := call.Conn.TLSState()
	if st == nil || len(st.VerifiedChains) == 0 || len(st.PeerCertificates) == 0 {
		return "", d.loginFailed(call, user, "$external", auth.MechX509, "no verified client certificate")
	}
	subject, err := auth.SubjectName(st.PeerCertificates[0])
	if err != nil {
		return "", d.loginFailed(call, user, "$external", auth.MechX509, "the certificate's subject is not a valid Name: "+err.Error())
	}
	if user != "" && user != subject {
		return "", d.loginFailed(call, user, "$external", auth.MechX509, "user does not match the certificate subject")
	}
	u, ok := d.loadUser("$external", subject)
	if !ok {
		return "", d.loginFailed(call, subject, "$external", auth.MechX509, "no such user")
	}
	if !authz.InScope(u, workspaceOf(call.Conn)) {
		return "", d.loginFailed(call, subject, "$external", auth.MechX509, "workspace outside the user's scopes")
	}
	if e := d.login(call, u, auth.MechX509); e != nil {
		return "", e
	}
	return subject, nil
}

// authenticate is MONGODB-X509 authentication on $external.
func authenticate(_ context.Context, call *Call, r *Reply) error {
	d := call.Server
	mech, _ := call.Body.Lookup("mechanism").StringValueOK()
	user, _ := call.Body.Lookup("user").StringValueOK()
	if e := d.throttleLogin(call, true, user, "$external", mech); e != nil {
		return e
	}
	if mech != auth.MechX509 {
		d.authFailure(call, auditRecord{Event: "authenticate", DB: call.DB, Mechanism: mech, Outcome: "failure", Reason: "unsupported mechanism"}, true)
		return Errorf(CodeMechanismUnavailable, "Received authentication for mechanism %s which is not enabled; use SCRAM-SHA-256, SCRAM-SHA-1 or MONGODB-X509", wire.Clip(mech))
	}
	if call.DB != "$external" {
		return d.loginFailed(call, "", call.DB, mech, "MONGODB-X509 must authenticate on $external")
	}
	subject, e := d.x509Login(call, user)
	if e != nil {
		return e
	}
	r.String("dbname", "$external")
	r.String("user", subject)
	return nil
}

// logout forgets the connection's authentication.
func logout(_ context.Context, call *Call, _ *Reply) error {
	s := sessionOf(call.Conn)
	if s.user != nil {
		call.Server.audit(call, auditRecord{Event: "logout", User: s.user.name, DB: s.user.db})
	}
	s.user, s.conv = nil, nil
	call.Conn.SetAuthenticated(false)
	return nil
}
