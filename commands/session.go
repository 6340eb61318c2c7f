package commands

import (
	"crypto/sha256"
	"crypto/subtle"
	"time"

	"github.com/spi-streams/spi/audit"
	"github.com/spi-streams/spi/auth"
	"github.com/spi-streams/spi/authz"
	"github.com/spi-streams/spi/store"
	"github.com/spi-streams/spi/wire"
)

// session is the command layer's state for one connection.
type session struct {
	user *principal
	// conv is the SASL conversation in progress, if any, on database convDB.
	conv   *auth.Conversation
	convDB string
	convID int32
	nextID int32
	// convOutOfScope is set when the conversation's user exists but its scopes exclude this
	// workspace: the client sees the generic failure, the audit record the true reason.
	convOutOfScope bool
	// skipEmpty is the client's skipEmptyExchange option; without it, a verified conversation
	// waits for one more, empty, saslContinue before it is done.
	skipEmpty bool
	// body is reused for each command's Body without its generic arguments.
	body []byte
}

// principal is who a connection authenticated as. The fingerprint of the credential used lets a
// password change end the session at its next command.
type principal struct {
	db, name, mech string
	fingerprint    [32]byte
	// cached is the user as of store generation gen; any control-plane write invalidates it.
	cached store.User
	gen    uint64
	valid  bool
}

func sessionOf(c *wire.Conn) *session {
	if s, ok := c.Value().(*session); ok {
		return s
	}
	s := &session{}
	c.SetValue(s)
	return s
}

// workspaceOf is the workspace a connection reached: its listener's tag.
func workspaceOf(c *wire.Conn) string {
	if t := c.Tag(); t != "" {
		return t
	}
	return "default"
}

func fingerprint(u store.User, mech string) [32]byte {
	switch mech {
	case auth.MechSHA1:
		if u.SCRAMSHA1 != nil {
			return sha256.Sum256(u.SCRAMSHA1.StoredKey)
		}
	case auth.MechSHA256:
		if u.SCRAMSHA256 != nil {
			return sha256.Sum256(u.SCRAMSHA256.StoredKey)
		}
	}
	return sha256.Sum256([]byte(mech + "\x00" + u.Database + "\x00" + u.Username))
}

// loadUser reads a user from the store.
func (d *Dispatcher) loadUser(db, name string) (store.User, bool) {
	if d.opts.Store == nil {
		return store.User{}, false
	}
	var u store.User
	err := d.opts.Store.View(func(tx *store.Txn) (err error) { u, err = tx.User(db, name); return err })
	return u, err == nil
}

// roleSource reads custom roles for authorization.
func (d *Dispatcher) roleSource() authz.RoleSource {
	return func(name string) (store.Role, bool) {
		var r store.Role
		err := d.opts.Store.View(func(tx *store.Txn) (err error) { r, err = tx.Role(name); return err })
		return r, err == nil
	}
}

// current returns the connection's user as the store has it now. Control-plane changes apply
// here: a deleted user or a changed password ends the session, a changed scope or role applies
// to this very command.
func (d *Dispatcher) current(call *Call) (store.User, *Error) {
	s := sessionOf(call.Conn)
	if s.user == nil {
		return store.User{}, Errorf(CodeUnauthorized, "command %s requires authentication", call.Name)
	}
	gen := d.opts.Store.Generation()
	if s.user.valid && s.user.gen == gen {
		return s.user.cached, nil
	}
	u, ok := d.loadUser(s.user.db, s.user.name)
	if ok {
		fp := fingerprint(u, s.user.mech)
		ok = subtle.ConstantTimeCompare(fp[:], s.user.fingerprint[:]) == 1
	}
	if !ok {
		d.audit(call, auditRecord{Event: "sessionEnded", User: s.user.name, DB: s.user.db,
			Reason: "the user was deleted or its credentials changed"})
		s.user = nil
		call.Conn.SetAuthenticated(false)
		return store.User{}, Errorf(CodeUnauthorized, "command %s requires authentication: the user's credentials changed or the user was removed; authenticate again", call.Name)
	}
	s.user.cached, s.user.gen, s.user.valid = u, gen, true
	return u, nil
}

// authorize runs the one authorization check for a command that needs privileges.
func (d *Dispatcher) authorize(call *Call, cmd *Command) *Error {
	if cmd.Anonymous {
		return nil
	}
	u, e := d.current(call)
	if e != nil {
		return e
	}
	ws := workspaceOf(call.Conn)
	if !authz.InScope(u, ws) {
		d.audit(call, auditRecord{Event: "authzFailure", User: u.Username, DB: u.Database, Command: call.Name,
			Reason: "workspace not in the user's scopes"})
		return Errorf(CodeUnauthorized, "not authorized: user %s may not use workspace %s", u.Username, ws)
	}
	if err := authz.Check(u, d.roleSource(), ws, cmd.Actions); err != nil {
		d.audit(call, auditRecord{Event: "authzFailure", User: u.Username, DB: u.Database, Command: call.Name, Reason: err.Error()})
		return Errorf(CodeUnauthorized, "%s", err.Error())
	}
	return nil
}

// Codes of a second authentication on one connection (mongod's authorization_session_impl.cpp).
const (
	CodeAuthenticatedOnce       Code = 5626701
	CodeAuthenticatedOnceStrict Code = 5626703
)

