package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// processorCommands are the processor commands with the privilege actions each needs, in the
// order a client is refused them, written out from the spec (atlas-stream-processing.md §6.1,
// mongosh-wire.md §1.2), not read from the code under test; and the mongosh call that sends
// each. P is the user's own processor prefix. listWorkspaceDefaults needs no action.
var processorCommands = []struct {
	command string
	actions []string
	call    string
	audited bool
}{
	{"createStreamProcessor", []string{"createStreamProcessor"}, `sp.createStreamProcessor(P + "-new", [src, emit])`, true},
	{"listStreamProcessors", []string{"listStreamProcessors"}, `sp.listStreamProcessors()`, true},
	{"getStreamProcessor", []string{"getStreamProcessor"}, `db.adminCommand({getStreamProcessor: P + "-running"})`, true},
	{"getStreamProcessorStats", []string{"streamProcessorStats"}, `sp.getProcessor({name: P + "-running"}).stats()`, true},
	{"startSampleStreamProcessor", []string{"sampleStreamProcessor"}, `sp.getProcessor({name: P + "-running"}).sample({limit: 1})`, true},
	// A getMore on a cursor that does not exist: past authorization it is CursorNotFound.
	{"getMoreSampleStreamProcessor", []string{"sampleStreamProcessor"}, `db.adminCommand({getMoreSampleStreamProcessor: P + "-running", cursorId: NumberLong("12345")})`, false},
	{"processStreamProcessor", []string{"processStreamProcessor", "sampleStreamProcessor"}, `db.adminCommand({processStreamProcessor: [{$source: {documents: [{a: 1}]}}]})`, true},
	{"modifyStreamProcessor", []string{"modifyStreamProcessor"}, `sp.getProcessor({name: P + "-created"}).modify([src, {$match: {event_type: 1}}, emit], {resumeFromCheckpoint: false})`, true},
	{"startStreamProcessor", []string{"startStreamProcessor"}, `sp.getProcessor({name: P + "-created"}).start()`, true},
	{"stopStreamProcessor", []string{"stopStreamProcessor"}, `sp.getProcessor({name: P + "-running"}).stop()`, true},
	{"dropStreamProcessor", []string{"dropStreamProcessor"}, `sp.getProcessor({name: P + "-drop"}).drop()`, true},
	{"listStreamConnections", []string{"listStreamConnections"}, `sp.listConnections()`, false},
	{"listWorkspaceDefaults", nil, `sp.listWorkspaceDefaults()`, false},
}

