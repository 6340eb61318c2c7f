package commands

import "context"

// whatsmyuri tells the client the address the server sees it connect from.
func whatsmyuri(_ context.Context, call *Call, r *Reply) error {
	r.String("you", call.Conn.RemoteAddr().String())
	return nil
}
