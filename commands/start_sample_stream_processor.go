package commands

import (
	"context"
	"math"
)

// startSampleStreamProcessor is sp.x.sample({limit}): {startSampleStreamProcessor: <name>,
// limit?} → {ok: 1, cursorId: <long>}. The cursor sees the running processor's output from now
// on; mongosh then polls it with getMoreSampleStreamProcessor (spec mongosh-wire §1.3).
func startSampleStreamProcessor(_ context.Context, call *Call, r *Reply) error {
	m, name, err := target(call)
	if err != nil {
		return err
	}
	limit, _, err := optInt(call, "limit", 1, math.MaxInt64)
	if err != nil {
		return err
	}
	id, err := m.StartSample(workspaceOf(call.Conn), name, limit, call.Conn.ID())
	if err != nil {
		return procErr(err)
	}
	r.Int64("cursorId", id)
	return nil
}
