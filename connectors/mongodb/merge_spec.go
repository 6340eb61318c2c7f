package mongodb

import (
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/spi-streams/spi/connectors"
	"github.com/spi-streams/spi/pipeline"
	"github.com/spi-streams/spi/pipeline/expr"
)

// Limits of the $merge sink.
const (
	// maxTargets is Atlas's limit on the distinct namespaces a dynamic into.db/into.coll may
	// name in one processor (spec §3.8 and §9, "Dynamic sink targets ≤ 1000 distinct").
	maxTargets = 1000
	// defaultBatchSize is the number of writes sent in one unordered bulk write when the stage
	// does not set batchSize; maxBatchSize is MongoDB's maxWriteBatchSize (100,000).
	defaultBatchSize = 10_000
	maxBatchSize     = 100_000
	// maxDBNameBytes and maxNamespaceBytes are MongoDB's limits on a database name and on
	// db.coll (MongoDB manual, "Naming Restrictions").
	maxDBNameBytes    = 63
	maxNamespaceBytes = 255
)

// whenMatched and whenNotMatched modes (MongoDB manual, $merge; spec §3.8). "pipeline" stands
// for a whenMatched pipeline.
var (
	matchedModes    = map[string]bool{"replace": true, "keepExisting": true, "merge": true, "delete": true, "fail": true}
	notMatchedModes = map[string]bool{"insert": true, "discard": true, "fail": true}
)

// comboError says why a whenMatched/whenNotMatched pair cannot be used, or "" if it can. The
// pairs mongod refuses with code 51181 (keepExisting or fail with discard or fail: its merge
// strategies do not include them, jstests/aggregation/sources/merge/all_modes.js) are refused
// here too; delete (Atlas, 2025-06) goes with all three.
func comboError(wm, wnm string) string {
	if (wm == "keepExisting" || wm == "fail") && wnm != "insert" {
		return fmt.Sprintf("whenMatched %s with whenNotMatched %s is not a supported combination (MongoDB's $merge refuses it too, code 51181); %s goes only with whenNotMatched insert", wm, wnm, wm)
	}
	return ""
}

// needsProbe says whether the write of a mode pair depends on whether a document matches, which
// the sink finds out with a find before writing: whenMatched fail or a pipeline, whenNotMatched
// fail, and delete with insert.
func needsProbe(wm, wnm string) bool {
	return wm == "fail" || wm == "pipeline" || wnm == "fail" || (wm == "delete" && wnm == "insert")
}

// letVar is one variable of $merge.let: its name and compiled expression, evaluated against the
// document $merge writes.
type letVar struct {
	name string
	e    expr.Expr
}

// mergeSpec is a $merge stage as the Cluster connection runs it.
type mergeSpec struct {
	// db and coll are a static target; dbExpr or collExpr replace them when they are
	// expressions (evaluated per document).
	db, coll         string
	dbExpr, collExpr expr.Expr
	on               []string
	onID             bool // on includes _id
	// whenMatched is a mode, "pipeline", or "" when wmExpr gives the mode per document;
	// whenNotMatched likewise with wnmExpr.
	whenMatched, whenNotMatched string
	wmExpr, wnmExpr             expr.Expr
	// wmPipeline is a whenMatched pipeline, as written; wmStages its compiled stages when it
	// uses no variable (otherwise it is compiled per document with the variables' values).
	wmPipeline bson.RawValue
	wmStages   []pipeline.Stage
	usesVars   bool
	let        []letVar
	// parallelism is how many targets are written at once; batchSize the writes per bulk write.
	parallelism int
	batchSize   int
}

// dynamic says whether the target is evaluated per document.
func (m *mergeSpec) dynamic() bool { return m.dbExpr != nil || m.collExpr != nil }

// evaluates says whether any expression is evaluated per document.
func (m *mergeSpec) evaluates() bool {
	return m.dynamic() || m.wmExpr != nil || m.wnmExpr != nil || len(m.let) > 0
}

