package pipeline

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/spi-streams/spi/pipeline/expr"
	"github.com/spi-streams/spi/pipeline/match"
	"github.com/spi-streams/spi/pipeline/value"
)

// LookupSource fetches documents of a foreign collection for $lookup and $cachedLookup. A
// connector implements it (connectors/mongodb, over the Go driver, under the connection's
// execute-as identity); the processor binds one to each lookup stage (Lookup.Bind) before the
// engine runs.
type LookupSource interface {
	// Find returns the collection's documents that match filter, a MongoDB query document (an
	// empty document matches every document). The documents belong to the caller. An error is
	// the deployment's, not the document's (unreachable, refused credentials or privileges):
	// the engine stops and Engine.Err reports it, so the processor fails the attempt and
	// retries; it never becomes a dead letter.
	Find(ctx context.Context, filter bson.Raw) ([]bson.Raw, error)
}

// Lookup is one $lookup or $cachedLookup stage of a plan as a connector sees it: the foreign
// collection ({from: {connectionName, db, coll}}, spec §3.4) it reads.
type Lookup struct {
	// Stage is "$lookup" or "$cachedLookup".
	Stage                    string
	ConnectionName, DB, Coll string
	st                       *lookupStage
}

// Bind gives the stage the source it fetches from and the context of the attempt it runs in.
func (l *Lookup) Bind(ctx context.Context, src LookupSource) { l.st.ctx, l.st.src = ctx, src }

// MaxMemUsageBytes is a $cachedLookup's maxMemUsageBytes (0 for $lookup), which the processor
// checks against 12.5 % of its tier's RAM (spec §3.4 and §9).
func (l *Lookup) MaxMemUsageBytes() int64 {
	if c := l.st.cache; c != nil {
		return c.max
	}
	return 0
}

// fatalError is a stage failure that is not the document's: the engine stops its batch and
// reports it through Engine.Err.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

// lookupStage is $lookup (equality: localField/foreignField; let/pipeline; the concise
// correlated form with both) and $cachedLookup (equality only, with a cache), following
// MongoDB's $lookup manual page: localField is compared with foreignField by query equality,
// so an array localField matches any of its elements, a missing or null localField (or an
// empty array) matches documents whose foreignField is null or missing, and an array
// foreignField matches by any element (localKeys); the matches go, as an array, into the
// field as names (replacing what was there).
//
// The equality part is a find on the deployment ({foreignField: {$in: [...]}}). A pipeline
// runs in spid's own engine over what that find returns (the whole collection when there is no
// equality part), with the let variables bound per document; an equality $expr on a let
// variable at the head of the pipeline ({$eq: ["$f", "$$v"]}, alone or in $and) narrows the
// find too ({f: value}, which matches a superset), so the deployment does the selection. In
// the engine's chains the documents of one engine call share one find (flush); elsewhere each
// document has its own.
type lookupStage struct {
	name                string // "$lookup" or "$cachedLookup"
	conn, db, coll      string
	localPath           []string // localField, split
	localField, foreign string
	as                  []string
	letNames            []string
	letExprs            []expr.Expr
	pipeline            bson.Raw // the raw pipeline, compiled per let values when it uses let variables
	stages              []Stage  // the compiled pipeline, when it uses no let variable
	usesVars            bool
	pushdown            []eqPush
	cache               *lookupCache
	ctx                 context.Context
	src                 LookupSource
	now                 func() time.Time
	// batched says the stage queues its documents (pending) for the engine's drain, which
	// answers them with one find (flush); buf is its output buffer there.
	batched bool
	pending []pendingLookup
	buf     []byte
	// byVals are pipelines compiled for let values (compiled), at most maxCompiled.
	byVals map[string][]Stage
}

// eqPush is {$eq: ["$path", "$$name"]} at the head of a lookup pipeline.
type eqPush struct{ path, name string }

func parseLookup(spec bson.RawValue) (Stage, error) { return parseLookupStage("$lookup", spec) }
func parseCachedLookup(spec bson.RawValue) (Stage, error) {
	return parseLookupStage("$cachedLookup", spec)
}

