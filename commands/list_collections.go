package commands

import "context"

// listCollections answers with an empty, already exhausted cursor, so mongosh's completion and
// `show collections` find nothing rather than an error.
func listCollections(_ context.Context, call *Call, r *Reply) error {
	r.Doc("cursor")
	r.Int64("id", 0)
	r.String("ns", call.DB+".$cmd.listCollections")
	r.Array("firstBatch")
	r.EndDoc()
	r.EndDoc()
	return nil
}
