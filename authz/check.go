package authz

import (
	"fmt"
	"slices"

	"github.com/spi-streams/spi/store"
)

// RoleSource finds a custom role by name.
type RoleSource func(name string) (store.Role, bool)

// Privileges returns the stream actions a user's roles grant: built-in roles by their fixed
// sets, custom roles by their actions and, recursively, the roles they inherit.
func Privileges(user store.User, roles RoleSource) map[Action]bool {
	out := map[Action]bool{}
	seen := map[string]bool{}
	var grant func(name string)
	grant = func(name string) {
		if seen[name] {
			return
		}
		seen[name] = true
		if acts, ok := BuiltinRoles[name]; ok {
			for _, a := range acts {
				out[a] = true
			}
			return
		}
		r, ok := roles(name)
		if !ok {
			return
		}
		for _, ra := range r.Actions {
			if a, ok := ParseStreamAction(ra.Action); ok {
				out[a] = true
			}
		}
		for _, ir := range r.InheritedRoles {
			grant(ir.Role)
		}
	}
	for _, rr := range user.Roles {
		grant(rr.RoleName)
	}
	return out
}

// InScope reports whether the user may use the workspace: users without scopes may use every
// workspace, scoped users only the ones named.
func InScope(user store.User, workspace string) bool {
	if len(user.Scopes) == 0 {
		return true
	}
	return slices.ContainsFunc(user.Scopes, func(s store.Scope) bool { return s.Type == "STREAM" && s.Name == workspace })
}

// Denied is an authorization failure, with MongoDB's wording.
type Denied struct {
	Action    Action
	Workspace string
}

func (d *Denied) Error() string {
	return fmt.Sprintf("not authorized: missing privilege for action %s on resource %s", d.Action, d.Workspace)
}

// Check is the one decision for data-plane commands: may user perform every action on the
// workspace? It returns a *Denied naming the first missing action, or nil.
func Check(user store.User, roles RoleSource, workspace string, actions []Action) error {
	if len(actions) == 0 {
		return nil
	}
	if !InScope(user, workspace) {
		return &Denied{Action: actions[0], Workspace: workspace}
	}
	have := Privileges(user, roles)
	for _, a := range actions {
		if !have[a] {
			return &Denied{Action: a, Workspace: workspace}
		}
	}
	return nil
}
