package commands

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// parameters are the server parameters getParameter reports, in the order "*" lists them.
var parameters = []struct {
	name  string
	value func(r *Reply, key string)
}{
	{"featureCompatibilityVersion", func(r *Reply, key string) {
		r.Doc(key)
		r.String("version", "7.0")
		r.EndDoc()
	}},
}

// getParameter reads server parameters: {getParameter: 1, <name>: 1, ...} or
// {getParameter: "*"}, optionally {getParameter: {showDetails: true}}. Asking for nothing spid
// knows fails the way mongod fails ("no option found to get"), which is also what mongosh's
// server-identification probe ({getParameter: "foo"}) expects from a genuine server.
func getParameter(_ context.Context, call *Call, r *Reply) error {
	all := false
	details := false
	switch call.Arg.Type {
	case bson.TypeString:
		all = call.Arg.StringValue() == "*"
	case bson.TypeEmbeddedDocument:
		doc := call.Arg.Document()
		if v, err := doc.LookupErr("allParameters"); err == nil {
			all, _ = v.BooleanOK()
		}
		if v, err := doc.LookupErr("showDetails"); err == nil {
			details, _ = v.BooleanOK()
		}
	}
	found := 0
	for _, p := range parameters {
		if !all {
			if _, err := call.Body.LookupErr(p.name); err != nil {
				continue
			}
		}
		found++
		if details {
			r.Doc(p.name)
			p.value(r, "value")
			r.Bool("settableAtRuntime", false)
			r.Bool("settableAtStartup", false)
			r.EndDoc()
		} else {
			p.value(r, p.name)
		}
	}
	if found == 0 {
		return Errorf(CodeInvalidOptions, "no option found to get")
	}
	return nil
}