// parseLookupStage checks a $lookup or $cachedLookup document (spec §3.4; Atlas's $lookup and
// $cachedLookup pages): from {connectionName, db, coll} is required; localField and
// foreignField come together; let needs pipeline; as is required; parallelism is 1 to 16;
// $cachedLookup also requires ttl {size, unit} and maxMemUsageBytes, and takes no let or
// pipeline.
func parseLookupStage(name string, spec bson.RawValue) (Stage, error) {
	doc, ok := spec.DocumentOK()
	if !ok {
		return nil, errf(name, "", "takes an options document, not %s", typeName(spec))
	}
	allowed := []string{"from", "localField", "foreignField", "let", "pipeline", "as", "parallelism", "partitionBy"}
	if name == "$cachedLookup" {
		allowed = []string{"from", "localField", "foreignField", "as", "ttl", "maxMemUsageBytes"}
		for _, f := range []string{"let", "pipeline"} {
			if _, err := doc.LookupErr(f); err == nil {
				return nil, errf(name, f, "is not supported by $cachedLookup (only localField/foreignField); use $lookup")
			}
		}
	}
	if err := checkFields(name, "", doc, allowed...); err != nil {
		return nil, err
	}
	s := &lookupStage{name: name, now: time.Now}
	from, err := doc.LookupErr("from")
	if err != nil {
		if _, p := doc.LookupErr("pipeline"); p == nil {
			return nil, errf(name, "from", "is required: the collectionless form ($documents in pipeline) is not supported yet by spid")
		}
		return nil, errf(name, "from", "is required: {connectionName, db, coll}")
	}
	fd, ok := from.DocumentOK()
	if !ok {
		return nil, errf(name, "from", "must be {connectionName, db, coll}, not %s (a bare collection name is only for a $lookup nested in a pipeline)", typeName(from))
	}
	if err := checkFields(name, "from", fd, "connectionName", "db", "coll"); err != nil {
		return nil, err
	}
	for _, f := range []string{"connectionName", "db", "coll"} {
		v := fd.Lookup(f)
		if s, ok := v.StringValueOK(); !ok || s == "" {
			return nil, errf(name, "from."+f, "is required and must be a non-empty string, not %s", typeName(v))
		}
	}
	if db := fd.Lookup("db").StringValue(); strings.ContainsAny(db, "/\\. \"$\x00") {
		return nil, errf(name, "from.db", "%q is not a valid database name", db)
	}
	if coll := fd.Lookup("coll").StringValue(); strings.ContainsAny(coll, "$\x00") {
		return nil, errf(name, "from.coll", "%q is not a valid collection name", coll)
	}
	s.conn, s.db, s.coll = fd.Lookup("connectionName").StringValue(), fd.Lookup("db").StringValue(), fd.Lookup("coll").StringValue()
	asV := doc.Lookup("as")
	as, ok := asV.StringValueOK()
	if !ok || as == "" {
		return nil, errf(name, "as", "is required and must be a field name, not %s", typeName(asV))
	}
	if err := checkFieldPath(name, "as", as); err != nil {
		return nil, err
	}
	s.as = splitPath(as)
	lf, lerr := doc.LookupErr("localField")
	ff, ferr := doc.LookupErr("foreignField")
	switch {
	case lerr == nil && ferr != nil:
		return nil, errf(name, "foreignField", "is required with localField")
	case lerr != nil && ferr == nil:
		return nil, errf(name, "localField", "is required with foreignField")
	case lerr == nil:
		for _, f := range []struct {
			field string
			v     bson.RawValue
			dst   *string
		}{{"localField", lf, &s.localField}, {"foreignField", ff, &s.foreign}} {
			str, ok := f.v.StringValueOK()
			if !ok || str == "" {
				return nil, errf(name, f.field, "must be a field path string, not %s", typeName(f.v))
			}
			if err := checkFieldPath(name, f.field, str); err != nil {
				return nil, err
			}
			*f.dst = str
		}
		s.localPath = splitPath(s.localField)
	}
	pv, perr := doc.LookupErr("pipeline")
	if lv, err := doc.LookupErr("let"); err == nil {
		if perr != nil {
			return nil, errf(name, "let", "needs a pipeline: let variables are only visible in pipeline")
		}
		ld, ok := lv.DocumentOK()
		if !ok {
			return nil, errf(name, "let", "must be a document of {<variable>: <expression>}, not %s", typeName(lv))
		}
		elems, _ := ld.Elements()
		for _, e := range elems {
			if err := checkVarName(e.Key()); err != nil {
				return nil, errf(name, "let."+e.Key(), "%v", err)
			}
			x, err := compileExpr(name, "let."+e.Key(), e.Value())
			if err != nil {
				return nil, err
			}
			s.letNames = append(s.letNames, e.Key())
			s.letExprs = append(s.letExprs, x)
		}
	}
	if perr == nil {
		arr, ok := pv.ArrayOK()
		if !ok {
			return nil, errf(name, "pipeline", "must be an array of stages, not %s", typeName(pv))
		}
		s.pipeline = bson.Raw(arr)
		// Compile it once with every variable bound to null: this checks the pipeline, and is the
		// pipeline itself when it names no variable.
		stages, used, err := compileLookupPipeline(name, s.pipeline, s.letNames, nil)
		if err != nil {
			return nil, err
		}
		s.usesVars = used
		if !used {
			s.stages = stages
		}
		s.pushdown = findPushdown(s.pipeline, s.letNames)
	}
	if s.localField == "" && perr != nil {
		return nil, errf(name, "localField", "localField and foreignField, or pipeline, are required")
	}
	if v, err := doc.LookupErr("parallelism"); err == nil {
		n, err := intField(name, "parallelism", v)
		if err != nil {
			return nil, err
		}
		if n < 1 || n > 16 {
			return nil, errf(name, "parallelism", "must be 1 to 16, not %d", n)
		}
	}
	if v, err := doc.LookupErr("partitionBy"); err == nil {
		if _, err := compileExpr(name, "partitionBy", v); err != nil {
			return nil, err
		}
	}
	if name == "$cachedLookup" {
		if s.localField == "" {
			return nil, errf(name, "localField", "is required: $cachedLookup joins on localField/foreignField")
		}
		ttlV, err := doc.LookupErr("ttl")
		if err != nil {
			return nil, errf(name, "ttl", "is required: {size: <int>, unit: \"ms|second|minute|hour|day\"}")
		}
		ttl, err := parseDuration(name, "ttl", ttlV, false)
		if err != nil {
			return nil, err
		}
		if ttl.Size <= 0 {
			return nil, errf(name, "ttl.size", "must be positive, not %d", ttl.Size)
		}
		mv, err := doc.LookupErr("maxMemUsageBytes")
		if err != nil {
			return nil, errf(name, "maxMemUsageBytes", "is required: the most bytes the cache may hold")
		}
		maxMem, err := intField(name, "maxMemUsageBytes", mv)
		if err != nil {
			return nil, err
		}
		if maxMem <= 0 {
			return nil, errf(name, "maxMemUsageBytes", "must be positive, not %d", maxMem)
		}
		s.cache = newLookupCache(time.Duration(ttl.Millis())*time.Millisecond, maxMem)
	}
	return s, nil
}