// login marks the connection authenticated and records it. As on mongod 6.0 and later, a
// connection authenticates once: the same user may authenticate again (except under
// apiStrict), another user is refused and the connection keeps its identity. Both outcomes are
// audited.
func (d *Dispatcher) login(call *Call, u store.User, mech string) *Error {
	s := sessionOf(call.Conn)
	reason := ""
	if p := s.user; p != nil {
		if p.db != u.Database || p.name != u.Username {
			d.audit(call, auditRecord{Event: "authenticate", User: u.Username, DB: u.Database, Mechanism: mech, Outcome: "failure",
				Reason: "the connection is already authenticated as " + p.name + "@" + p.db + "; a connection authenticates once"})
			return Errorf(CodeAuthenticatedOnce, "Each client connection may only be authenticated once. Previously authenticated as: %s@%s", p.name, p.db)
		}
		if call.Generic.APIStrict {
			d.audit(call, auditRecord{Event: "authenticate", User: u.Username, DB: u.Database, Mechanism: mech, Outcome: "failure",
				Reason: "re-authentication with apiStrict: true"})
			return Errorf(CodeAuthenticatedOnceStrict, "Each client connection may only be authenticated once")
		}
		reason = "re-authentication as the same user"
	}
	s.user = &principal{db: u.Database, name: u.Username, mech: mech, fingerprint: fingerprint(u, mech)}
	call.Conn.SetAuthenticated(true)
	d.audit(call, auditRecord{Event: "authenticate", User: u.Username, DB: u.Database, Mechanism: mech, Outcome: "success", Reason: reason})
	return nil
}

// loginFailed records a failed authentication; the client only ever sees ErrAuthFailed.
func (d *Dispatcher) loginFailed(call *Call, user, db, mech, reason string) *Error {
	switch mech {
	case auth.MechSHA1, auth.MechSHA256, "MONGODB-X509":
		d.opts.Metrics.AuthFailure(workspaceOf(call.Conn), mech)
	default:
		d.opts.Metrics.AuthFailure(workspaceOf(call.Conn), "other")
	}
	d.authFailure(call, auditRecord{Event: "authenticate", User: user, DB: db, Mechanism: mech, Outcome: "failure", Reason: reason}, true)
	return &Error{Code: CodeAuthenticationFailed, Msg: auth.ErrAuthFailed.Error()}
}

// authFailure audits a failed authentication step; scored ones count toward the login
// throttle. A throttled address's failures are sampled (throttle.go): the record written
// carries the number of failures it stands for.
func (d *Dispatcher) authFailure(call *Call, r auditRecord, scored bool) {
	addr := throttleAddr(call.Conn.RemoteAddr())
	user := ""
	if r.User != "" {
		user = r.DB + "." + r.User
	}
	write, n := d.throttle.failed(addr, user, scored, time.Now())
	if !write {
		return
	}
	if n > 0 {
		r.Count = n
		r.Reason = "repeated failures from this address, sampled; last: " + r.Reason
	}
	d.audit(call, r)
}

// throttleLogin makes an authentication attempt wait as the login throttle says, or refuses
// it when its address has failed too often (throttle.go). byAddr says whether to look at the
// address (once per attempt); user, if not empty, is looked at too.
func (d *Dispatcher) throttleLogin(call *Call, byAddr bool, user, db, mech string) *Error {
	key, addr := "", ""
	if user != "" {
		key = db + "." + user
	}
	if byAddr {
		addr = throttleAddr(call.Conn.RemoteAddr())
	}
	wait, refused, keys := d.throttle.wait(addr, key, time.Now())
	ws := workspaceOf(call.Conn)
	for _, k := range keys {
		d.opts.Metrics.LoginThrottledEvent(ws, k)
	}
	if refused {
		d.authFailure(call, auditRecord{Event: "authenticate", User: user, DB: db, Mechanism: mech, Outcome: "failure",
			Reason: "throttled: too many failed attempts from this address"}, false)
		return &Error{Code: CodeAuthenticationFailed, Msg: "Authentication failed: too many failed attempts from this address; retry in a few seconds"}
	}
	if wait > 0 {
		time.Sleep(wait)
	}
	return nil
}

// auditRecord is one line of the data-plane audit log.
type auditRecord struct {
	Time      time.Time `json:"time"`
	Event     string    `json:"event"`
	User      string    `json:"user,omitempty"`
	DB        string    `json:"db,omitempty"`
	Mechanism string    `json:"mechanism,omitempty"`
	Command   string    `json:"command,omitempty"`
	Processor string    `json:"processor,omitempty"`
	Workspace string    `json:"workspace"`
	Remote    string    `json:"remote"`
	ConnID    int64     `json:"connectionId"`
	Outcome   string    `json:"outcome,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	// Count is set on a sampled record: the number of failures it stands for.
	Count int `json:"count,omitempty"`
}

func (d *Dispatcher) audit(call *Call, r auditRecord) {
	r.Time = time.Now().UTC()
	r.Workspace = workspaceOf(call.Conn)
	r.Remote = call.Conn.RemoteAddr().String()
	r.ConnID = call.Conn.ID()
	// Client-supplied fields are cut so that one message cannot write more than a few hundred
	// bytes to the audit log.
	r.User, r.DB = audit.Clip(r.User, audit.FieldMax), audit.Clip(r.DB, audit.FieldMax)
	r.Mechanism, r.Command = audit.Clip(r.Mechanism, 64), audit.Clip(r.Command, 64)
	d.opts.Audit.Record(r)
}
