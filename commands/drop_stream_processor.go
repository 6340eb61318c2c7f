package commands

import "context"

// dropStreamProcessor is sp.x.drop(): {dropStreamProcessor: <name>} → {ok: 1}. A running
// processor is stopped first; its checkpoint is deleted with it. mongosh also sends it to end
// an sp.process() run.
func dropStreamProcessor(ctx context.Context, call *Call, r *Reply) error {
	m, name, err := target(call)
	if err != nil {
		return err
	}
	return procErr(m.Drop(ctx, workspaceOf(call.Conn), name))
}
