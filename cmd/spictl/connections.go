package main

import (
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/spi-streams/spi/admin/client"
)

var connections = &resource{
	name: "connections", aliases: []string{"conn", "connection"}, noun: "connection", paged: true,
	flags: func(fs *flagSet, o *options) {
		fs.StringVar(&o.workspace, "workspace", "default", "")
		for _, f := range []struct {
			p    *string
			name string
		}{
			{&o.name, "name"}, {&o.typ, "type"}, {&o.bootstrap, "bootstrap-servers"}, {&o.connURL, "url"},
			{&o.clusterName, "cluster-name"}, {&o.connString, "connection-string"},
			{&o.role, "role"}, {&o.roleType, "role-type"},
		} {
			fs.StringVar(f.p, f.name, "", "")
			fs.onlyFor("create update", f.name)
		}
		fs.onlyFor("create", "name")
	},
	collection: func(o *options) string { return "/streams/" + esc(o.workspace) + "/connections" },
	item: oneArg("connection name", func(o *options, name string) string {
		return "/streams/" + esc(o.workspace) + "/connections/" + esc(name)
	}),
	apply: func(o *options, b map[string]any, verb string) error {
		if o.workspace == "" {
			return usagef("--workspace is empty")
		}
		set(b, o.name, "name")
		set(b, connType(o.typ), "type")
		set(b, o.bootstrap, "bootstrapServers")
		set(b, o.connURL, "url")
		set(b, o.clusterName, "clusterName")
		set(b, o.connString, "connectionString")
		set(b, o.role, "dbRoleToExecute", "role")
		set(b, strings.ToUpper(o.roleType), "dbRoleToExecute", "type")
		if o.role != "" && !has(b, "dbRoleToExecute", "type") {
			set(b, roleTypeOf(o.role), "dbRoleToExecute", "type")
		}
		if verb != "create" {
			return nil
		}
		// type is required on create; the fields given say which it is.
		if !has(b, "type") {
			switch {
			case has(b, "bootstrapServers"):
				b["type"] = client.TypeKafka
			case has(b, "clusterName"), has(b, "connectionString"), has(b, "dbRoleToExecute"):
				b["type"] = client.TypeCluster
			case has(b, "url"):
				b["type"] = client.TypeHTTPS
			}
		}
		if b["type"] == client.TypeSample && !has(b, "name") {
			b["name"] = "sample_stream_solar" // the only name a Sample connection may have
		}
		return nil
	},
	list: pageOf("connections", []string{"NAME", "TYPE", "TARGET"}, func(c client.Connection) []string {
		return []string{c.Name, c.Type, target(c)}
	}),
	show: showAs(func(w io.Writer, c client.Connection) error {
		var auth, authUser, execAs, protocol, config string
		if c.Authentication != nil {
			auth, authUser = c.Authentication.Mechanism, c.Authentication.Username
		}
		if c.DBRoleToExecute != nil {
			execAs = c.DBRoleToExecute.Role + " (" + c.DBRoleToExecute.Type + ")"
		}
		if c.Security != nil {
			protocol = c.Security.Protocol
		}
		var kv []string
		for _, k := range slices.Sorted(maps.Keys(c.Config)) {
			kv = append(kv, k+"="+c.Config[k])
		}
		config = strings.Join(kv, ", ")
		// Header values are write-only (the server masks them): show only the names.
		headers := strings.Join(slices.Sorted(maps.Keys(c.Headers)), ", ")
		return fields(w,
			"Name", c.Name,
			"Type", c.Type,
			"Bootstrap servers", c.BootstrapServers,
			"Security protocol", protocol,
			"Config", config,
			"Cluster name", c.ClusterName,
			"Connection string", c.ConnectionString,
			"Execute as", execAs,
			"Authentication", auth,
			"Username", authUser,
			"URL", c.URL,
			"Headers", headers)
	}),
}

// connType accepts the types in any case.
func connType(t string) string {
	for _, known := range []string{client.TypeKafka, client.TypeCluster, client.TypeSample, client.TypeHTTPS} {
		if strings.EqualFold(t, known) {
			return known
		}
	}
	return t
}

// roleTypeOf says whether a role is one of the built-ins a Cluster connection may execute as.
func roleTypeOf(role string) string {
	switch role {
	case "atlasAdmin", "readWriteAnyDatabase", "readAnyDatabase":
		return "BUILT_IN"
	}
	return "CUSTOM"
}

// target is where a connection leads.
func target(c client.Connection) string {
	switch c.Type {
	case client.TypeKafka:
		return c.BootstrapServers
	case client.TypeCluster:
		return c.ClusterName
	case client.TypeHTTPS:
		return c.URL
	}
	return ""
}
