package pipeline

import (
	"bytes"
	"math"
	"math/big"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/spi-streams/spi/pipeline/expr"
	"github.com/spi-streams/spi/pipeline/value"
)

// groupStage is $group inside a window: {_id: <expression>, <field>: {<accumulator>: ...}}.
type groupStage struct {
	id     expr.Expr
	fields []string
	accs   []accSpec
	// usesMeta says an expression reads {$meta: ...}, so documents carry their window's
	// bounds in their metadata while they are accumulated.
	usesMeta bool
}

func parseGroup(spec bson.RawValue) (Stage, error) {
	doc, ok := spec.DocumentOK()
	if !ok {
		return nil, errf("$group", "", "takes {_id: <expression>, <field>: {<accumulator>: <expression>}}, not %s", typeName(spec))
	}
	g := &groupStage{usesMeta: bytes.Contains(doc, []byte("$meta"))}
	elems, _ := doc.Elements()
	for _, e := range elems {
		if e.Key() == "_id" {
			id, err := compileExpr("$group", "_id", e.Value())
			if err != nil {
				return nil, err
			}
			g.id = id
			continue
		}
		if strings.HasPrefix(e.Key(), "$") || strings.Contains(e.Key(), ".") {
			return nil, errf("$group", e.Key(), "is not a valid output field name: no '$' prefix and no '.'")
		}
		acc, ok := e.Value().DocumentOK()
		aelems, _ := acc.Elements()
		if !ok || len(aelems) != 1 {
			return nil, errf("$group", e.Key(), "must be an accumulator object like {$sum: \"$x\"}")
		}
		def, known := accumulators[aelems[0].Key()]
		if !known {
			return nil, errf("$group", e.Key(), "uses unknown accumulator %s", aelems[0].Key())
		}
		spec, err := def.parse(e.Key(), aelems[0].Value())
		if err != nil {
			return nil, err
		}
		g.fields = append(g.fields, e.Key())
		g.accs = append(g.accs, spec)
	}
	if g.id == nil {
		return nil, errf("$group", "_id", "is required (use null to group all documents together)")
	}
	return g, nil
}

func (g *groupStage) Name() string { return "$group" }

func (g *groupStage) Process(d *Doc, emit func(*Doc)) error { emit(d); return nil }

// groups is the running state of one $group over one window.
type groups struct {
	order []string
	byKey map[string]*groupEntry
	buf   []byte // scratch for building keys
}

type groupEntry struct {
	id   bson.RawValue
	accs []accumulator
}

func newGroups() *groups { return &groups{byKey: map[string]*groupEntry{}} }

// groupKey maps equal values (1, 1.0, NumberLong(1)) to the same key, as $group does.
func groupKey(v bson.RawValue) string { return string(appendGroupKey(nil, v)) }

// appendGroupKey appends v's group key to dst, so lookups need not allocate.
func appendGroupKey(dst []byte, v bson.RawValue) []byte {
	switch v.Type {
	case bson.TypeInt32, bson.TypeInt64:
		return strconv.AppendInt(append(dst, 'n'), v.AsInt64(), 10)
	case bson.TypeDouble:
		if f := v.Double(); f == math.Trunc(f) && math.Abs(f) < 1<<62 {
			return strconv.AppendInt(append(dst, 'n'), int64(f), 10)
		}
	case bson.TypeString:
		s, _ := v.StringValueOK()
		return append(append(dst, 's'), s...)
	}
	return append(dst, slowGroupKey(v)...)
}

func slowGroupKey(v bson.RawValue) string {
	switch v.Type {
	case 0, bson.TypeNull, bson.TypeUndefined:
		return "null"
	case bson.TypeInt32, bson.TypeInt64:
		return "n" + strconv.FormatInt(v.AsInt64(), 10)
	case bson.TypeDouble:
		f := v.Double()
		if f == math.Trunc(f) && math.Abs(f) < 1<<62 {
			return "n" + strconv.FormatInt(int64(f), 10)
		}
		if math.IsNaN(f) {
			return "nNaN"
		}
		return "n" + new(big.Rat).SetFloat64(f).RatString()
	case bson.TypeDecimal128:
		r, nan, inf := ratOf(v)
		switch {
		case nan:
			return "nNaN"
		case inf != 0:
			return "n" + strconv.Itoa(inf) + "inf"
		}
		if r.IsInt() {
			return "n" + r.Num().String()
		}
		return "n" + r.RatString()
	case bson.TypeString:
		return "s" + v.StringValue()
	}
	return string(rune(v.Type)) + string(v.Value)
}