// checkFieldPath refuses what is not a field path: empty parts, a '$' prefix, a null byte.
func checkFieldPath(stage, field, p string) error {
	for _, part := range strings.Split(p, ".") {
		if part == "" || part[0] == '$' || strings.IndexByte(part, 0) >= 0 {
			return errf(stage, field, "%q is not a field path (no '$' prefix, no empty part)", p)
		}
	}
	return nil
}

// checkVarName applies mongod's rule for user variable names: a lowercase letter or a
// non-ASCII character first, then letters, digits and '_'.
func checkVarName(n string) error {
	for i, r := range n {
		switch {
		case r >= 'a' && r <= 'z', r > 127:
		case i > 0 && (r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_'):
		default:
			return fmt.Errorf("%q is not a valid variable name: it must start with a lowercase letter and hold only letters, digits and '_'", n)
		}
	}
	if n == "" {
		return errors.New("a variable name must not be empty")
	}
	return nil
}

// compileLookupPipeline compiles a lookup's pipeline with the let variables names bound to
// vals (null when vals is nil): each "$$name" or "$$name.path" inside an expression becomes
// {$let: {vars: {name: {$literal: value}}, in: "$$name.path"}}, so the expression engine
// reads the value with its own path rules. In a $match, only $expr is an expression. used says
// whether the pipeline names any variable.
func compileLookupPipeline(stage string, pipe bson.Raw, names []string, vals []bson.RawValue) (out []Stage, used bool, err error) {
	vs, _ := bson.RawArray(pipe).Values()
	for i, v := range vs {
		at := "pipeline." + strconv.Itoa(i)
		sname, spec, perr := stageOf(i, v)
		if perr != nil {
			return nil, false, errf(stage, at, "%s", perr.(*ParseError).Msg)
		}
		def, ok := stages[sname]
		switch {
		case sname == "$lookup" || sname == "$cachedLookup":
			return nil, false, errf(stage, at, "a nested %s is not supported yet by spid", sname)
		case !ok:
			e := unknownStage(i, sname).(*ParseError)
			return nil, false, errf(stage, at, "%s %s", sname, e.Msg)
		case def.where&inWindow == 0 || def.parse == nil:
			return nil, false, errf(stage, at, "%s is not allowed inside a $lookup pipeline", sname)
		}
		if len(names) > 0 {
			var u bool
			if spec, u = bindVars(sname, spec, names, vals); u {
				used = true
			}
		}
		st, err := def.parse(spec)
		if err != nil {
			if pe, ok := err.(*ParseError); ok {
				return nil, false, errf(stage, at+"."+pe.Stage+fieldSuffix(pe.Field), "%s", pe.Msg)
			}
			return nil, false, errf(stage, at+"."+sname, "%v", err)
		}
		out = append(out, st)
	}
	return out, used, nil
}

// bindVars returns spec with the let variables bound (see compileLookupPipeline).
func bindVars(stage string, spec bson.RawValue, names []string, vals []bson.RawValue) (bson.RawValue, bool) {
	if stage == "$match" {
		doc, ok := spec.DocumentOK()
		if !ok {
			return spec, false
		}
		used := false
		idx, out := bsoncore.AppendDocumentStart(nil)
		elems, _ := doc.Elements()
		for _, e := range elems {
			v := e.Value()
			if e.Key() == "$expr" {
				var u bool
				v, u = substitute(v, names, vals)
				used = used || u
			}
			out = bsoncore.AppendValueElement(out, e.Key(), bsoncore.Value{Type: bsoncore.Type(v.Type), Data: v.Value})
		}
		out, _ = bsoncore.AppendDocumentEnd(out, idx)
		return bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: out}, used
	}
	return substitute(spec, names, vals)
}