// dbNameError says why MongoDB refuses db as a database name, or "" if it does not (MongoDB
// manual, "Naming Restrictions": not empty, none of /\. "$ or the null character, fewer than 64
// bytes). Shared by every namespace a Cluster connection names: $merge (into.db), the time
// series $emit, options.dlq and $lookup's from.
func dbNameError(db string) string {
	switch {
	case db == "":
		return "the database name is empty"
	case strings.ContainsAny(db, "/\\. \"$\x00"):
		return fmt.Sprintf("%q is not a valid database name: MongoDB refuses the characters /\\. \"$ and the null character in one", db)
	case len(db) > maxDBNameBytes:
		return fmt.Sprintf("database name %q is longer than MongoDB's %d bytes", db, maxDBNameBytes)
	}
	return ""
}

// collNameError says why MongoDB refuses coll as the name of a collection spid writes to or
// reads, or "" if it does not (MongoDB manual, "Naming Restrictions": not empty, no $ and no
// null character, not starting with "system.", which is reserved for MongoDB's own collections).
func collNameError(coll string) string {
	switch {
	case coll == "":
		return "the collection name is empty"
	case strings.ContainsAny(coll, "$\x00"):
		return fmt.Sprintf("%q is not a valid collection name: MongoDB refuses $ and the null character in one", coll)
	case strings.HasPrefix(coll, "system."):
		return fmt.Sprintf("%q is not a valid collection name: the system. prefix is reserved for MongoDB's own collections", coll)
	}
	return ""
}

// nsNameError checks db and coll with dbNameError and collNameError, and says which of them
// ("db" or "coll") is refused and why; field is "" when both are valid. The fully qualified
// namespace db.coll must also be at most 255 bytes (MongoDB manual, "Naming Restrictions").
func nsNameError(db, coll string) (field, reason string) {
	if msg := dbNameError(db); msg != "" {
		return "db", msg
	}
	if msg := collNameError(coll); msg != "" {
		return "coll", msg
	}
	if n := len(db) + 1 + len(coll); n > maxNamespaceBytes {
		return "coll", fmt.Sprintf("the namespace <db>.<coll> is %d bytes, over MongoDB's %d", n, maxNamespaceBytes)
	}
	return "", ""
}

// nsError says why db.coll is not a namespace $merge may write to, or "".
func nsError(db, coll string) string {
	_, msg := nsNameError(db, coll)
	return msg
}

