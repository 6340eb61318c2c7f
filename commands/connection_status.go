package commands

import "context"

// connectionStatus reports who the connection is authenticated as. Until authentication
// exists every connection is anonymous.
func connectionStatus(_ context.Context, call *Call, r *Reply) error {
	show := false
	if v, err := call.Body.LookupErr("showPrivileges"); err == nil {
		show, _ = v.BooleanOK()
	}
	r.Doc("authInfo")
	r.Array("authenticatedUsers")
	r.EndDoc()
	r.Array("authenticatedUserRoles")
	r.EndDoc()
	if show {
		r.Array("authenticatedUserPrivileges")
		r.EndDoc()
	}
	r.EndDoc()
	return nil
}