// substitute replaces, anywhere in v, a string "$$name[.path]" of a let variable by an
// expression that yields its value.
func substitute(v bson.RawValue, names []string, vals []bson.RawValue) (bson.RawValue, bool) {
	switch v.Type {
	case bson.TypeString:
		s := v.StringValue()
		if !strings.HasPrefix(s, "$$") {
			return v, false
		}
		n, _, _ := strings.Cut(s[2:], ".")
		for i, name := range names {
			if n != name {
				continue
			}
			val := nullValue
			if vals != nil {
				val = vals[i]
			}
			b := bsoncore.NewDocumentBuilder().AppendDocument("$let", bsoncore.NewDocumentBuilder().
				AppendDocument("vars", letValue(name, val)).
				AppendString("in", s).Build()).Build()
			return bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: b}, true
		}
		return v, false
	case bson.TypeEmbeddedDocument, bson.TypeArray:
		elems, err := bson.Raw(v.Value).Elements()
		if err != nil {
			return v, false
		}
		used := false
		idx, out := bsoncore.AppendDocumentStart(nil)
		for _, e := range elems {
			ev, u := substitute(e.Value(), names, vals)
			used = used || u
			out = bsoncore.AppendValueElement(out, e.Key(), bsoncore.Value{Type: bsoncore.Type(ev.Type), Data: ev.Value})
		}
		out, _ = bsoncore.AppendDocumentEnd(out, idx)
		if !used {
			return v, false
		}
		return bson.RawValue{Type: v.Type, Value: out}, true
	}
	return v, false
}

// letValue is {name: {$literal: val}}, or {name: "$$REMOVE"} for a missing value.
func letValue(name string, val bson.RawValue) bsoncore.Document {
	if val.Type == 0 {
		return bsoncore.NewDocumentBuilder().AppendString(name, "$$REMOVE").Build()
	}
	lit := bsoncore.NewDocumentBuilder().AppendValue("$literal", bsoncore.Value{Type: bsoncore.Type(val.Type), Data: val.Value}).Build()
	return bsoncore.NewDocumentBuilder().AppendDocument(name, lit).Build()
}

