package pipeline

import (
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/expr"
	"github.com/spi-streams/spi/pipeline/match"
)

// MaxPipelineSize is the largest pipeline definition accepted.
const MaxPipelineSize = 16 * 1024 * 1024

// Stage is a stateless operator: it takes one document and emits zero or more. An error is a
// per-document failure; the engine turns it into a dead-letter record and goes on.
type Stage interface {
	// Name is the stage's operator name, e.g. "$addFields".
	Name() string
	// Process handles one document. A stage that builds a new document builds it in *buf
	// when buf is not nil, and keeps the grown buffer there for its next document: the
	// engine gives each stage of a chain its own buffer, and whatever keeps a document beyond
	// the call (a window, the output) copies it. With a nil buf the stage allocates.
	Process(d *Doc, buf *[]byte, emit func(*Doc)) error
}

// Plan is a parsed, validated pipeline.
type Plan struct {
	Source *Source
	// Before and After are the stages around the window (all stages when there is none).
	Before []Stage
	Window *WindowSpec
	After  []Stage
	// Sink is nil for a pipeline run by sp.process().
	Sink *Sink
	// Lookups are the $lookup and $cachedLookup stages, wherever they are: the processor
	// binds each to its connection (Lookup.Bind) before running the plan.
	Lookups []*Lookup
}

// ParseOptions says how a pipeline will be used.
type ParseOptions struct {
	// RequireSink is true for sp.createStreamProcessor, false for sp.process.
	RequireSink bool
}

// where a stage may appear.
type where uint8

const (
	inMain where = 1 << iota
	inWindow
)

type stageKind uint8

const (
	kindOrdinary stageKind = iota
	kindSource
	kindSink
	kindWindow
	kindWindowOnly // $group, $sort, $limit, $count
)

type stageDef struct {
	where where
	kind  stageKind
	// parse compiles an ordinary or window-only stage.
	parse func(spec bson.RawValue) (Stage, error)
}

// stages is the table of every stage spi knows, by operator name.
var stages map[string]stageDef

func init() {
	stages = map[string]stageDef{
		"$source":         {where: inMain, kind: kindSource},
		"$merge":          {where: inMain, kind: kindSink},
		"$emit":           {where: inMain, kind: kindSink},
		"$https":          {where: inMain, kind: kindSink},
		"$tumblingWindow": {where: inMain, kind: kindWindow},
		"$hoppingWindow":  {where: inMain, kind: kindWindow},
		"$sessionWindow":  {where: inMain, kind: kindWindow},
		"$match":          {where: inMain | inWindow, parse: parseMatch},
		"$project":        {where: inMain | inWindow, parse: parseProject},
		"$addFields":      {where: inMain | inWindow, parse: parseAddFields("$addFields")},
		"$set":            {where: inMain | inWindow, parse: parseAddFields("$set")},
		"$unset":          {where: inMain | inWindow, parse: parseUnset},
		"$replaceRoot":    {where: inMain | inWindow, parse: parseReplaceRoot},
		"$replaceWith":    {where: inMain | inWindow, parse: parseReplaceWith},
		"$redact":         {where: inMain | inWindow, parse: parseRedact},
		"$unwind":         {where: inMain | inWindow, parse: parseUnwind},
		"$validate":       {where: inMain | inWindow, parse: parseValidate},
		"$setStreamMeta":  {where: inMain, parse: parseSetStreamMeta},
		"$throttle":       {where: inMain, parse: parseThrottle},
		"$lookup":         {where: inMain | inWindow, parse: parseLookup},
		"$cachedLookup":   {where: inMain, parse: parseCachedLookup},
		"$group":          {where: inWindow, kind: kindWindowOnly, parse: parseGroup},
		"$sort":           {where: inWindow, kind: kindWindowOnly, parse: parseSort},
		"$limit":          {where: inWindow, kind: kindWindowOnly, parse: parseLimit},
		"$count":          {where: inWindow, kind: kindWindowOnly, parse: parseCount},
	}
}

// notYet are Atlas stages spi does not run yet; they are refused by name.
var notYet = []string{"$externalFunction", "$vectorSearch", "$iceberg", "$function"}

// stageOf splits a stage document {"$name": spec}.
func stageOf(i int, v bson.RawValue) (string, bson.RawValue, error) {
	doc, ok := v.DocumentOK()
	if !ok {
		return "", bson.RawValue{}, &ParseError{Index: i, Msg: "stage " + strconv.Itoa(i) + " must be an object like {$match: {...}}, not " + typeName(v)}
	}
	elems, err := doc.Elements()
	if err != nil || len(elems) != 1 {
		return "", bson.RawValue{}, &ParseError{Index: i, Msg: "stage " + strconv.Itoa(i) + " must have exactly one field, the stage name"}
	}
	return elems[0].Key(), elems[0].Value(), nil
}

func unknownStage(i int, name string) error {
	for _, n := range notYet {
		if n == name {
			return &ParseError{Index: i, Stage: name, Msg: "is not supported by spi yet"}
		}
	}
	return &ParseError{Index: i, Stage: name, Msg: "is not a stage Atlas Stream Processing supports"}
}

