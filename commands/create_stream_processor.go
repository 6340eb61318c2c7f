package commands

import (
	"context"

	"github.com/spi-streams/spi/processor"
)

// createStreamProcessor is sp.createStreamProcessor(name, pipeline, options):
// {createStreamProcessor: <name>, pipeline: [...], options: {dlq, tier, streamMetaFieldName,
// failover}} → {ok: 1}. The processor is stored in state CREATED (spec §1.1, §4.1).
func createStreamProcessor(_ context.Context, call *Call, r *Reply) error {
	m, name, err := target(call)
	if err != nil {
		return err
	}
	pv, perr := call.Body.LookupErr("pipeline")
	pipe, err := pipelineArg(call, "pipeline", pv, perr == nil)
	if err != nil {
		return err
	}
	req := processor.CreateRequest{Workspace: workspaceOf(call.Conn), Name: name, Pipeline: pipe, By: who(call)}
	if req.DLQ, _, err = optDLQ(call); err != nil {
		return err
	}
	if req.Tier, _, err = optString(call, "tier"); err != nil {
		return err
	}
	if req.StreamMetaFieldName, _, err = optString(call, "streamMetaFieldName"); err != nil {
		return err
	}
	if req.FailoverEnabled, _, err = optBool(call, "failover"); err != nil {
		return err
	}
	_, err = m.Create(req)
	return procErr(err)
}