// parseMerge reads the $merge options that pipeline.parseMerge has checked for shape. Errors are
// connectors.Invalid (420) naming the field, as $merge.<field>.
func parseMerge(opts bson.Raw) (mergeSpec, error) {
	m := mergeSpec{parallelism: 1, batchSize: defaultBatchSize}
	into, _ := opts.Lookup("into").DocumentOK()
	for _, f := range []struct {
		name string
		dst  *string
		e    *expr.Expr
	}{{"db", &m.db, &m.dbExpr}, {"coll", &m.coll, &m.collExpr}} {
		v := into.Lookup(f.name)
		switch s, ok := v.StringValueOK(); {
		case ok && !strings.HasPrefix(s, "$"):
			if s == "" {
				return m, connectors.Invalid("$merge.into.%s: must not be empty", f.name)
			}
			*f.dst = s
		case ok || v.Type == bson.TypeEmbeddedDocument:
			e, err := expr.Compile(v)
			if err != nil {
				return m, connectors.Invalid("$merge.into.%s: %v", f.name, err)
			}
			*f.e = e
		default:
			return m, connectors.Invalid("$merge.into.%s: is required: a name or an expression that evaluates to one", f.name)
		}
	}
	// A static name MongoDB refuses is refused here (420 naming the field), never sent.
	if m.dbExpr == nil && m.collExpr == nil {
		if field, msg := nsNameError(m.db, m.coll); msg != "" {
			return m, connectors.Invalid("$merge.into.%s: %s", field, msg)
		}
	} else if m.dbExpr == nil {
		if msg := dbNameError(m.db); msg != "" {
			return m, connectors.Invalid("$merge.into.db: %s", msg)
		}
	} else if m.collExpr == nil {
		if msg := collNameError(m.coll); msg != "" {
			return m, connectors.Invalid("$merge.into.coll: %s", msg)
		}
	}
	m.on = []string{"_id"}
	if v, err := opts.LookupErr("on"); err == nil {
		switch v.Type {
		case bson.TypeString:
			m.on = []string{v.StringValue()}
		case bson.TypeArray:
			vals, _ := v.Array().Values()
			m.on = m.on[:0]
			for _, f := range vals {
				m.on = append(m.on, f.StringValue())
			}
		}
	}
	seen := map[string]bool{}
	for _, f := range m.on {
		if f == "" || strings.HasPrefix(f, "$") || strings.Contains(f, "..") || strings.HasPrefix(f, ".") || strings.HasSuffix(f, ".") {
			return m, connectors.Invalid("$merge.on: %q is not a field path", f)
		}
		if seen[f] {
			return m, connectors.Invalid("$merge.on: field %q is named twice", f)
		}
		seen[f] = true
		if f == "_id" {
			m.onID = true
		}
	}
	var letNames []string
	if v, err := opts.LookupErr("let"); err == nil {
		doc, ok := v.DocumentOK()
		if !ok {
			return m, connectors.Invalid("$merge.let: must be a document of variables, {name: <expression>}")
		}
		// The expression compiler checks the names as $let does (a lowercase first letter).
		idx, b := bsoncore.AppendDocumentStart(nil)
		b = bsoncore.AppendDocumentElement(b, "vars", doc)
		b = bsoncore.AppendNullElement(b, "in")
		b, _ = bsoncore.AppendDocumentEnd(b, idx)
		lidx, l := bsoncore.AppendDocumentStart(nil)
		l = bsoncore.AppendDocumentElement(l, "$let", b)
		l, _ = bsoncore.AppendDocumentEnd(l, lidx)
		if _, err := expr.Compile(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: l}); err != nil {
			return m, connectors.Invalid("$merge.let: %v", err)
		}
		elems, _ := doc.Elements()
		for _, e := range elems {
			if e.Key() == "new" {
				return m, connectors.Invalid("$merge.let.new: new is reserved: $$new is always the document $merge writes")
			}
			ce, err := expr.Compile(e.Value())
			if err != nil {
				return m, connectors.Invalid("$merge.let.%s: %v", e.Key(), err)
			}
			m.let = append(m.let, letVar{name: e.Key(), e: ce})
			letNames = append(letNames, e.Key())
		}
	}
	m.whenMatched, m.whenNotMatched = "merge", "insert"
	if v, err := opts.LookupErr("whenMatched"); err == nil {
		switch str, _ := v.StringValueOK(); {
		case v.Type == bson.TypeString && !strings.HasPrefix(str, "$"):
			if !matchedModes[v.StringValue()] {
				return m, connectors.Invalid("$merge.whenMatched: %q is not a mode; use replace, keepExisting, merge, delete, fail, a pipeline or an expression", v.StringValue())
			}
			m.whenMatched = v.StringValue()
		case v.Type == bson.TypeArray:
			m.whenMatched, m.wmPipeline = "pipeline", v
			vars := placeholderVars(letNames)
			rewritten, used := substituteVars(v, vars)
			stages, err := pipeline.ParseUpdateStages(rewritten)
			if err != nil {
				return m, connectors.Invalid("$merge.whenMatched: %v", err)
			}
			m.usesVars = used
			if !used {
				m.wmStages = stages
			}
		default:
			e, err := expr.Compile(v)
			if err != nil {
				return m, connectors.Invalid("$merge.whenMatched: %v", err)
			}
			m.whenMatched, m.wmExpr = "", e
		}
	}
	if len(m.let) > 0 && m.whenMatched != "pipeline" {
		return m, connectors.Invalid("$merge.let: is only used by a whenMatched pipeline (MongoDB's $merge refuses let without one)")
	}
	if v, err := opts.LookupErr("whenNotMatched"); err == nil {
		switch str, _ := v.StringValueOK(); {
		case v.Type == bson.TypeString && !strings.HasPrefix(str, "$"):
			if !notMatchedModes[v.StringValue()] {
				return m, connectors.Invalid("$merge.whenNotMatched: %q is not a mode; use insert, discard, fail or an expression", v.StringValue())
			}
			m.whenNotMatched = v.StringValue()
		default:
			e, err := expr.Compile(v)
			if err != nil {
				return m, connectors.Invalid("$merge.whenNotMatched: %v", err)
			}
			m.whenNotMatched, m.wnmExpr = "", e
		}
	}
	if m.whenMatched != "" && m.whenNotMatched != "" {
		if msg := comboError(m.whenMatched, m.whenNotMatched); msg != "" {
			return m, connectors.Invalid("$merge.whenMatched: %s", msg)
		}
	}
	if v, err := opts.LookupErr("parallelism"); err == nil {
		n, ok := v.AsInt64OK()
		if !ok || n < 1 || n > 16 {
			return m, connectors.Invalid("$merge.parallelism: must be an integer from 1 to 16")
		}
		m.parallelism = int(n)
	}
	if v, err := opts.LookupErr("batchSize"); err == nil {
		n, ok := v.AsInt64OK()
		if !ok || n < 1 || n > maxBatchSize {
			return m, connectors.Invalid("$merge.batchSize: must be an integer from 1 to %d (MongoDB's maxWriteBatchSize)", maxBatchSize)
		}
		m.batchSize = int(n)
	}
	return m, nil
}