// ratOf exposes value's exact numeric conversion for group keys.
func ratOf(v bson.RawValue) (*big.Rat, bool, int) {
	s := v.Decimal128().String()
	switch s {
	case "NaN", "-NaN":
		return nil, true, 0
	case "Infinity":
		return nil, false, 1
	case "-Infinity":
		return nil, false, -1
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return new(big.Rat), false, 0
	}
	return r, false, 0
}

// add evaluates the group key and the accumulator inputs of one document.
func (g *groupStage) add(st *groups, d *Doc) error {
	env := envFor(d.Raw, d)
	id, err := g.id.Eval(env)
	if err != nil {
		return err
	}
	if id.Type == 0 {
		id = nullValue
	}
	st.buf = appendGroupKey(st.buf[:0], id)
	entry, ok := st.byKey[string(st.buf)]
	if !ok {
		k := string(st.buf)
		entry = &groupEntry{id: copyValue(id), accs: make([]accumulator, len(g.accs))}
		for i, a := range g.accs {
			entry.accs[i] = a.newAcc()
		}
		st.byKey[k] = entry
		st.order = append(st.order, k)
	}
	for i, a := range g.accs {
		var v bson.RawValue
		if a.input != nil {
			if v, err = a.input.Eval(env); err != nil {
				return err
			}
		}
		var sk bson.RawValue
		if a.sortBy != nil {
			sk = rv(bson.TypeEmbeddedDocument, d.Raw)
		}
		if err := entry.accs[i].add(v, sk); err != nil {
			return err
		}
	}
	return nil
}

// results builds one document per group, in the order groups were first seen.
func (g *groupStage) results(st *groups) []bson.Raw {
	out := make([]bson.Raw, 0, len(st.order))
	for _, k := range st.order {
		e := st.byKey[k]
		idx, b := bsoncore.AppendDocumentStart(nil)
		b = bsoncore.AppendValueElement(b, "_id", bsoncore.Value{Type: bsoncore.Type(e.id.Type), Data: e.id.Value})
		for i, f := range g.fields {
			r := e.accs[i].result()
			b = bsoncore.AppendValueElement(b, f, bsoncore.Value{Type: bsoncore.Type(r.Type), Data: r.Value})
		}
		b, _ = bsoncore.AppendDocumentEnd(b, idx)
		out = append(out, b)
	}
	return out
}

// snapshot serializes the group states: [[id, [acc states...]], ...].
func (g *groupStage) snapshot(st *groups) bson.RawValue {
	items := make([]bson.RawValue, 0, len(st.order))
	for _, k := range st.order {
		e := st.byKey[k]
		states := make([]bson.RawValue, len(e.accs))
		for i, a := range e.accs {
			states[i] = a.state()
		}
		items = append(items, arrayValue([]bson.RawValue{e.id, arrayValue(states)}))
	}
	return arrayValue(items)
}

func (g *groupStage) restore(v bson.RawValue) (*groups, error) {
	st := newGroups()
	for _, item := range valuesOf(v) {
		pair := valuesOf(item)
		if len(pair) != 2 {
			return nil, errBadSnapshot
		}
		e := &groupEntry{id: copyValue(pair[0]), accs: make([]accumulator, len(g.accs))}
		states := valuesOf(pair[1])
		if len(states) != len(g.accs) {
			return nil, errBadSnapshot
		}
		for i, a := range g.accs {
			e.accs[i] = a.newAcc()
			if err := e.accs[i].restore(states[i]); err != nil {
				return nil, err
			}
		}
		k := groupKey(e.id)
		st.byKey[k] = e
		st.order = append(st.order, k)
	}
	return st, nil
}

var _ = value.Missing
