package pipeline

import (
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/expr"
)

// Source describes $source. The connection's type (from the registry) decides which options
// apply; connectors read Options. Inline documents run here.
type Source struct {
	// ConnectionName is empty for inline documents.
	ConnectionName string
	// Documents are inline documents ($source.documents).
	Documents []bson.Raw
	// TimeField computes the event time from a document; nil means the source's own timestamp.
	TimeField expr.Expr
	// TsFieldName is the field the event time is written to (default "_ts").
	TsFieldName string
	// PartitionIdleTimeout excludes a partition from the watermark after this much idleness
	// (zero: never).
	PartitionIdleTimeout Duration
	// Options is the whole $source document, for connectors.
	Options bson.Raw
}

var sourceFields = []string{"connectionName", "documents", "timeField", "tsFieldName", "partitionIdleTimeout",
	"topic", "partitions", "schemaRegistry", "config", "db", "coll", "initialSync", "readPreference",
	"readPreferenceTags", "stream", "region", "shardIdleTimeout"}

func parseSource(spec bson.RawValue) (*Source, error) {
	doc, ok := spec.DocumentOK()
	if !ok {
		return nil, errf("$source", "", "takes an options document, not %s", typeName(spec))
	}
	if err := checkFields("$source", "", doc, sourceFields...); err != nil {
		return nil, err
	}
	s := &Source{TsFieldName: "_ts", Options: doc}
	conn, hasConn := doc.LookupErr("connectionName")
	docs, hasDocs := doc.LookupErr("documents")
	switch {
	case hasConn == nil && hasDocs == nil:
		return nil, errf("$source", "documents", "cannot be combined with connectionName")
	case hasConn == nil:
		name, ok := conn.StringValueOK()
		if !ok || name == "" {
			return nil, errf("$source", "connectionName", "must be a non-empty string")
		}
		s.ConnectionName = name
	case hasDocs == nil:
		arr, ok := docs.ArrayOK()
		if !ok {
			return nil, errf("$source", "documents", "must be an array of documents")
		}
		vals, _ := arr.Values()
		for i, v := range vals {
			d, ok := v.DocumentOK()
			if !ok {
				return nil, errf("$source", "documents."+itoa(i), "must be a document, not %s", typeName(v))
			}
			s.Documents = append(s.Documents, d)
		}
	default:
		return nil, errf("$source", "connectionName", "is required (or give inline documents)")
	}
	if v, err := doc.LookupErr("timeField"); err == nil {
		d, ok := v.DocumentOK()
		first, ferr := d.IndexErr(0)
		if !ok || ferr != nil || (first.Key() != "$toDate" && first.Key() != "$dateFromString") {
			return nil, errf("$source", "timeField", "must be a $toDate or $dateFromString expression")
		}
		if s.TimeField, err = compileExpr("$source", "timeField", v); err != nil {
			return nil, err
		}
	}
	if v, err := doc.LookupErr("tsFieldName"); err == nil {
		name, ok := v.StringValueOK()
		if !ok || name == "" || name[0] == '$' || strings.ContainsRune(name, 0) {
			return nil, errf("$source", "tsFieldName", "must be a field name that does not start with '$'")
		}
		s.TsFieldName = name
	}
	if v, err := doc.LookupErr("partitionIdleTimeout"); err == nil {
		if s.PartitionIdleTimeout, err = parseDuration("$source", "partitionIdleTimeout", v, false); err != nil {
			return nil, err
		}
	}
	if v, err := doc.LookupErr("topic"); err == nil {
		switch v.Type {
		case bson.TypeString:
		case bson.TypeArray:
			vals, _ := v.Array().Values()
			if len(vals) == 0 {
				return nil, errf("$source", "topic", "must name at least one topic")
			}
			for i, t := range vals {
				if _, ok := t.StringValueOK(); !ok {
					return nil, errf("$source", "topic."+itoa(i), "must be a string")
				}
			}
		default:
			return nil, errf("$source", "topic", "must be a string or an array of strings")
		}
	}
	if v, err := doc.LookupErr("config"); err == nil && v.Type != bson.TypeEmbeddedDocument {
		return nil, errf("$source", "config", "must be a document")
	}
	return s, nil
}
