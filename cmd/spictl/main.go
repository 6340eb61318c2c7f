// Command spictl is the command-line client of spid's control plane: it lists, shows, creates,
// updates and deletes workspaces, connections, database users, custom roles and API keys, and
// creates, starts, stops, modifies and deletes stream processors.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spi-streams/spi/admin/client"
)

const usage = `spictl manages spid's control plane (its Admin API) from the command line.

Usage:
  spictl [flags] <resource> <verb> [arguments] [flags]

Resources and verbs:
  workspaces, ws      list | get NAME | create | update NAME | delete NAME
  connections, conn   list | get NAME | create | update NAME | delete NAME
                      of the workspace --workspace NAME (default "default")
  users               list | get [DATABASE] USERNAME | create | update [DATABASE] USERNAME |
                      delete [DATABASE] USERNAME  (DATABASE defaults to admin; X.509 users
                      are in '$external')
  roles               list | get NAME | create | update NAME | delete NAME
  keys                list | get ID | create | update ID | delete ID
  processors, proc    list | get NAME | create | start NAME | stop NAME | modify NAME |
                      delete NAME  of the workspace --workspace NAME (default "default")

Bodies of create and update: --file PATH reads a JSON object ('-' for stdin); these flags are
merged over it. Flags marked * are for create only: nothing can be renamed.
  workspaces   --name* NAME --tier SP2|SP5|SP10|SP30|SP50
               --sample* (add the sample_stream_solar connection)
  connections  --name* NAME --type Kafka|Cluster|Sample|Https --bootstrap-servers HOST:PORT,...
               --mechanism PLAIN|SCRAM-256|SCRAM-512 --protocol SASL_SSL|SASL_PLAINTEXT|SSL|PLAINTEXT
               --username USER --password-env VAR --ca-file PEM (Kafka: the brokers' CA)
               --url URL (Https) --cluster-name NAME --connection-string mongodb://...
               --execute-as ROLE[:BUILT_IN|CUSTOM] (the Cluster's execute-as role; or --role,
               --role-type) --username USER --password-env VAR (its identity)
  users        --username* NAME --database* DB --x509* --password PASSWORD | --password-env VAR
               --role ROLE (repeatable) --scope WORKSPACE (repeatable)
  roles        --name* NAME --action ACTION[@DB[.COLLECTION]] (repeatable)
               --inherit ROLE[@DB] (repeatable)
  keys         --desc TEXT --role GROUP_ROLE (repeatable)
  processors   --name NAME (create; on modify it renames) --pipeline JSON (the array of stages,
               Extended JSON) or --file PATH (the array of stages, or a whole StreamsProcessor
               object) --dlq CONNECTION.DB.COLL --no-dlq (modify) --tier SP2|...|SP50
               --no-resume (start and modify: resumeFromCheckpoint false, start afresh);
               start takes --tier and --no-resume
list takes --page N and --limit N (items per page); workspaces get takes --connections.

Server, API key and output (before or after the resource):
  --url URL          the control plane [SPI_ADMIN_URL, default http://127.0.0.1:8080];
                     after "connections", --url is an Https URL: use --admin-url there
  --ca-file PEM      CA certificate(s) an https:// control plane's certificate must chain to
                     [SPI_CA_FILE, config "caFile"]; after "connections", use --admin-ca-file
  --group ID         the project id [SPI_GROUP_ID]
  --public-key KEY   [SPI_PUBLIC_KEY]
  --private-key KEY  [SPI_PRIVATE_KEY] (the variable keeps it out of shell history)
  --config PATH      [SPI_CONFIG, default ~/.config/spi/spictl.json] a JSON file with "url",
                     "groupId", "publicKey", "privateKey"; spid's first-start file
                     <data-dir>/initial-credentials.json works as it is
  --json             print the server's JSON reply instead of a table
Flags win over environment variables, which win over the config file.

Exit status: 0 on success, 1 when a request fails, 2 on a usage error.

Examples:
  spictl ws create --name dev --tier SP10
  spictl conn create --workspace dev --name events --type Kafka --bootstrap-servers kafka:9092
  spictl users create --username alice --password-env ALICE_PW --role readAnyDatabase --scope dev
  spictl keys create --desc CI --role GROUP_READ_ONLY
  spictl proc create --name solar --file pipeline.json --dlq cluster0.errors.dlq
  spictl proc start solar --no-resume
`

const shortUsage = `usage: spictl <resource> <verb> [arguments] [flags]
  resources: workspaces (ws), connections (conn), users, roles, keys, processors (proc)
  verbs:     list, get, create, update, delete; processors: start, stop, modify
Run 'spictl help' for details.
`

