package commands

import (
	"context"

	"github.com/spi-streams/spi/processor"
)

// modifyStreamProcessor is sp.x.modify(pipeline, options) or sp.x.modify(options):
// {modifyStreamProcessor: <name>, pipeline?, resumeFromCheckpoint?, name?, dlq?, tier?} →
// {ok: 1}. The processor must not be running. With resumeFromCheckpoint (the default) the
// $source, the window's type and interval stay and a window is not removed (spec §4.3);
// dlq: {} removes the dead-letter queue.
func modifyStreamProcessor(_ context.Context, call *Call, r *Reply) error {
	m, name, err := target(call)
	if err != nil {
		return err
	}
	req := processor.ModifyRequest{ResumeFromCheckpoint: true, By: who(call)}
	if v, ok, err := option(call, "pipeline"); err != nil {
		return err
	} else if ok {
		if req.Pipeline, err = pipelineArg(call, "pipeline", v, true); err != nil {
			return err
		}
	}
	if resume, set, err := optBool(call, "resumeFromCheckpoint"); err != nil {
		return err
	} else if set {
		req.ResumeFromCheckpoint = resume
	}
	if req.NewName, _, err = optString(call, "name"); err != nil {
		return err
	}
	if req.DLQ, req.RemoveDLQ, err = optDLQ(call); err != nil {
		return err
	}
	if req.Tier, _, err = optString(call, "tier"); err != nil {
		return err
	}
	if req.Pipeline == nil && req.NewName == "" && req.DLQ == nil && !req.RemoveDLQ && req.Tier == "" {
		return Errorf(CodeBadValue, "%s: nothing to modify: give pipeline, name, dlq or tier", call.Name)
	}
	return procErr(m.Modify(workspaceOf(call.Conn), name, req))
}
