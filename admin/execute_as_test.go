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
	out = env.must("PATCH", "/streams/default/connections/deploy", `{"provisionExecuteAsUser":false,"authentication":{"mechanism":"SCRAM-SHA-256","username":"writer","password":"writer-pw-7"}}`)
	if _, ok := out["executeAsUser"]; ok || stored().ExecuteAs != nil {
		t.Fatalf("turned off, the execute-as user is still registered: %v", out)
	}
}

// Switching provisionExecuteAsUser changes what authentication is (the user administrator when
// on, the processors' identity when off), so a PATCH that switches it must give a new username
// and password (trial bug 3): turned off without them, the user administrator would become the
// identity processors write as. A refused PATCH changes nothing; a PATCH of authentication alone
// on a provisioned connection replaces the administrator and keeps the execute-as user.
func TestProvisionSwitchNeedsAuthentication(t *testing.T) {
	env := newEnv(t)
	env.must("POST", "/streams/default/connections", `{"name":"prov","type":"Cluster","clusterName":"c0","connectionString":"mongodb://h:27017",`+
		`"dbRoleToExecute":{"role":"readWriteAnyDatabase","type":"BUILT_IN"},`+
		`"authentication":{"mechanism":"PLAIN","username":"useradmin","password":"admin-pw-42"},"provisionExecuteAsUser":true}`)
	env.must("POST", "/streams/default/connections", `{"name":"plain","type":"Cluster","clusterName":"c0","connectionString":"mongodb://h:27017",`+
		`"dbRoleToExecute":{"role":"readWriteAnyDatabase","type":"BUILT_IN"},`+
		`"authentication":{"username":"writer","password":"writer-pw-7"}}`)
	stored := func(name string) store.Cluster {
		t.Helper()
		var c store.Connection
		if err := env.st.View(func(tx *store.Txn) (err error) { c, err = tx.Connection("default", name); return err }); err != nil {
			t.Fatal(err)
		}
		return *c.Cluster
	}
	provBefore, plainBefore := stored("prov"), stored("plain")
	for _, tc := range []struct{ conn, body, reason string }{
		{"prov", `{"provisionExecuteAsUser":false}`, "turning it off would make the stored user administrator"},
		{"prov", `{"provisionExecuteAsUser":false,"authentication":{"password":"other-pw"}}`, "turning it off"},
		{"prov", `{"provisionExecuteAsUser":false,"authentication":{"username":"writer"}}`, "turning it off"},
		{"plain", `{"provisionExecuteAsUser":true}`, "turning it on would make the stored execute-as identity"},
		{"plain", `{"provisionExecuteAsUser":true,"authentication":{"username":"useradmin"}}`, "turning it on"},
	} {
		status, out := env.do("owner", "PATCH", "/streams/default/connections/"+tc.conn, tc.body)
		detail, _ := out["detail"].(string)
		if status != 400 || out["errorCode"] != "INVALID_ATTRIBUTE" || !strings.Contains(detail, "provisionExecuteAsUser") ||
			!strings.Contains(detail, tc.reason) || !strings.Contains(detail, "authentication.password") {
			t.Errorf("PATCH %s %s: %d %v, want 400 INVALID_ATTRIBUTE naming provisionExecuteAsUser: %s", tc.conn, tc.body, status, out, tc.reason)
		}
		if strings.Contains(detail, "admin-pw-42") || strings.Contains(detail, "writer-pw-7") {
			t.Errorf("PATCH %s: the error shows a password: %s", tc.conn, detail)
		}
	}
	if got := stored("prov"); !got.ProvisionExecuteAsUser || got.Username != "useradmin" || got.ExecuteAs == nil || *got.ExecuteAs != *provBefore.ExecuteAs {
		t.Fatalf("a refused PATCH changed the provisioned connection: %+v", got)
	}
	if got := stored("plain"); got.ProvisionExecuteAsUser || got != plainBefore {
		t.Fatalf("a refused PATCH changed the plain connection: %+v", got)
	}
	// Sending a GET reply back (provisionExecuteAsUser unchanged) needs no credentials.
	_, got := env.do("owner", "GET", "/streams/default/connections/prov", "")
	back, _ := json.Marshal(got)
	env.must("PATCH", "/streams/default/connections/prov", string(back))
	env.must("PATCH", "/streams/default/connections/plain", `{"provisionExecuteAsUser":false}`)

	// A new administrator on a provisioned connection: the execute-as user and its password stay.
	out := env.must("PATCH", "/streams/default/connections/prov", `{"authentication":{"mechanism":"SCRAM-SHA-256","username":"useradmin2","password":"admin-pw-43"}}`)
	if out["provisionExecuteAsUser"] != true || out["executeAsUser"] == nil {
		t.Fatalf("a new administrator turned provisioning off: %v", out)
	}
	if got := stored("prov"); got.Username != "useradmin2" || got.Password.Reveal() != "admin-pw-43" || *got.ExecuteAs != *provBefore.ExecuteAs {
		t.Fatalf("after a new administrator: %+v", got)
	}

	// Off with a new identity: the processors' credentials are the ones given, never the administrator's.
	out = env.must("PATCH", "/streams/default/connections/prov", `{"provisionExecuteAsUser":false,"authentication":{"mechanism":"SCRAM-SHA-256","username":"writer","password":"writer-pw-8"}}`)
	if a, _ := out["authentication"].(map[string]any); a["username"] != "writer" || out["provisionExecuteAsUser"] != nil || out["executeAsUser"] != nil {
		t.Fatalf("turned off: %v", out)
	}
	if got := stored("prov"); got.ProvisionExecuteAsUser || got.ExecuteAs != nil || got.Username != "writer" || got.Password.Reveal() != "writer-pw-8" {
		t.Fatalf("turned off: %+v", got)
	}

	// On again with a user administrator: a new execute-as user password, not the old one.
	out = env.must("PATCH", "/streams/default/connections/prov", `{"provisionExecuteAsUser":true,"authentication":{"username":"useradmin","password":"admin-pw-44"}}`)
	if got := stored("prov"); !got.ProvisionExecuteAsUser || got.Username != "useradmin" || got.ExecuteAs == nil || got.ExecuteAs.Password == provBefore.ExecuteAs.Password {
		t.Fatalf("turned on again: %+v (reply %v)", got, out)
	}
}