var verbs = []string{"list", "get", "create", "update", "delete"}

// resourceUsage is each resource's own usage, printed after a usage error in its command.
var resourceUsage = map[string]string{
	"workspaces": `usage: spictl workspaces list | get NAME | create | update NAME | delete NAME [flags]
  create, update: --name* NAME --tier SP2|SP5|SP10|SP30|SP50 --sample* --file PATH
  list: --page N --limit N; get: --connections
`,
	"connections": `usage: spictl connections list | get NAME | create | update NAME | delete NAME [flags]
  --workspace NAME (default "default")
  create, update: --name* NAME --type Kafka|Cluster|Sample|Https --file PATH
    Kafka:   --bootstrap-servers HOST:PORT,... --mechanism PLAIN|SCRAM-256|SCRAM-512
             --protocol SASL_SSL|SASL_PLAINTEXT|SSL|PLAINTEXT --username USER
             --password-env VAR (or --password) --ca-file PEM (the brokers' CA certificate)
             --ssl-cert-file PEM --ssl-key-file PEM (protocol SSL: the client certificate and key)
    Cluster: --cluster-name NAME --connection-string mongodb://...
             --execute-as ROLE[:BUILT_IN|CUSTOM] --username USER --password-env VAR
    Https:   --url URL
  list: --page N --limit N
  The control plane's URL and CA are --admin-url and --admin-ca-file here.
`,
	"users": `usage: spictl users list | get [DATABASE] USERNAME | create | update [DATABASE] USERNAME |
       delete [DATABASE] USERNAME [flags]
  create, update: --username* NAME --database* DB --x509* --password PASSWORD | --password-env VAR
                  --role ROLE (repeatable) --scope WORKSPACE (repeatable) --file PATH
  list: --page N --limit N
`,
	"roles": `usage: spictl roles list | get NAME | create | update NAME | delete NAME [flags]
  create, update: --name* NAME --action ACTION[@DB[.COLLECTION]] (repeatable)
                  --inherit ROLE[@DB] (repeatable) --file PATH
`,
	"keys": `usage: spictl keys list | get ID | create | update ID | delete ID [flags]
  create, update: --desc TEXT --role GROUP_ROLE (repeatable) --file PATH
  list: --page N --limit N
`,
}

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run is spictl without the process: it returns the exit status.
func run(args []string, env func(string) string, stdout, stderr io.Writer) int {
	return cli{env: env, stdin: os.Stdin, stdout: stdout, stderr: stderr}.run(args)
}

// cli is one invocation's environment.
type cli struct {
	env            func(string) string
	stdin          io.Reader
	stdout, stderr io.Writer
}

// usageError is a mistake on the command line: exit status 2 and the short usage.
type usageError string

func (e usageError) Error() string { return string(e) }

func usagef(format string, a ...any) error { return usageError(fmt.Sprintf(format, a...)) }

func (c cli) run(args []string) int {
	var o options
	err := c.runErr(args, &o)
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errHelp):
		_, _ = io.WriteString(c.stdout, usage)
		return 0
	case errors.As(err, &ue):
		short := shortUsage
		if o.res != nil {
			short = resourceUsage[o.res.name] + "Run 'spictl help' for the global flags.\n"
		}
		_, _ = fmt.Fprintf(c.stderr, "spictl: %v\n%s", err, short)
		return 2
	}
	_, _ = fmt.Fprintf(c.stderr, "spictl: %v\n", err)
	var ae *client.Error
	switch {
	case errors.As(err, &ae) && ae.Status == http.StatusUnauthorized:
		_, _ = fmt.Fprintln(c.stderr, "spictl: check the API key: --public-key and --private-key, SPI_PUBLIC_KEY and SPI_PRIVATE_KEY, or the config file")
	case errors.Is(err, syscall.ECONNREFUSED):
		_, _ = fmt.Fprintf(c.stderr, "spictl: is spid running? No control plane answers at %s (set --url or SPI_ADMIN_URL)\n", o.baseURL)
	}
	return 1
}

