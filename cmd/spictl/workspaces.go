package main

import (
	"io"
	"strings"

	"github.com/spi-streams/spi/admin/client"
)

var workspaces = &resource{
	name: "workspaces", aliases: []string{"ws", "workspace"}, noun: "workspace", paged: true,
	flags: func(fs *flagSet, o *options) {
		fs.StringVar(&o.name, "name", "", "")
		fs.StringVar(&o.tier, "tier", "", "")
		fs.BoolVar(&o.sample, "sample", false, "")
		fs.onlyFor("create", "name", "sample") // workspaces, like everything here, cannot be renamed
		fs.onlyFor("create update", "tier")
		fs.BoolVar(&o.withConns, "connections", false, "")
		fs.onlyFor("get", "connections")
	},
	collection: func(*options) string { return "/streams" },
	createPath: func(o *options) string {
		if o.sample {
			return "/streams:withSampleConnections"
		}
		return "/streams"
	},
	item: oneArg("workspace name", func(_ *options, name string) string { return "/streams/" + esc(name) }),
	getQuery: func(o *options) string {
		if o.withConns {
			return "?includeConnections=true"
		}
		return ""
	},
	apply: func(o *options, b map[string]any, _ string) error {
		set(b, o.name, "name")
		set(b, strings.ToUpper(o.tier), "streamConfig", "tier")
		return nil
	},
	list: pageOf("workspaces", []string{"NAME", "TIER", "MAX TIER", "REGION", "HOSTNAMES"}, func(w client.Workspace) []string {
		tier, maxTier := streamConfig(w)
		return []string{w.Name, tier, maxTier, region(w.DataProcessRegion), strings.Join(w.Hostnames, ", ")}
	}),
	show: showAs(func(out io.Writer, w client.Workspace) error {
		tier, maxTier := streamConfig(w)
		sample := ""
		if w.SampleConnections != nil && w.SampleConnections.Solar {
			sample = "sample_stream_solar"
		}
		var conns []string
		for _, c := range w.Connections {
			conns = append(conns, c.Name+" ("+c.Type+")")
		}
		return fields(out,
			"Name", w.Name,
			"ID", w.ID,
			"Tier", tier,
			"Max tier", maxTier,
			"Region", region(w.DataProcessRegion),
			"Hostnames", strings.Join(w.Hostnames, ", "),
			"Sample connections", sample,
			"Connections", strings.Join(conns, ", "))
	}),
}

func streamConfig(w client.Workspace) (tier, maxTier string) {
	if w.StreamConfig == nil {
		return "", ""
	}
	return w.StreamConfig.Tier, w.StreamConfig.MaxTierSize
}

func region(r *client.Region) string {
	if r == nil || r.CloudProvider+r.Region == "" {
		return ""
	}
	return r.CloudProvider + " " + r.Region
}