// The authorization matrix of every processor command, driven through mongosh (issue 9,
// acceptance 2): a user whose custom role holds exactly one action (or, for sp.process(),
// exactly processStreamProcessor and sampleStreamProcessor) runs exactly the commands those
// actions allow and gets Atlas's "not authorized" text naming the missing action for every
// other; every processor command is in the data-plane audit log with its user, processor and
// outcome.
func TestStreamProcessorAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	s := startSpid(t)
	a := newAPI(t, s.Creds(t))
	admin := connectGo(t, s.Admin(t, "", ""))

	type user struct {
		name    string
		actions []string
	}
	var users []user
	for _, act := range streamActions {
		users = append(users, user{"only-" + act, []string{act}})
	}
	users = append(users, user{"process-and-sample", []string{"processStreamProcessor", "sampleStreamProcessor"}})
	src := solarSourceD(100, 1)
	var js []string
	for _, u := range users {
		var acts []any
		for _, act := range u.actions {
			acts = append(acts, map[string]any{"action": act})
		}
		a.ok("POST", "/customDBRoles/roles", map[string]any{"roleName": "role-" + u.name, "actions": acts})
		a.ok("POST", "/databaseUsers", map[string]any{"databaseName": "admin", "username": u.name, "password": "pw-" + u.name,
			"roles": []any{map[string]any{"roleName": "role-" + u.name, "databaseName": "admin"}}})
		// The user's own processors, so each allowed command has a target in the right state.
		for _, suffix := range []string{"-created", "-running", "-drop"} {
			mustAdmin(t, admin, bson.D{{Key: "createStreamProcessor", Value: u.name + suffix}, {Key: "pipeline", Value: bson.A{src, emitD("__discard")}}})
		}
		mustAdmin(t, admin, bson.D{{Key: "startStreamProcessor", Value: u.name + "-running"}})
		js = append(js, fmt.Sprintf(`{name: %q, uri: %q}`, u.name, userURI(s.Addr, u.name, "pw-"+u.name, "")))
	}

	var calls strings.Builder
	for _, c := range processorCommands {
		fmt.Fprintf(&calls, "  cell(P, %q, () => %s);\n", c.command, c.call)
	}
	script := `
const src = ` + solarSource(100, 1) + `;
const emit = {$emit: {connectionName: "__discard"}};
const cell = (u, cmd, f) => { try { f(); print("CELL", JSON.stringify([u, cmd, "ok"])); } catch (e) { print("CELL", JSON.stringify([u, cmd, e.code, e.message])); } };
for (const u of [` + strings.Join(js, ",\n") + `]) {
  db = connect(u.uri);
  const P = u.name;
  print("AS", JSON.stringify(db.adminCommand({connectionStatus: 1}).authInfo.authenticatedUsers.map(x => x.user)));
` + calls.String() + `}
`
	out := mongoshScript(t, s.Admin(t, "", ""), script)
	if got := markedLines(out, "AS"); len(got) != len(users) {
		t.Fatalf("mongosh switched users %d times, want %d:\n%s", len(got), len(users), out)
	} else {
		for i, u := range users {
			if got[i] != `["`+u.name+`"]` {
				t.Errorf("connection %d is authenticated as %s, want %s", i, got[i], u.name)
			}
		}
	}
	cells := map[[2]string][]any{}
	for _, l := range markedLines(out, "CELL") {
		var v []any
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("CELL %s: %v", l, err)
		}
		cells[[2]string{v[0].(string), v[1].(string)}] = v[2:]
	}

	for _, u := range users {
		for _, c := range processorCommands {
			got, ok := cells[[2]string{u.name, c.command}]
			if !ok {
				t.Errorf("%s %s: no result", u.name, c.command)
				continue
			}
			missing := ""
			for _, act := range c.actions {
				if !slices.Contains(u.actions, act) {
					missing = act
					break
				}
			}
			switch {
			case missing != "":
				want := []any{float64(13), "not authorized: missing privilege for action " + missing + " on resource default"}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s %s: got %v, want %v", u.name, c.command, got, want)
				}
			case c.command == "getMoreSampleStreamProcessor":
				if len(got) != 2 || got[0] != float64(43) {
					t.Errorf("%s %s: want CursorNotFound past authorization, got %v", u.name, c.command, got)
				}
			default:
				if len(got) != 1 || got[0] != "ok" {
					t.Errorf("%s %s: want success, got %v", u.name, c.command, got)
				}
			}
		}
	}

	// Every audited processor command, allowed or refused, is one audit record naming the
	// command, the processor, the user and the outcome.
	type rec struct{ user, command, processor, outcome string }
	seen := map[rec]int{}
	for _, e := range readAuditMaps(t, s) {
		if e["event"] == "processorCommand" {
			seen[rec{str(e["user"]), str(e["command"]), str(e["processor"]), str(e["outcome"])}]++
		}
	}
	for _, u := range users {
		for _, c := range processorCommands {
			if !c.audited {
				continue
			}
			r := rec{user: u.name, command: c.command, outcome: "ok"}
			for _, act := range c.actions {
				if !slices.Contains(u.actions, act) {
					r.outcome = "Unauthorized"
				}
			}
			switch c.command {
			case "createStreamProcessor":
				r.processor = u.name + "-new"
			case "getStreamProcessor", "getStreamProcessorStats", "startSampleStreamProcessor", "stopStreamProcessor":
				r.processor = u.name + "-running"
			case "modifyStreamProcessor", "startStreamProcessor":
				r.processor = u.name + "-created"
			case "dropStreamProcessor":
				r.processor = u.name + "-drop"
			}
			if seen[r] != 1 {
				t.Errorf("audit log has %d records of %+v", seen[r], r)
			}
		}
	}
	if t.Failed() {
		t.Logf("mongosh printed:\n%s", out)
	}
	t.Logf("%d cells over %d users", len(cells), len(users))
}

// readAuditMaps reads the data-plane audit log as generic records.
func readAuditMaps(t *testing.T, s *spid) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(mustRead(t, s.DataDir+"/audit/data-plane.jsonl")), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("audit line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func str(v any) string { s, _ := v.(string); return s }
