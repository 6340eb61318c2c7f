package commands

import "context"

// endSessions is accepted and ignored: spid advertises no logical sessions, so drivers only
// send it (with moreToCome, expecting no reply) if a user starts a session explicitly.
func endSessions(context.Context, *Call, *Reply) error { return nil }
