package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spi-streams/spi/admin/client"
)

var keys = &resource{
	name: "keys", aliases: []string{"key", "apikeys"}, noun: "API key", paged: true,
	flags: func(fs *flagSet, o *options) {
		fs.StringVar(&o.desc, "desc", "", "")
		fs.Var(&o.roles, "role", "")
		fs.onlyFor("create update", "desc", "role")
	},
	collection: func(*options) string { return "/apiKeys" },
	item:       oneArg("key ID", func(_ *options, id string) string { return "/apiKeys/" + esc(id) }),
	apply: func(o *options, b map[string]any, _ string) error {
		set(b, o.desc, "desc")
		if len(o.roles) > 0 {
			var rs []any
			for _, r := range o.roles {
				rs = append(rs, strings.ToUpper(r))
			}
			b["roles"] = rs
		}
		return nil
	},
	// Neither list nor show prints privateKey, even masked: only create does.
	list: pageOf("API keys", []string{"ID", "PUBLIC KEY", "DESCRIPTION", "ROLES"}, func(k client.APIKey) []string {
		return []string{k.ID, k.PublicKey, k.Desc, keyRoles(k)}
	}),
	show: showAs(func(w io.Writer, k client.APIKey) error {
		return fields(w, "ID", k.ID, "Public key", k.PublicKey, "Description", k.Desc, "Roles", keyRoles(k))
	}),
	created: showAs(func(w io.Writer, k client.APIKey) error {
		_, err := fmt.Fprintf(w, "Private key (shown once): %s\nSave it now: spid keeps only a hash of it.\n", k.PrivateKey)
		return err
	}),
}

func keyRoles(k client.APIKey) string {
	var rs []string
	for _, r := range k.Roles {
		rs = append(rs, r.RoleName)
	}
	return strings.Join(rs, ", ")
}
