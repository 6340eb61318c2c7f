package commands

import (
	"context"
	"slices"

	"github.com/spi-streams/spi/authz"
	"github.com/spi-streams/spi/store"
)

// connectionStatus reports who the connection is authenticated as, with the user's roles and,
// with showPrivileges, the stream processing actions they grant on this workspace.
func connectionStatus(_ context.Context, call *Call, r *Reply) error {
	show := false
	if v, err := call.Body.LookupErr("showPrivileges"); err == nil {
		show, _ = v.BooleanOK()
	}
	d := call.Server
	var u *store.User
	if sessionOf(call.Conn).user != nil {
		if cu, e := d.current(call); e == nil {
			u = &cu
		}
	}
	r.Doc("authInfo")
	r.Array("authenticatedUsers")
	if u != nil {
		r.Doc("0")
		r.String("user", u.Username)
		r.String("db", u.Database)
		r.EndDoc()
	}
	r.EndDoc()
	r.Array("authenticatedUserRoles")
	if u != nil {
		for i, role := range u.Roles {
			r.Doc(arrayKey(i))
			r.String("role", role.RoleName)
			r.String("db", role.DatabaseName)
			r.EndDoc()
		}
	}
	r.EndDoc()
	if show {
		r.Array("authenticatedUserPrivileges")
		if ws := workspaceOf(call.Conn); u != nil && authz.InScope(*u, ws) {
			var actions []string
			for a := range authz.Privileges(*u, d.roleSource()) {
				actions = append(actions, string(a))
			}
			if len(actions) > 0 {
				slices.Sort(actions)
				r.Doc("0")
				r.Doc("resource")
				r.String("workspace", ws)
				r.EndDoc()
				r.Strings("actions", actions)
				r.EndDoc()
			}
		}
		r.EndDoc()
	}
	r.EndDoc()
	return nil
}