// findPushdown finds {$eq: ["$path", "$$name"]} (either order) in the $expr of a $match that
// opens the pipeline, alone or directly under $and: conditions the find may carry as
// {path: value}, which matches every document the $eq matches (and possibly more, which the
// pipeline then drops).
func findPushdown(pipe bson.Raw, names []string) []eqPush {
	if len(names) == 0 {
		return nil
	}
	first, err := bson.RawArray(pipe).IndexErr(0)
	if err != nil {
		return nil
	}
	st, ok := first.DocumentOK()
	if !ok {
		return nil
	}
	ex, err := st.LookupErr("$match", "$expr")
	if err != nil {
		return nil
	}
	var out []eqPush
	var walk func(v bson.RawValue)
	walk = func(v bson.RawValue) {
		d, ok := v.DocumentOK()
		if !ok {
			return
		}
		elems, _ := d.Elements()
		if len(elems) != 1 {
			return
		}
		args, ok := elems[0].Value().ArrayOK()
		if !ok {
			return
		}
		vals, _ := args.Values()
		switch elems[0].Key() {
		case "$and":
			for _, a := range vals {
				walk(a)
			}
		case "$eq":
			if len(vals) != 2 {
				return
			}
			a, aok := vals[0].StringValueOK()
			b, bok := vals[1].StringValueOK()
			if !aok || !bok {
				return
			}
			if strings.HasPrefix(a, "$$") {
				a, b = b, a
			}
			if !strings.HasPrefix(a, "$") || strings.HasPrefix(a, "$$") || !strings.HasPrefix(b, "$$") || strings.Contains(b, ".") {
				return
			}
			for _, n := range names {
				if n == b[2:] {
					out = append(out, eqPush{path: a[1:], name: n})
				}
			}
		}
	}
	walk(ex)
	return out
}

func (s *lookupStage) Name() string { return s.name }

// lookupReq is what a lookup needs to know of one document: its let values, the $in array
// of its equality part, and the find's filter.
type lookupReq struct {
	vals   []bson.RawValue
	keys   bson.RawValue
	filter bson.Raw
}

// prepare evaluates a document's let variables and localField; an error is the document's.
func (s *lookupStage) prepare(d *Doc) (lookupReq, error) {
	var r lookupReq
	env := envFor(d.Raw, d)
	for _, x := range s.letExprs {
		v, err := x.Eval(env)
		if err != nil {
			return r, failed(s.name, fmt.Errorf("let: %w", err))
		}
		r.vals = append(r.vals, copyValue(v))
	}
	if s.localPath != nil {
		r.keys = localKeys(d.Raw, s.localPath)
	}
	r.filter = s.filter(r.keys, r.vals)
	return r, nil
}

// finish runs the pipeline over a document's matches and sets them, as an array, in as.
func (s *lookupStage) finish(d *Doc, r lookupReq, docs []bson.Raw, buf *[]byte, emit func(*Doc)) error {
	if s.pipeline != nil {
		stages := s.stages
		if s.usesVars {
			var err error
			if stages, err = s.compiled(r.vals); err != nil {
				return failed(s.name, err)
			}
		}
		var err error
		if docs, err = runLocal(stages, docs); err != nil {
			return failed(s.name, err)
		}
	}
	idx, arr := bsoncore.AppendArrayStart(nil)
	for i, x := range docs {
		arr = bsoncore.AppendDocumentElement(arr, strconv.Itoa(i), x)
	}
	arr, _ = bsoncore.AppendArrayEnd(arr, idx)
	av := bson.RawValue{Type: bson.TypeArray, Value: arr}
	out := setPath(d.Raw, s.as, &av, scratch(buf, len(d.Raw)+len(arr)+len(s.as[0])+8))
	keep(buf, out)
	d.keepMetaFree(out, func(n string) bool { return n == s.as[0] })
	d.Raw = out
	emit(d)
	return nil
}

// maxCompiled bounds the pipelines compiled for let values that a stage keeps for reuse.
const maxCompiled = 256

