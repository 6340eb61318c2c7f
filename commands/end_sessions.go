package commands

import "context"

// endSessions is accepted and ignored: spid keeps no state per logical session (an lsid only
// labels the commands that carry it), so there is nothing to end. Drivers send it when they
// close, with moreToCome, expecting no reply.
func endSessions(context.Context, *Call, *Reply) error { return nil }