// The Admin API's role PATCH applies the change to running processors before it replies (trial
// bug 4; the runtime's side is processor.TestRoleChangedStopsDeniedProcessors, the deployment's
// e2e.TestCustomRoleChangeStopsRunningProcessors): the processor whose execute-as role lost its
// target is FAILED 420 in the next GET.
func TestRolePatchStopsDeniedProcessor(t *testing.T) {
	env, _ := newProcEnv(t)
	acts := func(coll string) string {
		return `[{"action":"INSERT","resources":[{"db":"out","collection":"` + coll + `"}]},{"action":"UPDATE","resources":[{"db":"out","collection":"` + coll + `"}]}]`
	}
	env.must("POST", "/customDBRoles/roles", `{"roleName":"crWriter","actions":`+acts("cr")+`}`)
	env.must("POST", "/streams/default/connections", `{"name":"ferret","type":"Cluster","clusterName":"c0","connectionString":"mongodb://127.0.0.1:1",`+
		`"dbRoleToExecute":{"role":"crWriter","type":"CUSTOM"}}`)
	// No document passes the $match, so the sink never connects to the absent deployment.
	env.must("POST", procPath, `{"name":"cr_ok","pipeline":[{"$source":{"connectionName":"sample_stream_solar"}},{"$match":{"obs.watts":{"$lt":-1}}},`+
		`{"$merge":{"into":{"connectionName":"ferret","db":"out","coll":"cr"}}}]}`)
	env.must("POST", procPath+"/cr_ok:start", "")
	// The attempt checks the role itself once it runs: wait until it reads, so that the PATCH
	// meets it running.
	env.waitFor(procPath+"/cr_ok", func(p map[string]any) bool {
		if p["state"] != "STARTED" {
			t.Fatalf("before the PATCH: %v", p)
		}
		return statOf(p, "inputMessageCount") > 0
	})
	env.must("PATCH", "/customDBRoles/roles/crWriter", `{"actions":`+acts("other")+`}`)
	_, out := env.do("owner", "GET", procPath+"/cr_ok", "")
	msg, _ := out["errorMsg"].(string)
	if out["state"] != "FAILED" || out["errorCode"] != float64(420) ||
		!strings.Contains(msg, "stopped because custom role crWriter changed") || !strings.Contains(msg, "may not insert into out.cr: it lacks the INSERT action there") {
		t.Fatalf("after the PATCH: %v", out)
	}
}