// compiled returns the pipeline compiled with the let variables bound to vals, reusing the
// one compiled for the same values before (the stages keep no state between documents).
func (s *lookupStage) compiled(vals []bson.RawValue) ([]Stage, error) {
	var kb []byte
	for _, v := range vals {
		kb = append(kb, byte(v.Type))
		kb = binary.LittleEndian.AppendUint32(kb, uint32(len(v.Value)))
		kb = append(kb, v.Value...)
	}
	if st, ok := s.byVals[string(kb)]; ok {
		return st, nil
	}
	st, _, err := compileLookupPipeline(s.name, s.pipeline, s.letNames, vals)
	if err != nil {
		return nil, err
	}
	if s.byVals == nil || len(s.byVals) >= maxCompiled {
		s.byVals = map[string][]Stage{}
	}
	s.byVals[string(kb)] = st
	return st, nil
}

// find runs one find and counts it.
func (s *lookupStage) find(filter bson.Raw) ([]bson.Raw, error) {
	if s.src == nil {
		return nil, &fatalError{fmt.Errorf("%s: no connection bound to the stage", s.name)}
	}
	docs, err := s.src.Find(s.ctx, filter)
	if err != nil {
		return nil, &fatalError{err}
	}
	return docs, nil
}

// Process looks a document up. In a chain of the engine (batched), it only queues a copy of
// the document: the engine's drain answers the queued documents of a call together (flush).
// Elsewhere (a window's stages after $group) it runs one find for the document.
func (s *lookupStage) Process(d *Doc, buf *[]byte, emit func(*Doc)) error {
	if s.batched {
		if s.src == nil {
			return &fatalError{fmt.Errorf("%s: no connection bound to the stage", s.name)}
		}
		kept := d.retain()
		kept.metaField = d.metaField
		s.pending = append(s.pending, pendingLookup{d: kept, emit: emit})
		return nil
	}
	r, err := s.prepare(d)
	if err != nil {
		return err
	}
	var docs []bson.Raw
	var cached bool
	if s.cache != nil {
		docs, cached = s.cache.get(string(r.keys.Value), s.now())
	}
	if !cached {
		if docs, err = s.find(r.filter); err != nil {
			return err
		}
		if s.cache != nil {
			s.cache.put(string(r.keys.Value), docs, s.now())
		}
	}
	return s.finish(d, r, docs, buf, emit)
}

// pendingLookup is a document queued by a batched lookup, with where its output goes.
type pendingLookup struct {
	d    *Doc
	emit func(*Doc)
}

