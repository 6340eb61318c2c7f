package main

import (
	"encoding/pem"
	"io"
	"maps"
	"os"
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
			{&o.role, "role"}, {&o.roleType, "role-type"}, {&o.executeAs, "execute-as"},
			{&o.mechanism, "mechanism"}, {&o.username, "username"}, {&o.password, "password"},
			{&o.passwordEnv, "password-env"}, {&o.protocol, "protocol"}, {&o.brokerCAFile, "ca-file"},
			{&o.sslCertFile, "ssl-cert-file"}, {&o.sslKeyFile, "ssl-key-file"},
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
		if o.executeAs != "" {
			if o.role != "" || o.roleType != "" {
				return usagef("give --execute-as or --role/--role-type, not both")
			}
			role, typ, _ := strings.Cut(o.executeAs, ":")
			if role == "" {
				return usagef("--execute-as %q: give ROLE or ROLE:BUILT_IN or ROLE:CUSTOM", o.executeAs)
			}
			o.role, o.roleType = role, typ
		}
		set(b, o.role, "dbRoleToExecute", "role")
		set(b, strings.ToUpper(o.roleType), "dbRoleToExecute", "type")
		// Kafka's SASL identity or the Cluster's execute-as identity: both are "authentication".
		set(b, kafkaMechanism(o.mechanism), "authentication", "mechanism")
		set(b, o.username, "authentication", "username")
		set(b, o.password, "authentication", "password")
		set(b, strings.ToUpper(o.protocol), "security", "protocol")
		if o.brokerCAFile != "" {
			pem, err := os.ReadFile(o.brokerCAFile)
			if err != nil {
				return usagef("--ca-file: %v", err)
			}
			set(b, string(pem), "security", "brokerPublicCertificate")
		}
		// Mutual TLS (protocol SSL): the client certificate and its key, as PEM files.
		for _, f := range []struct{ path, flag, field string }{
			{o.sslCertFile, "--ssl-cert-file", "sslCertificate"}, {o.sslKeyFile, "--ssl-key-file", "sslKey"},
		} {
			if f.path == "" {
				continue
			}
			data, err := os.ReadFile(f.path)
			if err != nil {
				return usagef("%s: %v", f.flag, err)
			}
			// One file may hold both: the certificate field gets only the certificates (it is
			// readable), the key field only the key.
			keep := func(typ string) bool { return typ == "CERTIFICATE" }
			if f.field == "sslKey" {
				keep = func(typ string) bool { return strings.HasSuffix(typ, "PRIVATE KEY") }
			}
			var out []byte
			for rest := data; ; {
				var blk *pem.Block
				if blk, rest = pem.Decode(rest); blk == nil {
					break
				}
				if keep(blk.Type) {
					out = append(out, pem.EncodeToMemory(blk)...)
				}
			}
			if len(out) == 0 {
				return usagef("%s: %s holds no PEM %s", f.flag, f.path, map[bool]string{true: "private key", false: "certificate"}[f.field == "sslKey"])
			}
			set(b, string(out), "authentication", f.field)
		}
		if o.role != "" && !has(b, "dbRoleToExecute", "type") {
			set(b, roleTypeOf(o.role), "dbRoleToExecute", "type")
		}
		if verb != "create" {
			return nil
		}
		// type is required on create; the fields given say which it is.
		if !has(b, "type") {
			switch {
			case has(b, "bootstrapServers"), has(b, "security"):
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

// kafkaMechanism accepts the SASL mechanism in any case, and SCRAM-SHA-256/512 for SCRAM-256/512.
func kafkaMechanism(m string) string {
	switch u := strings.ToUpper(m); u {
	case "PLAIN", "SCRAM-256", "SCRAM-512", "OAUTHBEARER", "SCRAM-SHA-1":
		return u
	case "SCRAM-SHA-256":
		return u // the server maps it to SCRAM-256 for Kafka and keeps it for a Cluster
	case "SCRAM-SHA-512":
		return "SCRAM-512"
	}
	return m
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
