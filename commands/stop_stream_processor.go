package commands

import "context"

// stopStreamProcessor is sp.x.stop(): {stopStreamProcessor: <name>} → {ok: 1}, after the
// processor's final checkpoint. A processor that is not running gets IllegalOperation.
func stopStreamProcessor(ctx context.Context, call *Call, r *Reply) error {
	m, name, err := target(call)
	if err != nil {
		return err
	}
	return procErr(m.Stop(ctx, workspaceOf(call.Conn), name))
}
