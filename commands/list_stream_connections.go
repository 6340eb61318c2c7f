package commands

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/spi-streams/spi/store"
)

// listStreamConnections lists the workspace's connection registry as sp.listConnections()
// shows it: {ok: 1, connections: [{name, type, <public fields>}]}. Public fields are where a
// connection points and how, never a credential: Kafka's bootstrapServers, security.protocol and
// authentication.mechanism; a Cluster's clusterName and dbRoleToExecute; an Https url. The
// filter is the full query language over these documents; null or absent lists everything.
func listStreamConnections(_ context.Context, call *Call, r *Reply) error {
	matcher, err := filterArg(call)
	if err != nil {
		return err
	}
	var conns []store.Connection
	if err := call.Server.opts.Store.View(func(tx *store.Txn) (err error) {
		conns, err = tx.Connections(workspaceOf(call.Conn))
		return err
	}); err != nil {
		return err
	}
	docs := make([]bson.Raw, len(conns))
	for i, c := range conns {
		docs[i] = connectionDoc(c)
	}
	return appendMatching(call, r, "connections", docs, matcher)
}

// connectionDoc is a connection's public view. Secret fields (passwords, keys, header values)
// are not read here at all.
func connectionDoc(c store.Connection) bson.Raw {
	b := bsoncore.NewDocumentBuilder().AppendString("name", c.Name).AppendString("type", c.Type)
	switch {
	case c.Kafka != nil:
		b.AppendString("bootstrapServers", c.Kafka.BootstrapServers)
		if c.Kafka.Security.Protocol != "" {
			b.AppendDocument("security", bsoncore.NewDocumentBuilder().AppendString("protocol", c.Kafka.Security.Protocol).Build())
		}
		if c.Kafka.Auth.Mechanism != "" {
			b.AppendDocument("authentication", bsoncore.NewDocumentBuilder().AppendString("mechanism", c.Kafka.Auth.Mechanism).Build())
		}
	case c.Cluster != nil:
		if c.Cluster.ClusterName != "" {
			b.AppendString("clusterName", c.Cluster.ClusterName)
		}
		role := c.Cluster.DBRoleToExecute
		if role.Role != "" {
			b.AppendDocument("dbRoleToExecute", bsoncore.NewDocumentBuilder().AppendString("role", role.Role).AppendString("type", role.Type).Build())
		}
	case c.HTTPS != nil:
		b.AppendString("url", c.HTTPS.URL)
	}
	return bson.Raw(b.Build())
}
