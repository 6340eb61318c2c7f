package commands

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/store"
)

// listStreamConnections lists the workspace's connection registry as sp.listConnections()
// shows it: names and types, never credentials. The filter may be null or match fields by
// equality ({name: ...}, {type: ...}); the full query language arrives with the pipeline engine.
func listStreamConnections(_ context.Context, call *Call, r *Reply) error {
	want := map[string]string{}
	if v, err := call.Body.LookupErr("filter"); err == nil && v.Type != bson.TypeNull {
		doc, ok := v.DocumentOK()
		if !ok {
			return Errorf(CodeTypeMismatch, "listStreamConnections.filter must be an object or null, not %s", typeName(v.Type))
		}
		elems, _ := doc.Elements()
		for _, e := range elems {
			s, ok := e.Value().StringValueOK()
			if (e.Key() != "name" && e.Key() != "type") || !ok {
				return Errorf(CodeBadValue, "listStreamConnections.filter.%s: only equality on name and type is supported", e.Key())
			}
			want[e.Key()] = s
		}
	}
	var conns []store.Connection
	if err := call.Server.opts.Store.View(func(tx *store.Txn) (err error) {
		conns, err = tx.Connections(workspaceOf(call.Conn))
		return err
	}); err != nil {
		return err
	}
	r.Array("connections")
	i := 0
	for _, c := range conns {
		if (want["name"] != "" && want["name"] != c.Name) || (want["type"] != "" && want["type"] != c.Type) {
			continue
		}
		r.Doc(arrayKey(i))
		r.String("name", c.Name)
		r.String("type", c.Type)
		r.EndDoc()
		i++
	}
	r.EndDoc()
	return nil
}
