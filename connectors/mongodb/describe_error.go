package mongodb

import (
	"errors"
	"strings"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"
)

// describeErr words a failure of the whole batch for errorMsg: what a user can act on first, the
// driver's detail after it. A deployment that cannot be reached says so with each server's
// last error ("127.0.0.1:27017: dial tcp 127.0.0.1:27017: connect: connection refused")
// rather than the driver's dump of its topology; a connection lost during a write says so.
// Nothing here adds a credential: the driver's messages name hosts, never the password, and
// connError scrubs the password besides.
func describeErr(err error) string {
	var sel topology.ServerSelectionError
	if errors.As(err, &sel) {
		var servers []string
		for _, s := range sel.Desc.Servers {
			if s.LastError != nil {
				servers = append(servers, s.LastError.Error())
			}
		}
		if len(servers) == 0 && sel.Wrapped != nil {
			servers = append(servers, sel.Wrapped.Error())
		}
		return "the deployment cannot be reached (no server could be selected): " + strings.Join(servers, "; ")
	}
	if mongo.IsNetworkError(err) {
		return "the connection to the deployment failed: " + err.Error()
	}
	return err.Error()
}
