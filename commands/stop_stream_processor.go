package commands

import "context"

// stopStreamProcessor is sp.x.stop(): {stopStreamProcessor: <name>} → {ok: 1}, after the
// processor's final checkpoint. A processor that is not running gets IllegalOperation.
func stopStreamProcessor(ctx context.Context, call *Call, r *Reply) error {
	m, err := manager(call)
	if err != nil {
		return err
	}
	name, err := processorName(call)
	if err != nil {
		return err
	}
	return procErr(m.Stop(ctx, workspaceOf(call.Conn), name))
}
