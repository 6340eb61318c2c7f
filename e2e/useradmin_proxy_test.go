package e2e

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// userAdminProxy stands in front of embedded FerretDB and answers MongoDB's user management
// commands (usersInfo, createUser, updateUser, rolesInfo, createRole, updateRole) the way the
// MongoDB manual documents them, storing users and roles in FerretDB's admin.system.users and
// admin.system.roles collections; every other message goes to FerretDB unchanged.
//
// It is a fake, and the tests that use it say so: FerretDB 1.24 embedded has no user management
// (those commands are unknown: "no such command: 'createUser'"), and with its experimental new
// authentication (a separate binary) createUser and updateUser refuse any role
// ("NotImplemented"). Nothing else answers them here (no genuine mongod): the proxy shows what
// spid sends and what it does with mongod's documented replies, and FerretDB stays the peer of
// every login and write.
//
// It also records, per client connection, the mechanism and user of each saslStart and the name
// of each command, so a test sees which identity sent which command; and it plays the
// deployment's authorization of the user management commands: only a connection that logged in
// with PLAIN as admin may run them (else Unauthorized, 13).
type userAdminProxy struct {
	Addr  string
	admin string
	fc    *mongo.Client
	l     net.Listener

	mu    sync.Mutex
	conns []*proxyConn
	pwds  map[string][]string // user → every password createUser/updateUser set, in order
	open  map[net.Conn]bool
	reqID atomic.Int32
	wg    sync.WaitGroup
}

// proxyConn is what the proxy saw on one client connection.
type proxyConn struct {
	Mech, User string   // the last saslStart's mechanism and user
	Commands   []string // command names, in order
}

func startUserAdminProxy(t *testing.T, ferretURI string, fc *mongo.Client, adminUser string) *userAdminProxy {
	t.Helper()
	target := strings.TrimSuffix(strings.TrimPrefix(ferretURI, "mongodb://"), "/")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &userAdminProxy{Addr: l.Addr().String(), admin: adminUser, fc: fc, l: l, pwds: map[string][]string{}, open: map[net.Conn]bool{}}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.serve(c, target)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		p.mu.Lock()
		for c := range p.open {
			_ = c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

// Conns returns a copy of what the proxy saw on each connection.
func (p *userAdminProxy) Conns() []proxyConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]proxyConn, len(p.conns))
	for i, c := range p.conns {
		out[i] = proxyConn{Mech: c.Mech, User: c.User, Commands: slices.Clone(c.Commands)}
	}
	return out
}

// Passwords returns every password the user management commands set for user.
func (p *userAdminProxy) Passwords(user string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.pwds[user])
}

func (p *userAdminProxy) serve(client net.Conn, target string) {
	server, err := net.Dial("tcp", target)
	if err != nil {
		_ = client.Close()
		return
	}
	pc := &proxyConn{}
	p.mu.Lock()
	p.conns = append(p.conns, pc)
	p.open[client], p.open[server] = true, true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.open, client)
		delete(p.open, server)
		p.mu.Unlock()
	}()
	var wmu sync.Mutex // writes to client: relayed replies and the proxy's own
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			m, err := readWireMsg(server)
			if err != nil {
				_ = client.Close()
				return
			}
			wmu.Lock()
			_, err = client.Write(m)
			wmu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	defer func() { _ = server.Close(); _ = client.Close(); <-done }()
	for {
		m, err := readWireMsg(client)
		if err != nil {
			return
		}
		if cmd := opMsgBody(m); cmd != nil {
			if reply := p.command(pc, cmd); reply != nil {
				wmu.Lock()
				_, err = client.Write(p.opMsgReply(int32(binary.LittleEndian.Uint32(m[4:8])), reply))
				wmu.Unlock()
				if err != nil {
					return
				}
				continue
			}
		}
		if _, err := server.Write(m); err != nil {
			return
		}
	}
}

// readWireMsg reads one wire protocol message (MongoDB manual, "Wire Protocol": a 16-byte
// header whose first int32 is the message length).
func readWireMsg(r io.Reader) ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n := int(binary.LittleEndian.Uint32(h[:]))
	if n < 16 || n > 64<<20 {
		return nil, errors.New("bad message length")
	}
	m := make([]byte, n)
	copy(m, h[:])
	_, err := io.ReadFull(r, m[4:])
	return m, err
}

