package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// errHelp asks for the full usage text (spictl help, -h, --help).
var errHelp = flag.ErrHelp

// options holds every flag; each resource registers the ones it uses.
type options struct {
	// Server, API key and output.
	url, group, publicKey, privateKey, config string
	caFile                                    string // the control plane's CA (--ca-file, --admin-ca-file)
	json                                      bool
	baseURL                                   string // resolved, for messages
	res                                       *resource
	fileCAFile                                string // caFile of the config file

	// Request.
	file        string
	page, limit int
	workspace   string
	withConns   bool

	// Body flags.
	name, tier, desc                                 string
	sample, x509                                     bool
	typ, bootstrap, connURL, clusterName, connString string
	role, roleType                                   string
	mechanism, protocol, brokerCAFile, executeAs     string
	sslCertFile, sslKeyFile                          string
	username, password, passwordEnv, database        string
	roles, scopes, actions, inherits                 listFlag
	proc                                             procFlags
}

// globalFlags registers the server, API key and output flags, keeping values already parsed
// and leaving out names the resource uses for something else (connections' --url).
func (o *options) globalFlags(fs *flagSet) {
	str := func(p *string, names ...string) {
		for _, n := range names {
			if fs.Lookup(n) == nil {
				fs.StringVar(p, n, *p, "")
			}
		}
	}
	str(&o.url, "url", "admin-url")
	str(&o.group, "group")
	str(&o.publicKey, "public-key")
	str(&o.privateKey, "private-key")
	str(&o.config, "config")
	str(&o.caFile, "ca-file", "admin-ca-file")
	fs.BoolVar(&o.json, "json", o.json, "")
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	*l = append(*l, s)
	return nil
}

// flagSet is a flag.FlagSet that takes flags between positional arguments and knows which
// verbs each flag applies to.
type flagSet struct {
	*flag.FlagSet
	only map[string][]string
}

func newFlagSet(name string) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // run prints errors and usage itself
	fs.Usage = func() {}
	return &flagSet{FlagSet: fs, only: map[string][]string{}}
}

// onlyFor restricts flags to some verbs (space-separated).
func (fs *flagSet) onlyFor(verbs string, names ...string) {
	for _, n := range names {
		fs.only[n] = strings.Fields(verbs)
	}
}

// parseAll parses flags anywhere in args and returns the positional arguments; after "--"
// everything is positional.
func (fs *flagSet) parseAll(args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// Parse parses leading flags, turning flag errors into usage errors.
func (fs *flagSet) Parse(args []string) error {
	err := fs.FlagSet.Parse(args)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return usageError(err.Error())
}

// check rejects flags given with a verb they do not apply to, rather than ignoring them.
func (fs *flagSet) check(verb string) error {
	var err error
	fs.Visit(func(f *flag.Flag) {
		verbs, ok := fs.only[f.Name]
		if !ok || slices.Contains(verbs, verb) || err != nil {
			return
		}
		msg := fmt.Sprintf("--%s applies to %s %s, not %s", f.Name, fs.Name(), strings.Join(verbs, " and "), verb)
		switch f.Name {
		case "url":
			msg += `; give the control plane's URL as --admin-url`
		case "ca-file":
			msg += `; give the control plane's CA as --admin-ca-file`
		}
		err = usageError(msg)
	})
	return err
}
