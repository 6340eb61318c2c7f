package commands

import (
	"context"

	"github.com/spi-streams/spi/processor"
)

// processStreamProcessor is sp.process(pipeline, options): {processStreamProcessor: [...],
// options?} → {ok: 1, name: <temporary name>, cursorId: <long>}. The pipeline runs as a
// temporary processor whose output and dead letters ({_dlqMessage: ...}) go to the cursor. It
// ends when mongosh drops it, when this connection closes, or after 10 minutes (spec §9).
func processStreamProcessor(_ context.Context, call *Call, r *Reply) error {
	m, err := manager(call)
	if err != nil {
		return err
	}
	if err := checkOptions(call, "dlq", "tier", "streamMetaFieldName"); err != nil {
		return err
	}
	pipe, err := pipelineArg(call, "processStreamProcessor", call.Arg, true)
	if err != nil {
		return err
	}
	opts := processor.ProcessOptions{Workspace: workspaceOf(call.Conn), Pipeline: pipe, Owner: call.Conn.ID()}
	if opts.DLQ, _, err = optDLQ(call); err != nil {
		return err
	}
	if opts.Tier, _, err = optString(call, "tier"); err != nil {
		return err
	}
	if opts.StreamMetaFieldName, _, err = optString(call, "streamMetaFieldName"); err != nil {
		return err
	}
	name, id, err := m.Process(opts)
	if err != nil {
		return procErr(err)
	}
	r.String("name", name)
	r.Int64("cursorId", id)
	return nil
}
