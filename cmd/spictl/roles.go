package main

import (
	"io"
	"strings"

	"github.com/spi-streams/spi/admin/client"
)

var roles = &resource{
	name: "roles", aliases: []string{"role"}, noun: "custom role",
	flags: func(fs *flagSet, o *options) {
		fs.StringVar(&o.name, "name", "", "")
		fs.Var(&o.actions, "action", "")
		fs.Var(&o.inherits, "inherit", "")
		fs.onlyFor("create", "name")
		fs.onlyFor("create update", "action", "inherit")
	},
	collection: func(*options) string { return "/customDBRoles/roles" },
	item:       oneArg("role name", func(_ *options, name string) string { return "/customDBRoles/roles/" + esc(name) }),
	apply: func(o *options, b map[string]any, _ string) error {
		set(b, o.name, "roleName")
		if len(o.actions) > 0 {
			var as []any
			for _, a := range o.actions {
				// ACTION applies to the cluster (stream processing); ACTION@DB[.COLLECTION] to data.
				action, on, scoped := strings.Cut(a, "@")
				res := map[string]any{"cluster": true}
				if scoped {
					db, coll, _ := strings.Cut(on, ".")
					if db == "" || action == "" {
						return usagef("--action %q: want ACTION or ACTION@DB[.COLLECTION]", a)
					}
					res = map[string]any{"db": db, "collection": coll}
				}
				as = append(as, map[string]any{"action": action, "resources": []any{res}})
			}
			b["actions"] = as
		}
		if len(o.inherits) > 0 {
			var is []any
			for _, i := range o.inherits {
				role, db, _ := strings.Cut(i, "@")
				if role == "" {
					return usagef("--inherit %q: want ROLE or ROLE@DB", i)
				}
				is = append(is, map[string]any{"db": first(db, "admin"), "role": role})
			}
			b["inheritedRoles"] = is
		}
		return nil
	},
	// The API answers a plain array, as Atlas does, not a page.
	list: func(w io.Writer, reply []byte) error {
		rs, err := decode[[]client.CustomRole](reply)
		if err != nil {
			return err
		}
		return rowsOf(w, "custom roles", []string{"NAME", "ACTIONS", "INHERITED ROLES"}, rs, func(r client.CustomRole) []string {
			return []string{r.RoleName, actionsOf(r), inheritedOf(r)}
		})
	},
	show: showAs(func(w io.Writer, r client.CustomRole) error {
		return fields(w, "Name", r.RoleName, "Actions", actionsOf(r), "Inherited roles", inheritedOf(r))
	}),
}

// actionsOf lists a role's actions in the --action syntax.
func actionsOf(r client.CustomRole) string {
	var as []string
	for _, a := range r.Actions {
		if len(a.Resources) == 0 {
			as = append(as, a.Action)
		}
		for _, res := range a.Resources {
			switch {
			case res.Cluster || res.DB == "":
				as = append(as, a.Action)
			case res.Collection == "":
				as = append(as, a.Action+"@"+res.DB)
			default:
				as = append(as, a.Action+"@"+res.DB+"."+res.Collection)
			}
		}
	}
	return strings.Join(as, ", ")
}

// inheritedOf lists a role's inherited roles in the --inherit syntax.
func inheritedOf(r client.CustomRole) string {
	var is []string
	for _, i := range r.InheritedRoles {
		if i.DB == "" || i.DB == "admin" {
			is = append(is, i.Role)
			continue
		}
		is = append(is, i.Role+"@"+i.DB)
	}
	return strings.Join(is, ", ")
}
