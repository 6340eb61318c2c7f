package commands

import "context"

// ping answers {ok: 1}; drivers and mongosh use it to check the server is alive.
func ping(context.Context, *Call, *Reply) error { return nil }