// flush answers the queued documents with one find: {foreignField: {$in: <every key>}} for
// the equality form (and $cachedLookup's keys the cache does not hold), or the $or of the
// documents' filters (one filter, or none, when they share it). Each document then gets the
// fetched documents its own filter matches (spid's query matcher, MongoDB's query semantics),
// in the collection's order, as with a find of its own. A document's own failure (let,
// localField, the pipeline) goes to dead; a failure of the find is returned (fatal).
func (s *lookupStage) flush(dead func(d *Doc, err error)) error {
	pend := s.pending
	s.pending = nil
	if len(pend) == 0 {
		return nil
	}
	reqs := make([]lookupReq, len(pend))
	ok := make([]bool, len(pend))
	hits := make([][]bson.Raw, len(pend))
	hit := make([]bool, len(pend))
	now := s.now()
	var filters []bson.Raw // distinct filters of the documents to fetch for
	seen := map[string]bool{}
	keyIdx, keys := bsoncore.AppendArrayStart(nil) // every equality key, for the $in form
	nkeys := 0
	seenKey := map[string]bool{}
	for i, p := range pend {
		r, err := s.prepare(p.d)
		if err != nil {
			dead(p.d, err)
			continue
		}
		reqs[i], ok[i] = r, true
		if s.cache != nil {
			if hits[i], hit[i] = s.cache.get(string(r.keys.Value), now); hit[i] {
				continue
			}
		}
		if !seen[string(r.filter)] {
			seen[string(r.filter)] = true
			filters = append(filters, r.filter)
		}
		if s.localPath != nil {
			vals, _ := bson.RawArray(r.keys.Value).Values()
			for _, v := range vals {
				k := string(rune(v.Type)) + string(v.Value)
				if !seenKey[k] {
					seenKey[k] = true
					keys = bsoncore.AppendValueElement(keys, strconv.Itoa(nkeys), bsoncore.Value{Type: bsoncore.Type(v.Type), Data: v.Value})
					nkeys++
				}
			}
		}
	}
	keys, _ = bsoncore.AppendArrayEnd(keys, keyIdx)
	var fetched []bson.Raw
	if len(filters) > 0 {
		var union bson.Raw
		matchAll := false
		for _, f := range filters {
			matchAll = matchAll || len(f) == 5
		}
		switch {
		case len(filters) == 1:
			union = filters[0]
		case matchAll:
			union = bson.Raw{5, 0, 0, 0, 0} // a document without condition: all of them
		case s.localPath != nil && len(s.pushdown) == 0:
			union = s.filter(bson.RawValue{Type: bson.TypeArray, Value: keys}, nil)
		case s.localPath == nil && len(s.pushdown) == 1:
			// The filters are all {path: {$eq: v}}: one {path: {$in: [v...]}} is their $or.
			union = s.pushdownIn(filters)
		default:
			idx, u := bsoncore.AppendDocumentStart(nil)
			aidx, a := bsoncore.AppendArrayElementStart(u, "$or")
			for i, f := range filters {
				a = bsoncore.AppendDocumentElement(a, strconv.Itoa(i), f)
			}
			u, _ = bsoncore.AppendArrayEnd(a, aidx)
			u, _ = bsoncore.AppendDocumentEnd(u, idx)
			union = u
		}
		var err error
		if fetched, err = s.find(union); err != nil {
			return err
		}
	}
	// The matches of each distinct filter, found once.
	matches := map[string][]bson.Raw{}
	for i, p := range pend {
		if !ok[i] {
			continue
		}
		r := reqs[i]
		docs := hits[i]
		if !hit[i] {
			var found bool
			if docs, found = matches[string(r.filter)]; !found {
				if len(filters) == 1 {
					docs = fetched
				} else {
					m, err := match.Compile(r.filter, match.Options{})
					if err != nil {
						dead(p.d, failed(s.name, err))
						continue
					}
					docs = nil
					for _, f := range fetched {
						if yes, err := m.Match(f, nil); err == nil && yes {
							docs = append(docs, f)
						}
					}
				}
				matches[string(r.filter)] = docs
				if s.cache != nil {
					s.cache.put(string(r.keys.Value), docs, now)
				}
			}
		}
		if err := s.finish(p.d, r, docs, &s.buf, p.emit); err != nil {
			dead(p.d, err)
		}
	}
	return nil
}

// localKeys is the set of values localField holds in doc, as mongod's $lookup matches them
// (jstests/aggregation/sources/lookup/lookup_equijoin_semantics.js): the path is followed
// into the documents of arrays on its way; an array at its end gives its elements (an array
// element stays one value); no value at all (missing, or an empty array) gives null, which
// matches a null or missing foreignField. The values are returned as a BSON array, for $in.
func localKeys(doc bson.Raw, path []string) bson.RawValue {
	idx, arr := bsoncore.AppendArrayStart(nil)
	n := 0
	add := func(v bson.RawValue) {
		if v.Type == bson.TypeUndefined {
			v = nullValue
		}
		arr = bsoncore.AppendValueElement(arr, strconv.Itoa(n), bsoncore.Value{Type: bsoncore.Type(v.Type), Data: v.Value})
		n++
	}
	var walk func(v bson.RawValue, path []string)
	walk = func(v bson.RawValue, path []string) {
		if len(path) == 0 {
			if v.Type == bson.TypeArray {
				vals, _ := bson.RawArray(v.Value).Values()
				for _, e := range vals {
					add(e)
				}
			} else if v.Type != 0 {
				add(v)
			}
			return
		}
		switch v.Type {
		case bson.TypeEmbeddedDocument:
			walk(value.Lookup(v.Value, path[0]), path[1:])
		case bson.TypeArray:
			vals, _ := bson.RawArray(v.Value).Values()
			for _, e := range vals {
				if e.Type == bson.TypeEmbeddedDocument {
					walk(value.Lookup(e.Value, path[0]), path[1:])
				}
			}
		}
	}
	walk(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: doc}, path)
	if n == 0 {
		add(nullValue)
	}
	arr, _ = bsoncore.AppendArrayEnd(arr, idx)
	return bson.RawValue{Type: bson.TypeArray, Value: arr}
}

