package commands

import (
	"context"

	"github.com/spi-streams/spi/store"
)

// listWorkspaceDefaults is sp.listWorkspaceDefaults(): {listWorkspaceDefaults: 1} →
// {ok: 1, defaultTierSize, maxTierSize}: the workspace's default and largest processor tiers.
func listWorkspaceDefaults(_ context.Context, call *Call, r *Reply) error {
	var ws store.Workspace
	if err := call.Server.opts.Store.View(func(tx *store.Txn) (err error) { ws, err = tx.Workspace(workspaceOf(call.Conn)); return err }); err != nil {
		return err
	}
	r.String("defaultTierSize", ws.Tier)
	r.String("maxTierSize", ws.MaxTierSize)
	return nil
}
