package main

import (
	"io"
	"strings"

	"github.com/spi-streams/spi/admin/client"
)

var users = &resource{
	name: "users", aliases: []string{"user"}, noun: "database user", paged: true,
	flags: func(fs *flagSet, o *options) {
		fs.StringVar(&o.username, "username", "", "")
		fs.StringVar(&o.password, "password", "", "")
		fs.StringVar(&o.passwordEnv, "password-env", "", "")
		fs.StringVar(&o.database, "database", "", "")
		fs.BoolVar(&o.x509, "x509", false, "")
		fs.Var(&o.roles, "role", "")
		fs.Var(&o.scopes, "scope", "")
		fs.onlyFor("create", "username", "database", "x509")
		fs.onlyFor("create update", "password", "password-env", "role", "scope")
	},
	collection: func(*options) string { return "/databaseUsers" },
	item: func(_ *options, args []string) (string, string, error) {
		var db, user string
		switch len(args) {
		case 1:
			db, user = "admin", args[0]
		case 2:
			db, user = args[0], args[1]
		default:
			return "", "", usagef("want [DATABASE] USERNAME; got %d arguments", len(args))
		}
		return "/databaseUsers/" + esc(db) + "/" + esc(user), db + "/" + user, nil
	},
	apply: func(o *options, b map[string]any, verb string) error {
		set(b, o.username, "username")
		set(b, o.password, "password")
		set(b, o.database, "databaseName")
		if o.x509 {
			b["x509Type"] = "CUSTOMER"
		}
		if len(o.roles) > 0 {
			var rs []any
			for _, r := range o.roles {
				rs = append(rs, map[string]any{"roleName": r, "databaseName": "admin"})
			}
			b["roles"] = rs
		}
		if len(o.scopes) > 0 {
			var ss []any
			for _, s := range o.scopes {
				ss = append(ss, map[string]any{"name": s, "type": "STREAM"})
			}
			b["scopes"] = ss
		}
		if verb == "create" && !has(b, "databaseName") {
			b["databaseName"] = "admin"
			if t, _ := b["x509Type"].(string); t != "" && t != "NONE" {
				b["databaseName"] = "$external"
			}
		}
		return nil
	},
	list: pageOf("database users", []string{"DATABASE", "USERNAME", "AUTH", "ROLES", "SCOPES"}, func(u client.DatabaseUser) []string {
		return []string{u.DatabaseName, u.Username, authOf(u), userRoles(u), userScopes(u)}
	}),
	// The server never returns a password; nothing here would print one.
	show: showAs(func(w io.Writer, u client.DatabaseUser) error {
		return fields(w,
			"Username", u.Username,
			"Database", u.DatabaseName,
			"Authentication", authOf(u),
			"Roles", userRoles(u),
			"Workspaces", userScopes(u),
			"Description", u.Description)
	}),
}

func authOf(u client.DatabaseUser) string {
	if u.X509Type != "" && u.X509Type != "NONE" {
		return "X.509 (" + u.X509Type + ")"
	}
	return "SCRAM"
}

func userRoles(u client.DatabaseUser) string {
	var rs []string
	for _, r := range u.Roles {
		if r.DatabaseName != "" && r.DatabaseName != "admin" {
			rs = append(rs, r.RoleName+"@"+r.DatabaseName)
			continue
		}
		rs = append(rs, r.RoleName)
	}
	return strings.Join(rs, ", ")
}

func userScopes(u client.DatabaseUser) string {
	if len(u.Scopes) == 0 {
		return "all"
	}
	var ss []string
	for _, s := range u.Scopes {
		ss = append(ss, s.Name)
	}
	return strings.Join(ss, ", ")
}
