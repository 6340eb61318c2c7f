package admin

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/spi-streams/spi/store"
)

// provisionExecuteAsUser registers the execute-as user spi-<workspace>-<connection> with a random
// password the replies never show; PLAIN is accepted for the administrator; a new
// connectionString gives the user a new password; turning provisioning off forgets the user.
func TestProvisionExecuteAsUserConnection(t *testing.T) {
	env := newEnv(t)
	body := `{"name":"deploy","type":"Cluster","clusterName":"c0","connectionString":"mongodb://h:27017","dbRoleToExecute":{"role":"readWriteAnyDatabase","type":"BUILT_IN"},` +
		`"authentication":{"mechanism":"PLAIN","username":"uadmin","password":"admin-pw-42"},"provisionExecuteAsUser":true}`
	out := env.must("POST", "/streams/default/connections", body)
	if out["provisionExecuteAsUser"] != true {
		t.Fatalf("reply %v lacks provisionExecuteAsUser", out)
	}
	u, _ := out["executeAsUser"].(map[string]any)
	if u["username"] != "spi-default-deploy" || u["db"] != "admin" || u["passwordRotatedAt"] == nil {
		t.Fatalf("executeAsUser = %v", u)
	}
	stored := func() *store.Cluster {
		var c store.Connection
		if err := env.st.View(func(tx *store.Txn) (err error) { c, err = tx.Connection("default", "deploy"); return err }); err != nil {
			t.Fatal(err)
		}
		return c.Cluster
	}
	first := stored().ExecuteAs.Password.Reveal()
	if len(first) < 40 {
		t.Fatalf("execute-as password of %d characters", len(first))
	}
	for _, path := range []string{"/streams/default/connections/deploy", "/streams/default/connections"} {
		_, got := env.do("owner", "GET", path, "")
		b, _ := json.Marshal(got)
		if strings.Contains(string(b), first) || strings.Contains(string(b), "admin-pw-42") {
			t.Fatalf("GET %s shows a password: %s", path, b)
		}
	}
	// A GET reply sent back as the PATCH body is accepted (executeAsUser is read-only).
	_, got := env.do("owner", "GET", "/streams/default/connections/deploy", "")
	back, _ := json.Marshal(got)
	env.must("PATCH", "/streams/default/connections/deploy", string(back))
	if stored().ExecuteAs.Password.Reveal() != first {
		t.Fatal("sending the GET reply back changed the execute-as password")
	}
	env.must("PATCH", "/streams/default/connections/deploy", `{"dbRoleToExecute":{"role":"readAnyDatabase","type":"BUILT_IN"}}`)
	if got := stored().ExecuteAs.Password.Reveal(); got != first {
		t.Fatal("changing the role changed the execute-as password")
	}
	env.must("PATCH", "/streams/default/connections/deploy", `{"connectionString":"mongodb://other:27017","authentication":{"password":"admin-pw-42"}}`)
	if got := stored().ExecuteAs.Password.Reveal(); got == first {
		t.Fatal("a new connectionString kept the execute-as password")
	}
	out = env.must("PATCH", "/streams/default/connections/deploy", `{"provisionExecuteAsUser":false}`)
	if _, ok := out["executeAsUser"]; ok || stored().ExecuteAs != nil {
		t.Fatalf("turned off, the execute-as user is still registered: %v", out)
	}
}
