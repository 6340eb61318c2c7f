package pipeline

import (
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Sink describes the terminal stage ($merge, $emit or $https); connectors implement it.
type Sink struct {
	// Stage is "$merge", "$emit" or "$https".
	Stage          string
	ConnectionName string
	// Options is the whole stage document.
	Options bson.Raw
}

func parseSink(name string, spec bson.RawValue) (*Sink, error) {
	doc, ok := spec.DocumentOK()
	if !ok {
		return nil, errf(name, "", "takes an options document, not %s", typeName(spec))
	}
	s := &Sink{Stage: name, Options: doc}
	var err error
	switch name {
	case "$merge":
		err = parseMerge(doc, s)
	case "$emit":
		err = parseEmit(doc, s)
	case "$https":
		err = parseHTTPS(doc, s)
	}
	return s, err
}

func connectionName(stage, field string, v bson.RawValue) (string, error) {
	name, ok := v.StringValueOK()
	if !ok || name == "" {
		return "", errf(stage, field, "is required and must be a connection name")
	}
	return name, nil
}

// stringOrExpr accepts a string or an expression that evaluates to one.
func stringOrExpr(stage, field string, v bson.RawValue) error {
	switch v.Type {
	case bson.TypeString:
		if v.StringValue() == "" {
			return errf(stage, field, "must not be empty")
		}
		return nil
	case bson.TypeEmbeddedDocument:
		_, err := compileExpr(stage, field, v)
		return err
	case 0:
		return errf(stage, field, "is required")
	}
	return errf(stage, field, "must be a string or an expression, not %s", typeName(v))
}

func parseMerge(doc bson.Raw, s *Sink) error {
	if err := checkFields("$merge", "", doc, "into", "on", "let", "whenMatched", "whenNotMatched", "parallelism", "batchSize"); err != nil {
		return err
	}
	into, ok := doc.Lookup("into").DocumentOK()
	if !ok {
		return errf("$merge", "into", "is required and must be {connectionName, db, coll}")
	}
	if err := checkFields("$merge", "into", into, "connectionName", "db", "coll"); err != nil {
		return err
	}
	var err error
	if s.ConnectionName, err = connectionName("$merge", "into.connectionName", into.Lookup("connectionName")); err != nil {
		return err
	}
	for _, f := range []string{"db", "coll"} {
		if err := stringOrExpr("$merge", "into."+f, into.Lookup(f)); err != nil {
			return err
		}
	}
	if v, err := doc.LookupErr("on"); err == nil {
		switch v.Type {
		case bson.TypeString:
		case bson.TypeArray:
			vals, _ := v.Array().Values()
			if len(vals) == 0 {
				return errf("$merge", "on", "must name at least one field")
			}
			for i, f := range vals {
				if _, ok := f.StringValueOK(); !ok {
					return errf("$merge", "on."+itoa(i), "must be a field name")
				}
			}
		default:
			return errf("$merge", "on", "must be a field name or an array of field names")
		}
	}
	if v, err := doc.LookupErr("whenMatched"); err == nil {
		switch v.Type {
		case bson.TypeString:
			switch str := v.StringValue(); {
			case strings.HasPrefix(str, "$"): // a field path: an expression
				if _, err := compileExpr("$merge", "whenMatched", v); err != nil {
					return err
				}
			case str == "replace", str == "keepExisting", str == "merge", str == "delete", str == "fail":
			default:
				return errf("$merge", "whenMatched", "must be replace, keepExisting, merge, delete, a pipeline or an expression, not %q", v.StringValue())
			}
		case bson.TypeArray:
		case bson.TypeEmbeddedDocument:
			if _, err := compileExpr("$merge", "whenMatched", v); err != nil {
				return err
			}
		default:
			return errf("$merge", "whenMatched", "must be a string, a pipeline or an expression")
		}
	}
	if v, err := doc.LookupErr("whenNotMatched"); err == nil {
		switch v.Type {
		case bson.TypeString:
			if str := v.StringValue(); strings.HasPrefix(str, "$") {
				if _, err := compileExpr("$merge", "whenNotMatched", v); err != nil {
					return err
				}
			} else if str != "insert" && str != "discard" && str != "fail" {
				return errf("$merge", "whenNotMatched", "must be insert, discard, fail or an expression, not %q", str)
			}
		case bson.TypeEmbeddedDocument:
			if _, err := compileExpr("$merge", "whenNotMatched", v); err != nil {
				return err
			}
		default:
			return errf("$merge", "whenNotMatched", "must be a string or an expression")
		}
	}
	if v, err := doc.LookupErr("parallelism"); err == nil {
		n, err := intField("$merge", "parallelism", v)
		if err != nil {
			return err
		}
		if n < 1 || n > 16 {
			return errf("$merge", "parallelism", "must be 1 to 16, not %d", n)
		}
	}
	return nil
}

var emitKafkaConfig = []string{"acks", "compression_type", "dateFormat", "headers", "key", "keyFormat", "outputFormat", "tombstoneWhen"}

func parseEmit(doc bson.Raw, s *Sink) error {
	if err := checkFields("$emit", "", doc, "connectionName", "topic", "db", "coll", "timeseries", "config", "schemaRegistry"); err != nil {
		return err
	}
	var err error
	if s.ConnectionName, err = connectionName("$emit", "connectionName", doc.Lookup("connectionName")); err != nil {
		return err
	}
	_, topicErr := doc.LookupErr("topic")
	_, collErr := doc.LookupErr("coll")
	if builtinSink(s.ConnectionName) && topicErr != nil && collErr != nil {
		return nil
	}
	switch {
	case topicErr == nil && collErr == nil:
		return errf("$emit", "topic", "cannot be combined with db and coll: emit to Kafka or to a time series collection")
	case topicErr == nil:
		if err := stringOrExpr("$emit", "topic", doc.Lookup("topic")); err != nil {
			return err
		}
		if v, err := doc.LookupErr("config"); err == nil {
			cfg, ok := v.DocumentOK()
			if !ok {
				return errf("$emit", "config", "must be a document")
			}
			if err := checkFields("$emit", "config", cfg, emitKafkaConfig...); err != nil {
				return err
			}
			if f, err := cfg.LookupErr("outputFormat"); err == nil {
				if str, _ := f.StringValueOK(); str != "relaxedJson" && str != "canonicalJson" && str != "basicJson" {
					return errf("$emit", "config.outputFormat", "must be relaxedJson, canonicalJson or basicJson")
				}
			}
			if f, err := cfg.LookupErr("keyFormat"); err == nil {
				switch str, _ := f.StringValueOK(); str {
				case "binData", "string", "json", "int", "long":
				default:
					return errf("$emit", "config.keyFormat", "must be binData, string, json, int or long")
				}
			}
		}
	case collErr == nil:
		for _, f := range []string{"db", "coll"} {
			if err := stringOrExpr("$emit", f, doc.Lookup(f)); err != nil {
				return err
			}
		}
		ts, ok := doc.Lookup("timeseries").DocumentOK()
		if !ok {
			return errf("$emit", "timeseries", "is required with db and coll and must include timeField")
		}
		if _, ok := ts.Lookup("timeField").StringValueOK(); !ok {
			return errf("$emit", "timeseries.timeField", "is required")
		}
	default:
		return errf("$emit", "topic", "is required (or db, coll and timeseries for a time series collection)")
	}
	return nil
}

func parseHTTPS(doc bson.Raw, s *Sink) error {
	if err := checkFields("$https", "", doc, "connectionName", "path", "parameters", "method", "headers", "as", "onError", "payload", "config"); err != nil {
		return err
	}
	var err error
	if s.ConnectionName, err = connectionName("$https", "connectionName", doc.Lookup("connectionName")); err != nil {
		return err
	}
	if v, err := doc.LookupErr("method"); err == nil {
		switch str, _ := v.StringValueOK(); str {
		case "GET", "POST", "PUT", "PATCH", "DELETE":
		default:
			return errf("$https", "method", "must be GET, POST, PUT, PATCH or DELETE")
		}
	}
	if v, err := doc.LookupErr("onError"); err == nil {
		switch str, _ := v.StringValueOK(); str {
		case "dlq", "ignore", "fail":
		default:
			return errf("$https", "onError", "must be dlq, ignore or fail")
		}
	}
	return nil
}

// builtinSink reports whether name is one of the sinks that need no registry entry and no
// target: "__testLog" (outputs to the operational log, as in Atlas's tests and Terraform's
// examples) and "__discard" (benchmarks).
func builtinSink(name string) bool { return name == "__testLog" || name == "__discard" }
