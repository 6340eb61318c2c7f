package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
)

// resource is one kind of object the API manages: where it lives, the flags that build its
// bodies and how it is shown.
type resource struct {
	name    string
	aliases []string
	noun    string // singular, for messages
	paged   bool   // list takes itemsPerPage and pageNum
	// flags registers the resource's flags.
	flags func(fs *flagSet, o *options)
	// collection is the path of list and create.
	collection func(o *options) string
	// createPath, if set, overrides collection for create.
	createPath func(o *options) string
	// item is the path of get, update and delete and a label for messages, from the arguments.
	item func(o *options, args []string) (path, label string, err error)
	// getQuery, if set, is added to the path of get.
	getQuery func(o *options) string
	// apply merges the body flags over body (from --file or empty).
	apply func(o *options, body map[string]any, verb string) error
	// list and show print a reply as a table and as key/value lines.
	list, show func(w io.Writer, reply []byte) error
	// created, if set, prints what only the reply to create holds.
	created func(w io.Writer, reply []byte) error
	// verbs, if set, are the resource's verbs instead of the common ones.
	verbs []string
	// verbAlias maps a verb to the common verb that does its work (processors' modify is an
	// update).
	verbAlias map[string]string
	// actions are verbs that POST to the item's path plus a suffix (processors' :start).
	actions map[string]action
	// readFile, if set, reads --file into the body instead of the default (one JSON object).
	readFile func(data []byte, body map[string]any) error
}

// action is a verb beyond the common ones.
type action struct {
	// past says what was done, for the message: "Started".
	past string
	// request returns the suffix of the item's path and the body (nil for none).
	request func(o *options) (suffix string, body any, err error)
}

// verbNames are the verbs a resource takes.
func (r *resource) verbNames() []string {
	if r.verbs != nil {
		return r.verbs
	}
	return verbs
}

var resources = []*resource{workspaces, connections, users, roles, keys, processors}

func lookup(name string) *resource {
	for _, r := range resources {
		if r.name == name || slices.Contains(r.aliases, name) {
			return r
		}
	}
	return nil
}

// body reads --file, merges the flags over it and insists on something to send.
func (c cli) body(r *resource, o *options, verb string) (map[string]any, error) {
	var body map[string]any
	if o.file != "" {
		var data []byte
		var err error
		if o.file == "-" {
			data, err = io.ReadAll(c.stdin)
		} else {
			data, err = os.ReadFile(o.file)
		}
		if err != nil {
			return nil, fmt.Errorf("--file: %w", err)
		}
		if r.readFile != nil {
			body = map[string]any{}
			if err := r.readFile(data, body); err != nil {
				return nil, fmt.Errorf("--file %s: %w", o.file, err)
			}
			return c.applied(r, o, verb, body)
		}
		// Numbers stay as written: a float64 round trip would change large integers.
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&body); err != nil {
			return nil, fmt.Errorf("--file %s: want one JSON object: %w", o.file, err)
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("--file %s: want one JSON object, found more after it", o.file)
		}
	}
	if body == nil {
		body = map[string]any{}
	}
	return c.applied(r, o, verb, body)
}

// applied merges the flags over body and insists on something to send.
func (c cli) applied(r *resource, o *options, verb string, body map[string]any) (map[string]any, error) {
	if err := r.apply(o, body, verb); err != nil {
		return nil, err
	}
	if len(body) == 0 {
		return nil, usagef("%s %s needs a body: --file PATH or flags (see spictl help)", r.name, verb)
	}
	return body, nil
}

// set stores v at a path of nested objects in m, creating them as needed; "" is not set.
func set(m map[string]any, v any, path ...string) {
	if s, ok := v.(string); ok && s == "" {
		return
	}
	for _, k := range path[:len(path)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[path[len(path)-1]] = v
}

// has reports whether a path of nested objects in m holds a value.
func has(m map[string]any, path ...string) bool {
	for _, k := range path[:len(path)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			return false
		}
		m = next
	}
	_, ok := m[path[len(path)-1]]
	return ok
}

// esc escapes one path segment: X.509 user names hold commas, '=' and spaces.
func esc(s string) string { return url.PathEscape(s) }

// oneArg is the item of resources named by one argument.
func oneArg(what string, path func(o *options, arg string) string) func(*options, []string) (string, string, error) {
	return func(o *options, args []string) (string, string, error) {
		if len(args) != 1 {
			return "", "", usagef("want one argument, the %s; got %d", what, len(args))
		}
		return path(o, args[0]), fmt.Sprintf("%q", args[0]), nil
	}
}