// placeholderVars is a variables document binding new and each let name to null: what a
// pipeline is checked with at create, before any document gives them values.
func placeholderVars(names []string) bson.Raw {
	idx, b := bsoncore.AppendDocumentStart(nil)
	b = bsoncore.AppendNullElement(b, "new")
	for _, n := range names {
		b = bsoncore.AppendNullElement(b, n)
	}
	b, _ = bsoncore.AppendDocumentEnd(b, idx)
	return b
}

// substituteVars returns v with every "$$name" or "$$name.path" string whose name vars binds
// replaced by {$literal: <the value>} ("$$REMOVE" when the path is missing), leaving $literal
// documents alone; used says whether it replaced any. This is how a whenMatched pipeline sees
// $$new and the let variables (MongoDB manual, $merge, "let"): the expression compiler binds no
// outside variable, so their values are written into the pipeline per document.
func substituteVars(v bson.RawValue, vars bson.Raw) (bson.RawValue, bool) {
	used := false
	out := substValue(nil, v, vars, &used)
	return bson.RawValue{Type: bson.Type(out.Type), Value: out.Data}, used
}

func substValue(dst []byte, v bson.RawValue, vars bson.Raw, used *bool) bsoncore.Value {
	switch v.Type {
	case bson.TypeString:
		s := v.StringValue()
		if !strings.HasPrefix(s, "$$") {
			break
		}
		name, rest, dotted := strings.Cut(s[2:], ".")
		val, err := vars.LookupErr(name)
		if err != nil {
			break
		}
		*used = true
		if dotted {
			if d, ok := val.DocumentOK(); ok {
				val, err = d.LookupErr(strings.Split(rest, ".")...)
			} else {
				err = fmt.Errorf("not a document")
			}
		}
		if err != nil {
			return bsoncore.Value{Type: bsoncore.TypeString, Data: bsoncore.AppendString(dst, "$$REMOVE")}
		}
		idx, b := bsoncore.AppendDocumentStart(dst)
		b = bsoncore.AppendValueElement(b, "$literal", bsoncore.Value{Type: bsoncore.Type(val.Type), Data: val.Value})
		b, _ = bsoncore.AppendDocumentEnd(b, idx)
		return bsoncore.Value{Type: bsoncore.TypeEmbeddedDocument, Data: b}
	case bson.TypeEmbeddedDocument, bson.TypeArray:
		var elems []bson.RawElement
		if v.Type == bson.TypeEmbeddedDocument {
			doc := v.Document()
			if first, err := doc.IndexErr(0); err == nil && first.Key() == "$literal" {
				break
			}
			elems, _ = doc.Elements()
		} else {
			elems, _ = bson.Raw(v.Value).Elements()
		}
		idx, b := bsoncore.AppendDocumentStart(dst)
		for _, e := range elems {
			sub := substValue(nil, e.Value(), vars, used)
			b = bsoncore.AppendValueElement(b, e.Key(), sub)
		}
		b, _ = bsoncore.AppendDocumentEnd(b, idx)
		return bsoncore.Value{Type: bsoncore.Type(v.Type), Data: b}
	}
	return bsoncore.Value{Type: bsoncore.Type(v.Type), Data: v.Value}
}