func (c cli) runErr(args []string, o *options) error {
	// Flags before the resource are the global ones; after it, the resource's and the global ones.
	global := newFlagSet("spictl")
	o.globalFlags(global)
	if err := global.Parse(args); err != nil {
		return err
	}
	args = global.Args()
	if len(args) == 0 {
		return usagef("missing resource")
	}
	if args[0] == "help" {
		return errHelp
	}
	r := lookup(args[0])
	if r == nil {
		return usagef("unknown resource %q", args[0])
	}
	o.res = r
	fs := newFlagSet(r.name)
	fs.StringVar(&o.file, "file", "", "")
	fs.onlyFor("create update", "file")
	if r.paged {
		fs.IntVar(&o.page, "page", 0, "")
		fs.IntVar(&o.limit, "limit", 0, "")
		fs.onlyFor("list", "page", "limit")
	}
	r.flags(fs, o)
	o.globalFlags(fs)
	pos, err := fs.parseAll(args[1:])
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("missing verb after %s: one of %s", r.name, strings.Join(r.verbNames(), ", "))
	}
	verb, pos := pos[0], pos[1:]
	if verb == "help" {
		return errHelp
	}
	if !slices.Contains(r.verbNames(), verb) {
		return usagef("unknown verb %q for %s: one of %s", verb, r.name, strings.Join(r.verbNames(), ", "))
	}
	if err := fs.check(verb); err != nil {
		return err
	}
	if v, ok := r.verbAlias[verb]; ok {
		verb = v
	}
	if o.passwordEnv != "" {
		if o.password != "" {
			return usagef("give --password or --password-env, not both")
		}
		if o.password = c.env(o.passwordEnv); o.password == "" {
			return usagef("--password-env %s: the variable is not set", o.passwordEnv)
		}
	}
	req, err := c.request(r, o, verb, pos)
	if err != nil {
		return err
	}
	cfg, err := c.credentials(o)
	if err != nil {
		return err
	}
	cfg.HTTPClient = &http.Client{Timeout: time.Minute}
	if caFile := first(o.caFile, c.env("SPI_CA_FILE"), o.fileCAFile); caFile != "" {
		if cfg.RootCAs, err = client.LoadCAFile(caFile); err != nil {
			return usagef("--ca-file: %v", err)
		}
	}
	var reply json.RawMessage
	if err := client.New(cfg).Do(context.Background(), req.method, req.path, req.body, &reply); err != nil {
		return err
	}
	return c.print(r, o, verb, req.label, reply)
}

// request is what one command sends.
type request struct {
	method, path string
	body         any    // nil: no body
	label        string // names the object in messages
}

func (c cli) request(r *resource, o *options, verb string, args []string) (request, error) {
	var req request
	switch verb {
	case "list", "create":
		if len(args) > 0 {
			return req, usagef("%s %s takes no arguments, got %q", r.name, verb, strings.Join(args, " "))
		}
	default:
		path, label, err := r.item(o, args)
		if err != nil {
			return req, err
		}
		req.path, req.label = path, label
	}
	switch verb {
	case "list":
		req.method = http.MethodGet
		req.path = r.collection(o)
		if r.paged {
			req.path += client.ListOptions{ItemsPerPage: o.limit, PageNum: o.page}.Query()
		}
	case "get":
		req.method = http.MethodGet
		if r.getQuery != nil {
			req.path += r.getQuery(o)
		}
	case "create", "update":
		req.method = http.MethodPatch
		if verb == "create" {
			req.method = http.MethodPost
			req.path = r.collection(o)
			if r.createPath != nil {
				req.path = r.createPath(o)
			}
		}
		body, err := c.body(r, o, verb)
		if err != nil {
			return req, err
		}
		req.body = body // set only here: a nil map in an interface would be sent as null
	case "delete":
		req.method = http.MethodDelete
	default:
		if a, ok := r.actions[verb]; ok {
			suffix, body, err := a.request(o)
			if err != nil {
				return req, err
			}
			req.method, req.path, req.body = http.MethodPost, req.path+suffix, body
		}
	}
	return req, nil
}

// print shows a reply: raw JSON with --json, else a table or key/value lines.
func (c cli) print(r *resource, o *options, verb, label string, reply []byte) error {
	if o.json {
		if len(reply) == 0 {
			return nil
		}
		return printJSON(c.stdout, reply)
	}
	switch verb {
	case "list":
		return r.list(c.stdout, reply)
	case "delete":
		_, err := fmt.Fprintf(c.stdout, "Deleted %s %s.\n", r.noun, label)
		return err
	}
	if a, ok := r.actions[verb]; ok {
		_, err := fmt.Fprintf(c.stdout, "%s %s %s.\n", a.past, r.noun, label)
		return err
	}
	if err := r.show(c.stdout, reply); err != nil {
		return err
	}
	if verb == "create" && r.created != nil {
		return r.created(c.stdout, reply)
	}
	return nil
}
