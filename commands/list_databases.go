package commands

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// listDatabases answers with no databases: a workspace holds stream processors, not data, and
// an empty list keeps mongosh's `show dbs` clean.
func listDatabases(_ context.Context, call *Call, r *Reply) error {
	r.Array("databases")
	r.EndDoc()
	if v, err := call.Body.LookupErr("nameOnly"); err == nil && v.Type == bson.TypeBoolean && v.Boolean() {
		return nil
	}
	r.Int64("totalSize", 0)
	r.Int64("totalSizeMb", 0)
	return nil
}