// filter is the find's query: {foreignField: {$in: keys}} and the pushed-down equalities.
func (s *lookupStage) filter(keys bson.RawValue, vals []bson.RawValue) bson.Raw {
	idx, f := bsoncore.AppendDocumentStart(nil)
	var conds [][]byte
	if keys.Type == bson.TypeArray {
		in := bsoncore.NewDocumentBuilder().AppendArray("$in", keys.Value).Build()
		conds = append(conds, bsoncore.NewDocumentBuilder().AppendDocument(s.foreign, in).Build())
	}
	for _, p := range s.pushdown {
		for i, n := range s.letNames {
			if n != p.name {
				continue
			}
			v := vals[i]
			switch v.Type {
			case 0, bson.TypeUndefined, bson.TypeRegex, bson.TypeArray:
				// Missing: nothing to compare. A regex would match by pattern, not by
				// equality. An array: "$a.b" over an array of documents is the array of their
				// b's, which {a.b: [...]} does not match, so the find would miss documents
				// the pipeline keeps.
				continue
			}
			eq := bsoncore.NewDocumentBuilder().AppendValue("$eq", bsoncore.Value{Type: bsoncore.Type(v.Type), Data: v.Value}).Build()
			conds = append(conds, bsoncore.NewDocumentBuilder().AppendDocument(p.path, eq).Build())
		}
	}
	switch len(conds) {
	case 0:
	case 1:
		f = append(f, conds[0][4:len(conds[0])-1]...)
	default:
		aidx, a := bsoncore.AppendArrayElementStart(f, "$and")
		for i, c := range conds {
			a = bsoncore.AppendDocumentElement(a, strconv.Itoa(i), c)
		}
		f, _ = bsoncore.AppendArrayEnd(a, aidx)
	}
	f, _ = bsoncore.AppendDocumentEnd(f, idx)
	return f
}

// pushdownIn is {path: {$in: [v...]}} for filters that are each {path: {$eq: v}} (one
// pushed-down equality, no localField).
func (s *lookupStage) pushdownIn(filters []bson.Raw) bson.Raw {
	path := s.pushdown[0].path
	aidx, a := bsoncore.AppendArrayStart(nil)
	for i, f := range filters {
		v := f.Lookup(path, "$eq")
		a = bsoncore.AppendValueElement(a, strconv.Itoa(i), bsoncore.Value{Type: bsoncore.Type(v.Type), Data: v.Value})
	}
	a, _ = bsoncore.AppendArrayEnd(a, aidx)
	in := bsoncore.NewDocumentBuilder().AppendArray("$in", a).Build()
	return bson.Raw(bsoncore.NewDocumentBuilder().AppendDocument(path, in).Build())
}

// runLocal runs a lookup's pipeline over the fetched documents: per document for ordinary
// stages, on the whole list for $sort, $limit and $count, and $group over them all.
func runLocal(stages []Stage, in []bson.Raw) ([]bson.Raw, error) {
	docs := make([]*Doc, len(in))
	for i, r := range in {
		docs[i] = &Doc{Raw: r}
	}
	for _, st := range stages {
		switch t := st.(type) {
		case batchStage:
			var err error
			if docs, err = t.apply(docs); err != nil {
				return nil, err
			}
			continue
		case *groupStage:
			gs := newGroups(0)
			for _, d := range docs {
				if err := t.add(gs, d); err != nil {
					return nil, err
				}
			}
			rs := t.results(gs)
			docs = docs[:0]
			for _, r := range rs {
				docs = append(docs, &Doc{Raw: r})
			}
			continue
		}
		var next []*Doc
		for _, d := range docs {
			if err := st.Process(d, nil, func(o *Doc) { next = append(next, o) }); err != nil {
				return nil, err
			}
		}
		docs = next
	}
	out := make([]bson.Raw, len(docs))
	for i, d := range docs {
		out[i] = d.Raw
	}
	return out, nil
}

// lookups lists the plan's lookup stages, in the main pipeline and inside the window's.
func (p *Plan) lookups() {
	add := func(sts []Stage) {
		for _, st := range sts {
			if l, ok := st.(*lookupStage); ok {
				p.Lookups = append(p.Lookups, &Lookup{Stage: l.name, ConnectionName: l.conn, DB: l.db, Coll: l.coll, st: l})
			}
		}
	}
	add(p.Before)
	if p.Window != nil {
		add(p.Window.pre)
		add(p.Window.post)
	}
	add(p.After)
}
