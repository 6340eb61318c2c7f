package admin

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/spi-streams/spi/admin/client"
	"github.com/spi-streams/spi/store"
)

// The typed client's processor methods against the real control plane: every method, its
// request shape and its decoded reply, and an error as a *client.Error.
func TestProcessorClient(t *testing.T) {
	env, m := newProcEnv(t)
	var key store.APIKey
	k, private := NewAPIKey("client test", []string{RoleStreamProcessingOwner})
	key = k
	if err := env.st.Update(func(tx *store.Txn) error { return tx.PutAPIKey(key) }); err != nil {
		t.Fatal(err)
	}
	c := client.New(client.Config{BaseURL: env.srv.URL, GroupID: env.group, PublicKey: key.PublicKey, PrivateKey: private})
	ctx := t.Context()

	created, err := c.CreateProcessor(ctx, "default", &client.Processor{Name: "p", Pipeline: json.RawMessage(inlinePipeline), Tier: "SP5"})
	if err != nil {
		t.Fatal(err)
	}
	if len(created.ID) != 24 || created.Name != "p" || created.Tier != "SP5" || created.Stats != nil || !strings.Contains(string(created.Pipeline), "$match") {
		t.Errorf("create: %+v", created)
	}
	got, err := c.GetProcessor(ctx, "default", "p")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != created.ID || got.State != "CREATED" || got.Stats == nil || got.Stats.Status != "created" || got.Stats.ProcessorID != created.ID {
		t.Errorf("get: %+v %+v", got, got.Stats)
	}
	page, err := c.ListProcessors(ctx, "default", client.ListOptions{ItemsPerPage: 1})
	if err != nil || page.TotalCount != 1 || len(page.Results) != 1 || page.Results[0].Name != "p" {
		t.Errorf("list: %+v %v", page, err)
	}
	no := false
	mod, err := c.ModifyProcessor(ctx, "default", "p", &client.ProcessorModify{Name: "q", Tier: "SP2",
		Options: &client.ProcessorModifyOptions{ResumeFromCheckpoint: &no}})
	if err != nil || mod.Name != "q" || mod.Tier != "SP2" || mod.State != "CREATED" {
		t.Errorf("modify: %+v %v", mod, err)
	}
	// Stop of a processor that is not started: a 409 the client reports with its code.
	err = c.StopProcessor(ctx, "default", "q")
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != 409 || ce.ErrorCode != "CONFLICT" || !strings.Contains(ce.Detail, "not started") {
		t.Errorf("stop of a created processor: %v", err)
	}
	if err := c.StartProcessorWith(ctx, "default", "q", &client.StartWith{ResumeFromCheckpoint: &no, Tier: "SP5"}); err != nil {
		t.Fatalf("startWith: %v", err)
	}
	info, err := m.Get("default", "q")
	if err != nil || info.Tier != "SP5" || !info.HasStarted {
		t.Errorf("after startWith: %+v %v", info.Processor, err)
	}
	if err := c.DeleteProcessor(ctx, "default", "q"); err != nil {
		t.Fatalf("delete a started processor: %v", err)
	}
	if _, err := c.GetProcessor(ctx, "default", "q"); !errors.As(err, &ce) || ce.Status != 404 {
		t.Errorf("get after delete: %v", err)
	}
	if err := c.StartProcessor(ctx, "default", "q"); !errors.As(err, &ce) || ce.Status != 404 || ce.ErrorCode != "RESOURCE_NOT_FOUND" {
		t.Errorf("start after delete: %v", err)
	}
}
