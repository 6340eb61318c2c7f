package admin

import (
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/spi-streams/spi/authz"
	"github.com/spi-streams/spi/store"
)

var roleName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

type resourceBody struct {
	Cluster    *bool   `json:"cluster"`
	DB         *string `json:"db"`
	Collection *string `json:"collection"`
}

type actionBody struct {
	Action    *string        `json:"action"`
	Resources []resourceBody `json:"resources"`
}

type inheritedBody struct {
	DB   *string `json:"db"`
	Role *string `json:"role"`
}

// roleBody is a UserCustomDBRole request.
type roleBody struct {
	RoleName       *string          `json:"roleName"`
	Actions        *[]actionBody    `json:"actions"`
	InheritedRoles *[]inheritedBody `json:"inheritedRoles"`
}

// roleView is an Atlas UserCustomDBRole reply; its nested views carry Atlas's JSON names.
type roleView struct {
	RoleName       string              `json:"roleName"`
	Actions        []actionView        `json:"actions"`
	InheritedRoles []inheritedRoleView `json:"inheritedRoles"`
}

// actionView is an Atlas DatabasePrivilegeAction.
type actionView struct {
	Action    string         `json:"action"`
	Resources []resourceView `json:"resources"`
}

// resourceView is an Atlas DatabasePermittedNamespaceResource: all three fields are required
// there, so all three are always sent (db and collection empty for the cluster).
type resourceView struct {
	Cluster    bool   `json:"cluster"`
	DB         string `json:"db"`
	Collection string `json:"collection"`
}

// inheritedRoleView is an Atlas DatabaseInheritedRole.
type inheritedRoleView struct {
	DB   string `json:"db"`
	Role string `json:"role"`
}

func toRoleView(r store.Role) roleView {
	v := roleView{RoleName: r.Name, Actions: []actionView{}, InheritedRoles: []inheritedRoleView{}}
	for _, a := range r.Actions {
		av := actionView{Action: a.Action, Resources: []resourceView{}}
		for _, res := range a.Resources {
			av.Resources = append(av.Resources, resourceView{Cluster: res.Cluster, DB: res.DB, Collection: res.Collection})
		}
		v.Actions = append(v.Actions, av)
	}
	for _, ir := range r.InheritedRoles {
		v.InheritedRoles = append(v.InheritedRoles, inheritedRoleView{DB: ir.DB, Role: ir.Role})
	}
	return v
}

// apply merges the request into role and validates it against the other roles in the store.
func (b *roleBody) apply(tx *store.Txn, role *store.Role) *apiError {
	if b.Actions != nil {
		role.Actions = nil
		for i, ab := range *b.Actions {
			f := "actions[" + strconv.Itoa(i) + "]"
			if ab.Action == nil || *ab.Action == "" {
				return missing(f + ".action")
			}
			act := store.RoleAction{}
			if a, ok := authz.ParseStreamAction(*ab.Action); ok {
				act.Action = a.AtlasName()
				for j, rb := range ab.Resources {
					if rb.Cluster == nil || !*rb.Cluster || str(rb.DB) != "" || str(rb.Collection) != "" {
						return invalid(f+".resources["+strconv.Itoa(j)+"]", "stream processing actions apply to the whole workspace: use {\"cluster\": true}")
					}
				}
				act.Resources = []store.Resource{{Cluster: true}}
			} else if slices.Contains(authz.DatabaseActions, *ab.Action) {
				act.Action = *ab.Action
				if len(ab.Resources) == 0 {
					return missing(f + ".resources")
				}
				for j, rb := range ab.Resources {
					rf := f + ".resources[" + strconv.Itoa(j) + "]"
					switch {
					case rb.Cluster != nil && *rb.Cluster && str(rb.DB) == "" && str(rb.Collection) == "":
						act.Resources = append(act.Resources, store.Resource{Cluster: true})
					case (rb.Cluster == nil || !*rb.Cluster) && str(rb.DB) != "":
						act.Resources = append(act.Resources, store.Resource{DB: *rb.DB, Collection: str(rb.Collection)})
					default:
						return invalid(rf, "give either {\"cluster\": true} or {\"db\": ..., \"collection\": ...}")
					}
				}
			} else {
				return invalid(f+".action", "%q is not a privilege action spid knows (for example CREATE_STREAM_PROCESSOR or FIND)", *ab.Action)
			}
			role.Actions = append(role.Actions, act)
		}
	}
	if b.InheritedRoles != nil {
		role.InheritedRoles = nil
		for i, ib := range *b.InheritedRoles {
			f := "inheritedRoles[" + strconv.Itoa(i) + "]"
			if ib.Role == nil || *ib.Role == "" {
				return missing(f + ".role")
			}
			db := "admin"
			if ib.DB != nil {
				db = *ib.DB
			}
			if db != "admin" {
				return invalid(f+".db", "%q must be admin", db)
			}
			if *ib.Role == role.Name {
				return invalid(f+".role", "a role cannot inherit itself")
			}
			if !roleExists(tx, *ib.Role) {
				return invalid(f+".role", "no built-in or custom role named %q exists", *ib.Role)
			}
			if inherits(tx, *ib.Role, role.Name, map[string]bool{}) {
				return invalid(f+".role", "%q already inherits %q; inheriting it back would make a cycle", *ib.Role, role.Name)
			}
			role.InheritedRoles = append(role.InheritedRoles, store.InheritedRole{DB: db, Role: *ib.Role})
		}
	}
	if len(role.Actions) == 0 && len(role.InheritedRoles) == 0 {
		return invalid("actions", "a custom role needs at least one action or inherited role")
	}
	return nil
}

