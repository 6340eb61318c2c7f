package commands

import (
	"context"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/auth"
	"github.com/spi-streams/spi/wire"
)

// Wire versions spid reports: 21 is MongoDB 7.0, inside every current driver's range.
const (
	minWireVersion = 0
	maxWireVersion = 21
)

// logicalSessionTimeoutMinutes is what a standalone mongod reports by default
// (localLogicalSessionTimeoutMinutes). Reporting it tells drivers sessions are supported (Driver
// Sessions specification), so they attach lsid to every command and allow startSession().
const logicalSessionTimeoutMinutes = 30

// hello serves hello, isMaster and ismaster on any database, as a standalone mongod answers
// them. The reply deliberately omits topologyVersion (it would switch drivers to awaitable
// hello, which spid does not serve). helloOk: true is echoed only to a client that sent it
// (Server Discovery and Monitoring specification, "helloOk").
func hello(_ context.Context, call *Call, r *Reply) error {
	if v, err := call.Body.LookupErr("compression"); err == nil {
		if v.Type != bson.TypeArray {
			return Errorf(CodeTypeMismatch, "hello.compression must be an array of strings, not %s", typeName(v.Type))
		}
		vals, _ := v.Array().Values()
		names := make([]string, 0, len(vals))
		for _, e := range vals {
			s, ok := e.StringValueOK()
			if !ok {
				return Errorf(CodeTypeMismatch, "hello.compression must be an array of strings, found %s", typeName(e.Type))
			}
			names = append(names, s)
		}
		call.Conn.SetCompressors(wire.Negotiate(names))
	}
	if v, err := call.Body.LookupErr("helloOk"); err == nil && truthy(v) {
		r.Bool("helloOk", true)
	}
	if call.Name == "hello" {
		r.Bool("isWritablePrimary", true)
	} else {
		r.Bool("ismaster", true)
	}
	r.Int32("maxBsonObjectSize", wire.MaxBSONObjectSize)
	r.Int32("maxMessageSizeBytes", wire.MaxMessageSize)
	r.Int32("maxWriteBatchSize", 100000)
	r.Time("localTime", time.Now())
	r.Int32("connectionId", int32(call.Conn.ID()))
	r.Int32("minWireVersion", minWireVersion)
	r.Int32("maxWireVersion", maxWireVersion)
	r.Int32("logicalSessionTimeoutMinutes", logicalSessionTimeoutMinutes)
	r.Bool("readOnly", false)
	if names := call.Conn.Compressors().Names(); len(names) > 0 {
		r.Strings("compression", names)
	}
	if v, err := call.Body.LookupErr("saslSupportedMechs"); err == nil {
		if name, ok := v.StringValueOK(); ok {
			r.Strings("saslSupportedMechs", call.Server.supportedMechs(name))
		}
	}
	if v, err := call.Body.LookupErr("speculativeAuthenticate"); err == nil && v.Type == bson.TypeEmbeddedDocument {
		call.Server.speculate(call, v.Document(), r)
	}
	// Drivers connecting in load-balanced mode (the Java driver's default for workspace hosts)
	// require a serviceId; every connection to this process reaches the same service.
	if v, err := call.Body.LookupErr("loadBalanced"); err == nil {
		if lb, _ := v.BooleanOK(); lb {
			r.ObjectID("serviceId", serviceID)
		}
	}
	return nil
}

// truthy is mongod's BSONElement::trueValue for the types a flag arrives as.
func truthy(v bson.RawValue) bool {
	if b, ok := v.BooleanOK(); ok {
		return b
	}
	if f, ok := v.AsFloat64OK(); ok {
		return f != 0
	}
	return false
}

// supportedMechs answers hello.saslSupportedMechs ("<db>.<user>"). An unknown user gets both
// SCRAM mechanisms, as a real one would, so the reply does not reveal which users exist.
func (d *Dispatcher) supportedMechs(qualified string) []string {
	db, name, ok := strings.Cut(qualified, ".")
	if ok {
		if u, found := d.loadUser(db, name); found {
			if m := mechanisms(u); len(m) > 0 {
				return m
			}
		}
	}
	return []string{auth.MechSHA1, auth.MechSHA256}
}

// speculate runs the first authentication step carried inside hello. On success its reply goes
// in hello's speculativeAuthenticate; on failure the field is left out and the driver
// authenticates explicitly, which then reports the error.
func (d *Dispatcher) speculate(call *Call, doc bson.Raw, r *Reply) {
	first, err := doc.IndexErr(0)
	if err != nil {
		return
	}
	switch first.Key() {
	case "saslStart":
		db, _ := doc.Lookup("db").StringValueOK()
		if db == "" {
			db = "admin"
		}
		sub := startReply(nil)
		if e := d.startSASL(call, doc, db, sub); e != nil {
			return
		}
		r.Document("speculativeAuthenticate", sub.end())
	case "authenticate":
		user, _ := doc.Lookup("user").StringValueOK()
		if mech, _ := doc.Lookup("mechanism").StringValueOK(); mech != auth.MechX509 {
			return
		}
		subject, e := d.x509Login(call, user)
		if e != nil {
			return
		}
		r.Doc("speculativeAuthenticate")
		r.String("dbname", "$external")
		r.String("user", subject)
		r.EndDoc()
	}
}

// serviceID identifies this spid process to load-balanced clients.
var serviceID = bson.NewObjectID()