// opMsgBody returns the body (kind 0 section) of an OP_MSG (opcode 2013), nil for other
// messages.
func opMsgBody(m []byte) bson.Raw {
	if len(m) < 21 || binary.LittleEndian.Uint32(m[12:16]) != 2013 {
		return nil
	}
	for i := 20; i < len(m); {
		kind := m[i]
		if i+5 > len(m) {
			return nil
		}
		n := int(binary.LittleEndian.Uint32(m[i+1 : i+5]))
		if kind == 0 {
			if i+1+n > len(m) {
				return nil
			}
			return bson.Raw(m[i+1 : i+1+n])
		}
		i += 1 + n
	}
	return nil
}

func (p *userAdminProxy) opMsgReply(responseTo int32, doc []byte) []byte {
	b := make([]byte, 21, 21+len(doc))
	binary.LittleEndian.PutUint32(b[0:], uint32(21+len(doc)))
	binary.LittleEndian.PutUint32(b[4:], uint32(p.reqID.Add(1)))
	binary.LittleEndian.PutUint32(b[8:], uint32(responseTo))
	binary.LittleEndian.PutUint32(b[12:], 2013)
	return append(b, doc...)
}

// command records cmd and returns the proxy's reply to it, or nil to forward it.
func (p *userAdminProxy) command(pc *proxyConn, cmd bson.Raw) []byte {
	elems, err := cmd.Elements()
	if err != nil || len(elems) == 0 {
		return nil
	}
	name := elems[0].Key()
	p.mu.Lock()
	pc.Commands = append(pc.Commands, name)
	if name == "saslStart" {
		pc.Mech, _ = cmd.Lookup("mechanism").StringValueOK()
		_, payload, _ := cmd.Lookup("payload").BinaryOK()
		pc.User = saslUser(pc.Mech, payload)
	}
	mech, user := pc.Mech, pc.User
	p.mu.Unlock()
	switch name {
	case "usersInfo", "createUser", "updateUser", "rolesInfo", "createRole", "updateRole":
	default:
		return nil
	}
	if mech != "PLAIN" || user != p.admin {
		return mongoError(13, "Unauthorized", "not authorized on admin to execute command { "+name+" }")
	}
	reply, err := p.userAdmin(name, cmd)
	if err != nil {
		var ce mongo.CommandError
		if errors.As(err, &ce) {
			return mongoError(ce.Code, ce.Name, ce.Message)
		}
		return mongoError(1, "InternalError", err.Error())
	}
	b, _ := bson.Marshal(append(reply, bson.E{Key: "ok", Value: 1.0}))
	return b
}

// saslUser reads the user of a SASL first message: PLAIN's "authzid\x00user\x00password" (RFC
// 4616) or SCRAM's "n,,n=user,r=nonce" (RFC 5802).
func saslUser(mech string, payload []byte) string {
	if mech == "PLAIN" {
		if parts := bytes.Split(payload, []byte{0}); len(parts) == 3 {
			return string(parts[1])
		}
		return ""
	}
	for _, attr := range strings.Split(string(payload), ",") {
		if u, ok := strings.CutPrefix(attr, "n="); ok {
			return u
		}
	}
	return ""
}

func mongoError(code int32, name, msg string) []byte {
	b, _ := bson.Marshal(bson.D{{Key: "ok", Value: 0.0}, {Key: "errmsg", Value: msg}, {Key: "code", Value: code}, {Key: "codeName", Value: name}})
	return b
}

// builtinRoles are mongod's built-in roles on admin that createUser accepts here (MongoDB
// manual, "Built-In Roles"); atlasAdmin is Atlas's and is not among them.
var builtinRoles = []string{"read", "readWrite", "dbAdmin", "userAdmin", "dbOwner", "readAnyDatabase", "readWriteAnyDatabase",
	"userAdminAnyDatabase", "dbAdminAnyDatabase", "clusterMonitor", "clusterManager", "clusterAdmin", "backup", "restore", "root"}