// inherits reports whether role from inherits target, directly or through other roles.
func inherits(tx *store.Txn, from, target string, seen map[string]bool) bool {
	if seen[from] {
		return false
	}
	seen[from] = true
	r, err := tx.Role(from)
	if err != nil {
		return false
	}
	for _, ir := range r.InheritedRoles {
		if ir.Role == target || inherits(tx, ir.Role, target, seen) {
			return true
		}
	}
	return false
}

func (s *Server) listRoles(w http.ResponseWriter, r *http.Request, _ *caller) *apiError {
	var list []store.Role
	if err := s.opts.Store.View(func(tx *store.Txn) (err error) { list, err = tx.Roles(); return err }); err != nil {
		return internal(err)
	}
	views := make([]roleView, len(list))
	for i, role := range list {
		views[i] = toRoleView(role)
	}
	writeJSON(w, http.StatusOK, views)
	return nil
}

func (s *Server) getRole(w http.ResponseWriter, r *http.Request, _ *caller) *apiError {
	name := r.PathValue("roleName")
	var role store.Role
	err := s.opts.Store.View(func(tx *store.Txn) (err error) { role, err = tx.Role(name); return err })
	if store.IsNotFound(err) {
		return notFound("custom role", name)
	}
	if err != nil {
		return internal(err)
	}
	writeJSON(w, http.StatusOK, toRoleView(role))
	return nil
}

func (s *Server) createRole(w http.ResponseWriter, r *http.Request, _ *caller) *apiError {
	var b roleBody
	if e := decodeBody(w, r, &b); e != nil {
		return e
	}
	if b.RoleName == nil || *b.RoleName == "" {
		return missing("roleName")
	}
	if !roleName.MatchString(*b.RoleName) {
		return invalid("roleName", "%q must be 1 to 64 letters, digits, '-' or '_'", *b.RoleName)
	}
	if isBuiltinRole(*b.RoleName) {
		return invalid("roleName", "%q is a built-in role", *b.RoleName)
	}
	now := time.Now().UTC()
	role := store.Role{Name: *b.RoleName, Created: now, Updated: now}
	var apiErr *apiError
	err := s.opts.Store.Update(func(tx *store.Txn) error {
		if _, err := tx.Role(role.Name); err == nil {
			apiErr = duplicate("custom role", role.Name)
			return errAbort
		}
		if apiErr = b.apply(tx, &role); apiErr != nil {
			return errAbort
		}
		return tx.PutRole(role)
	})
	if apiErr != nil {
		return apiErr
	}
	if err != nil {
		return internal(err)
	}
	writeJSON(w, http.StatusOK, toRoleView(role))
	return nil
}

func (s *Server) updateRole(w http.ResponseWriter, r *http.Request, _ *caller) *apiError {
	name := r.PathValue("roleName")
	var b roleBody
	if e := decodeBody(w, r, &b); e != nil {
		return e
	}
	if b.RoleName != nil && *b.RoleName != name {
		return invalid("roleName", "roles cannot be renamed (the path names %q)", name)
	}
	var (
		role   store.Role
		apiErr *apiError
	)
	err := s.opts.Store.Update(func(tx *store.Txn) (err error) {
		if role, err = tx.Role(name); err != nil {
			apiErr = notFound("custom role", name)
			return errAbort
		}
		if apiErr = b.apply(tx, &role); apiErr != nil {
			return errAbort
		}
		role.Updated = time.Now().UTC()
		return tx.PutRole(role)
	})
	if apiErr != nil {
		return apiErr
	}
	if err != nil {
		return internal(err)
	}
	s.roleChanged(name)
	writeJSON(w, http.StatusOK, toRoleView(role))
	return nil
}

// roleChanged applies a committed change to custom role name to the running processors at once
// (processor.Manager.RoleChanged): those whose Cluster connections' execute-as role it no
// longer allows are FAILED with code 420 before the reply is sent.
func (s *Server) roleChanged(name string) {
	if s.opts.Processors == nil {
		return
	}
	if stopped := s.opts.Processors.RoleChanged(name); len(stopped) > 0 {
		s.log.Warn("custom role changed: processors its execute-as role no longer allows were stopped", "role", name, "processors", stopped)
	}
}

func (s *Server) deleteRole(w http.ResponseWriter, r *http.Request, _ *caller) *apiError {
	name := r.PathValue("roleName")
	var apiErr *apiError
	err := s.opts.Store.Update(func(tx *store.Txn) error {
		if _, err := tx.Role(name); err != nil {
			apiErr = notFound("custom role", name)
			return errAbort
		}
		users, err := tx.Users()
		if err != nil {
			return err
		}
		for _, u := range users {
			for _, rr := range u.Roles {
				if rr.RoleName == name {
					apiErr = conflict("Custom role %q is granted to database user %s/%s; revoke it first.", name, u.Database, u.Username)
					return errAbort
				}
			}
		}
		roles, err := tx.Roles()
		if err != nil {
			return err
		}
		for _, other := range roles {
			for _, ir := range other.InheritedRoles {
				if ir.Role == name {
					apiErr = conflict("Custom role %q is inherited by role %q.", name, other.Name)
					return errAbort
				}
			}
		}
		workspaces, err := tx.Workspaces()
		if err != nil {
			return err
		}
		for _, ws := range workspaces {
			conns, err := tx.Connections(ws.Name)
			if err != nil {
				return err
			}
			for _, c := range conns {
				if c.Cluster != nil && c.Cluster.DBRoleToExecute.Type == "CUSTOM" && c.Cluster.DBRoleToExecute.Role == name {
					apiErr = conflict("Custom role %q is the execute-as role of connection %q in workspace %q.", name, c.Name, ws.Name)
					return errAbort
				}
			}
		}
		return tx.DeleteRole(name)
	})
	if apiErr != nil {
		return apiErr
	}
	if err != nil {
		return internal(err)
	}
	s.roleChanged(name)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
