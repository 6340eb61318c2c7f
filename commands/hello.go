package commands

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/wire"
)

// Wire versions spid reports: 21 is MongoDB 7.0, inside every current driver's range.
const (
	minWireVersion = 0
	maxWireVersion = 21
)

// hello serves hello, isMaster and ismaster on any database. The reply deliberately omits
// topologyVersion (it would switch drivers to awaitable hello) and logicalSessionTimeoutMinutes
// (it would make every command carry lsid); spid supports neither.
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
	r.Bool("helloOk", true)
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
	r.Bool("readOnly", false)
	if names := call.Conn.Compressors().Names(); len(names) > 0 {
		r.Strings("compression", names)
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

// serviceID identifies this spid process to load-balanced clients.
var serviceID = bson.NewObjectID()
