package commands

import "context"

// getStreamProcessor is the driver spec's {getStreamProcessor: <name>}: the processor's id,
// name, state, pipeline, tier, dlq, error fields and times (spec §5.4). Current Atlas servers
// wrap them in result, the spec puts them at the top level; spid sends both, so every client
// finds them.
func getStreamProcessor(_ context.Context, call *Call, r *Reply) error {
	m, name, err := target(call)
	if err != nil {
		return err
	}
	info, err := m.Get(workspaceOf(call.Conn), name)
	if err != nil {
		return procErr(err)
	}
	appendInfo(call, r, info.Processor)
	r.Doc("result")
	appendInfo(call, r, info.Processor)
	r.EndDoc()
	return nil
}
