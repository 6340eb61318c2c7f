package authz

import (
	"errors"
	"testing"

	"github.com/spi-streams/spi/store"
)

func TestCheck(t *testing.T) {
	roles := map[string]store.Role{
		"starter": {Name: "starter", Actions: []store.RoleAction{{Action: "START_STREAM_PROCESSOR"}}},
		"ops":     {Name: "ops", Actions: []store.RoleAction{{Action: "stopStreamProcessor"}}, InheritedRoles: []store.InheritedRole{{DB: "admin", Role: "starter"}}},
		"reader":  {Name: "reader", InheritedRoles: []store.InheritedRole{{DB: "admin", Role: "readAnyDatabase"}}},
		"loopA":   {Name: "loopA", InheritedRoles: []store.InheritedRole{{DB: "admin", Role: "loopB"}}},
		"loopB":   {Name: "loopB", InheritedRoles: []store.InheritedRole{{DB: "admin", Role: "loopA"}}},
	}
	src := func(n string) (store.Role, bool) { r, ok := roles[n]; return r, ok }
	user := func(scopes []string, rs ...string) store.User {
		u := store.User{}
		for _, r := range rs {
			u.Roles = append(u.Roles, store.RoleRef{RoleName: r, DatabaseName: "admin"})
		}
		for _, s := range scopes {
			u.Scopes = append(u.Scopes, store.Scope{Name: s, Type: "STREAM"})
		}
		return u
	}
	cases := []struct {
		name    string
		u       store.User
		ws      string
		actions []Action
		missing Action
	}{
		{"admin may do anything", user(nil, "atlasAdmin"), "w", StreamActions, ""},
		{"readWrite may do anything", user(nil, "readWriteAnyDatabase"), "w", StreamActions, ""},
		{"readAny may list", user(nil, "readAnyDatabase"), "w", []Action{ListStreamProcessors, ListStreamConnections, GetStreamProcessor, StreamProcessorStats}, ""},
		{"readAny may not start", user(nil, "readAnyDatabase"), "w", []Action{StartStreamProcessor}, StartStreamProcessor},
		{"custom role", user(nil, "starter"), "w", []Action{StartStreamProcessor}, ""},
		{"custom role lacks stop", user(nil, "starter"), "w", []Action{StopStreamProcessor}, StopStreamProcessor},
		{"inherited custom", user(nil, "ops"), "w", []Action{StartStreamProcessor, StopStreamProcessor}, ""},
		{"inherited built-in", user(nil, "reader"), "w", []Action{ListStreamProcessors}, ""},
		{"process needs sample too", user(nil, "ops"), "w", []Action{ProcessStreamProcessor, SampleStreamProcessor}, ProcessStreamProcessor},
		{"cycle terminates", user(nil, "loopA"), "w", []Action{ListStreamProcessors}, ListStreamProcessors},
		{"scoped in", user([]string{"w"}, "atlasAdmin"), "w", []Action{CreateStreamProcessor}, ""},
		{"scoped out", user([]string{"other"}, "atlasAdmin"), "w", []Action{CreateStreamProcessor}, CreateStreamProcessor},
		{"no actions needed", user(nil), "w", nil, ""},
	}
	for _, c := range cases {
		err := Check(c.u, src, c.ws, c.actions)
		var d *Denied
		switch {
		case c.missing == "" && err != nil:
			t.Errorf("%s: denied: %v", c.name, err)
		case c.missing != "" && (!errors.As(err, &d) || d.Action != c.missing):
			t.Errorf("%s: got %v, want missing %s", c.name, err, c.missing)
		}
	}
	d := &Denied{Action: ListStreamConnections, Workspace: "w"}
	if d.Error() != "not authorized: missing privilege for action listStreamConnections on resource w" {
		t.Error(d.Error())
	}
}