// Parse validates a pipeline (a BSON array of stages) and compiles it.
func Parse(pipeline bson.Raw, opts ParseOptions) (*Plan, error) {
	if len(pipeline) > MaxPipelineSize {
		return nil, &ParseError{Index: -1, Msg: "the pipeline is larger than 16 MB"}
	}
	vals, err := bson.RawArray(pipeline).Values()
	if err != nil {
		return nil, &ParseError{Index: -1, Msg: "the pipeline must be an array of stages"}
	}
	p := &Plan{}
	if len(vals) == 0 {
		return nil, &ParseError{Index: -1, Msg: "the pipeline is empty: it must start with $source"}
	}
	for i, v := range vals {
		name, spec, err := stageOf(i, v)
		if err != nil {
			return nil, err
		}
		def, ok := stages[name]
		if !ok {
			return nil, unknownStage(i, name)
		}
		at := func(e error) error {
			if pe, ok := e.(*ParseError); ok {
				pe.Index = i
				if pe.Stage == "" {
					pe.Stage = name
				}
				return pe
			}
			return &ParseError{Index: i, Stage: name, Msg: e.Error()}
		}
		switch {
		case def.kind == kindSource:
			if i != 0 {
				return nil, at(errf(name, "", "must be the first stage, and appear once"))
			}
			src, err := parseSource(spec)
			if err != nil {
				return nil, at(err)
			}
			p.Source = src
			continue
		case i == 0:
			return nil, &ParseError{Index: 0, Stage: name, Msg: "cannot be the first stage: a pipeline starts with $source"}
		case def.kind == kindSink:
			if i != len(vals)-1 {
				return nil, at(errf(name, "", "must be the last stage"))
			}
			sink, err := parseSink(name, spec)
			if err != nil {
				return nil, at(err)
			}
			p.Sink = sink
		case def.kind == kindWindow:
			if p.Window != nil {
				return nil, at(errf(name, "", "is a second window stage: a pipeline may have only one"))
			}
			w, err := parseWindow(name, spec)
			if err != nil {
				return nil, at(err)
			}
			p.Window = w
		case def.where&inMain == 0:
			return nil, at(errf(name, "", "is only allowed inside a window's pipeline ($tumblingWindow, $hoppingWindow or $sessionWindow)"))
		default:
			st, err := def.parse(spec)
			if err != nil {
				return nil, at(err)
			}
			if p.Window == nil {
				p.Before = append(p.Before, st)
			} else {
				p.After = append(p.After, st)
			}
		}
	}
	if p.Sink == nil && opts.RequireSink {
		return nil, &ParseError{Index: len(vals) - 1, Msg: "the pipeline has no sink: end it with $merge, $emit or $https (only sp.process() runs without one)"}
	}
	p.lookups()
	return p, nil
}

// parseInner compiles a window's inner pipeline.
func parseInner(window string, pipeline bson.RawValue) ([]Stage, error) {
	arr, ok := pipeline.ArrayOK()
	if !ok {
		return nil, errf(window, "pipeline", "is required and must be an array of stages")
	}
	vals, err := arr.Values()
	if err != nil {
		return nil, errf(window, "pipeline", "is not a valid array")
	}
	var out []Stage
	for i, v := range vals {
		name, spec, err := stageOf(i, v)
		if err != nil {
			return nil, errf(window, "pipeline."+strconv.Itoa(i), "%s", err.(*ParseError).Msg)
		}
		def, ok := stages[name]
		if !ok {
			e := unknownStage(i, name).(*ParseError)
			return nil, errf(window, "pipeline."+strconv.Itoa(i), "%s %s", name, e.Msg)
		}
		if def.where&inWindow == 0 {
			return nil, errf(window, "pipeline."+strconv.Itoa(i), "%s is not allowed inside a window's pipeline", name)
		}
		st, err := def.parse(spec)
		if err != nil {
			if pe, ok := err.(*ParseError); ok {
				return nil, errf(window, "pipeline."+strconv.Itoa(i)+"."+pe.Stage+fieldSuffix(pe.Field), "%s", pe.Msg)
			}
			return nil, errf(window, "pipeline."+strconv.Itoa(i)+"."+name, "%v", err)
		}
		out = append(out, st)
	}
	return out, nil
}

func fieldSuffix(f string) string {
	if f == "" {
		return ""
	}
	return "." + f
}

// compileExpr compiles an aggregation expression for a stage option.
func compileExpr(stage, field string, v bson.RawValue) (expr.Expr, error) {
	e, err := expr.Compile(v)
	if err != nil {
		return nil, errf(stage, field, "is not a valid expression: %v", err)
	}
	return e, nil
}

// compileFilter compiles a query filter, with $expr backed by the expression engine.
func compileFilter(stage, field string, filter bson.Raw) (match.Matcher, error) {
	m, err := match.Compile(filter, match.Options{Expr: exprForMatch})
	if err != nil {
		return nil, errf(stage, field, "is not a valid filter: %v", err)
	}
	return m, nil
}

// exprForMatch lets $expr inside a filter use the expression engine; the match context is the
// document's *Doc, for {$meta: "stream..."}.
func exprForMatch(v bson.RawValue) (func(doc bson.Raw, ctx any) (bson.RawValue, error), error) {
	e, err := expr.Compile(v)
	if err != nil {
		return nil, err
	}
	return func(doc bson.Raw, ctx any) (bson.RawValue, error) {
		d, _ := ctx.(*Doc)
		return e.Eval(envFor(doc, d))
	}, nil
}
