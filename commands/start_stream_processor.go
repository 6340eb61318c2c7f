package commands

import (
	"context"

	"github.com/spi-streams/spi/processor"
)

// startStreamProcessor is sp.x.start(options): {startStreamProcessor: <name>,
// resumeFromCheckpoint?, tier?, workers?} (mongosh) or {..., options: {clearCheckpoints, tier}}
// (driver spec) → {ok: 1}. Only a CREATED, STOPPED or FAILED processor starts (spec §4.2);
// resumeFromCheckpoint: false and clearCheckpoints: true both start fresh.
func startStreamProcessor(_ context.Context, call *Call, r *Reply) error {
	m, name, err := target(call)
	if err != nil {
		return err
	}
	opts := processor.StartOptions{By: who(call)}
	resume, resumeSet, err := optBool(call, "resumeFromCheckpoint")
	if err != nil {
		return err
	}
	clearCP, _, err := optBool(call, "clearCheckpoints")
	if err != nil {
		return err
	}
	opts.ClearCheckpoints = clearCP || (resumeSet && !resume)
	if opts.Tier, _, err = optString(call, "tier"); err != nil {
		return err
	}
	if _, _, err := optInt(call, "workers", 1, 64); err != nil {
		return err
	}
	return procErr(m.Start(workspaceOf(call.Conn), name, opts))
}