func (p *userAdminProxy) userAdmin(name string, cmd bson.Raw) (bson.D, error) {
	admin := p.fc.Database("admin")
	users, roles := admin.Collection("system.users"), admin.Collection("system.roles")
	arg := cmd.Lookup(name)
	target, _ := arg.StringValueOK()
	if d, ok := arg.DocumentOK(); ok { // usersInfo {user, db} / rolesInfo {role, db}
		target, _ = d.Lookup(strings.TrimSuffix(name, "sInfo")).StringValueOK()
	}
	id := "admin." + target
	bg := context.Background()
	switch name {
	case "usersInfo", "rolesInfo":
		coll, field := users, "users"
		if name == "rolesInfo" {
			coll, field = roles, "roles"
		}
		cur, err := coll.Find(bg, bson.D{{Key: "_id", Value: id}})
		if err != nil {
			return nil, err
		}
		var docs []bson.Raw
		if err := cur.All(bg, &docs); err != nil {
			return nil, err
		}
		out := bson.A{}
		for _, d := range docs {
			var m bson.D
			_ = bson.Unmarshal(d, &m)
			m = slices.DeleteFunc(m, func(e bson.E) bool { return e.Key == "credentials" })
			out = append(out, m)
		}
		return bson.D{{Key: field, Value: out}}, nil
	case "createUser", "updateUser":
		n, _ := users.CountDocuments(bg, bson.D{{Key: "_id", Value: id}})
		if name == "createUser" && n > 0 {
			return nil, mongo.CommandError{Code: 51003, Name: "Location51003", Message: "User \"" + target + "@admin\" already exists"}
		}
		if name == "updateUser" && n == 0 {
			return nil, mongo.CommandError{Code: 11, Name: "UserNotFound", Message: "Could not find user \"" + target + "\" for db \"admin\""}
		}
		set := bson.D{{Key: "user", Value: target}, {Key: "db", Value: "admin"}}
		if v, err := cmd.LookupErr("roles"); err == nil {
			var rs []struct{ Role, DB string }
			if err := v.Unmarshal(&rs); err != nil {
				return nil, mongo.CommandError{Code: 2, Name: "BadValue", Message: "roles: " + err.Error()}
			}
			for _, r := range rs {
				if k, _ := roles.CountDocuments(bg, bson.D{{Key: "_id", Value: r.DB + "." + r.Role}}); k == 0 && (!slices.Contains(builtinRoles, r.Role) || r.DB != "admin" && strings.HasSuffix(r.Role, "AnyDatabase")) {
					return nil, mongo.CommandError{Code: 31, Name: "RoleNotFound", Message: "Could not find role: " + r.Role + "@" + r.DB}
				}
			}
			set = append(set, bson.E{Key: "roles", Value: v})
		}
		if v, err := cmd.LookupErr("mechanisms"); err == nil {
			set = append(set, bson.E{Key: "mechanisms", Value: v})
		}
		if pwd, ok := cmd.Lookup("pwd").StringValueOK(); ok {
			set = append(set, bson.E{Key: "credentials", Value: bson.D{{Key: "SCRAM-SHA-256", Value: scramSHA256(pwd)}}})
			p.mu.Lock()
			p.pwds[target] = append(p.pwds[target], pwd)
			p.mu.Unlock()
		}
		if name == "createUser" {
			_, err := users.InsertOne(bg, append(bson.D{{Key: "_id", Value: id}}, set...))
			return bson.D{}, err
		}
		_, err := users.UpdateOne(bg, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: set}})
		return bson.D{}, err
	default: // createRole, updateRole
		n, _ := roles.CountDocuments(bg, bson.D{{Key: "_id", Value: id}})
		if name == "createRole" && n > 0 {
			return nil, mongo.CommandError{Code: 51002, Name: "Location51002", Message: "Role \"" + target + "@admin\" already exists"}
		}
		if name == "updateRole" && n == 0 {
			return nil, mongo.CommandError{Code: 31, Name: "RoleNotFound", Message: "Role " + target + "@admin not found"}
		}
		set := bson.D{{Key: "role", Value: target}, {Key: "db", Value: "admin"}, {Key: "privileges", Value: cmd.Lookup("privileges")}, {Key: "roles", Value: cmd.Lookup("roles")}}
		if name == "createRole" {
			_, err := roles.InsertOne(bg, append(bson.D{{Key: "_id", Value: id}}, set...))
			return bson.D{}, err
		}
		_, err := roles.UpdateOne(bg, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: set}})
		return bson.D{}, err
	}
}

// scramSHA256 derives the SCRAM-SHA-256 credential mongod stores for a password (RFC 7677,
// RFC 5802 §3: StoredKey = H(HMAC(SaltedPassword, "Client Key")), ServerKey = HMAC(SaltedPassword,
// "Server Key"); 15000 iterations, mongod's default). The passwords here are ASCII, which
// SASLprep leaves unchanged.
func scramSHA256(pwd string) bson.D {
	salt := make([]byte, 28)
	_, _ = rand.Read(salt)
	salted, _ := pbkdf2.Key(sha256.New, pwd, salt, 15000, 32)
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	stored := sha256.Sum256(mac(salted, "Client Key"))
	b64 := base64.StdEncoding.EncodeToString
	return bson.D{{Key: "iterationCount", Value: 15000}, {Key: "salt", Value: b64(salt)}, {Key: "storedKey", Value: b64(stored[:])}, {Key: "serverKey", Value: b64(mac(salted, "Server Key"))}}
}
