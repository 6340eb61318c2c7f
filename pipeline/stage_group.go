package pipeline

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"math"
	"math/big"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/spi-streams/spi/pipeline/expr"
)

// groupStage is $group inside a window: {_id: <expression>, <field>: {<accumulator>: ...}}.
type groupStage struct {
	id expr.Expr
	// idField is set when _id is an object of one field, {f: <expression>}: id is then that
	// field's expression and a missing value groups as null, as mongod's $group does
	// (DocumentSourceGroup::computeId); with two or more fields a missing one is left out.
	idField string
	fields  []string
	accs    []accSpec
	// same[i] is the earlier accumulator whose input accs[i] shares (a plain field path read
	// twice, as in {$sum: "$x"} and {$max: "$x"}), or -1.
	same []int
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
			idv := e.Value()
			if d, ok := idv.DocumentOK(); ok {
				if fs, _ := d.Elements(); len(fs) == 1 && !strings.HasPrefix(fs[0].Key(), "$") && !strings.Contains(fs[0].Key(), ".") && fs[0].Key() != "" {
					g.idField = fs[0].Key()
					idv = fs[0].Value()
				}
			}
			id, err := compileExpr("$group", "_id", idv)
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
		same := -1
		for j, prev := range g.accs {
			if spec.path != "" && prev.path == spec.path {
				same = j
				break
			}
		}
		g.same = append(g.same, same)
		g.accs = append(g.accs, spec)
	}
	if g.id == nil {
		return nil, errf("$group", "_id", "is required (use null to group all documents together)")
	}
	return g, nil
}

func (g *groupStage) Name() string { return "$group" }

func (g *groupStage) Process(d *Doc, _ *[]byte, emit func(*Doc)) error { emit(d); return nil }

// groups is the running state of one $group over one window. Groups are found by the hash
// of their key; keys, ids and accumulator states live in slabs, so a new group costs no
// allocation of its own most of the time.
type groups struct {
	order  []*groupEntry
	byHash map[uint64]*groupEntry
	seed   maphash.Seed
	buf    []byte          // scratch for building keys
	idDoc  []byte          // scratch for a one-field _id document
	vals   []bson.RawValue // scratch for the accumulators' inputs
	bytes  []byte          // slab for keys and ids
	slab   accSlab
	eslab  []groupEntry
	aslab  []accumulator
}

type groupEntry struct {
	key  []byte
	id   bson.RawValue
	accs []accumulator
	next *groupEntry // another group whose key has the same hash
}

// newGroups returns an empty group state sized for about hint groups (the number the previous
// window had), so that a window's groups do not regrow the map and the order from nothing.
func newGroups(hint int) *groups {
	hint = min(hint, 1<<16)
	return &groups{byHash: make(map[uint64]*groupEntry, hint), order: make([]*groupEntry, 0, hint), seed: maphash.MakeSeed()}
}

// find returns the group whose key is k, or nil.
func (st *groups) find(k []byte) (*groupEntry, uint64) {
	h := maphash.Bytes(st.seed, k)
	for e := st.byHash[h]; e != nil; e = e.next {
		if bytes.Equal(e.key, k) {
			return e, h
		}
	}
	return nil, h
}

// keepBytes copies b into the byte slab.
func (st *groups) keepBytes(b []byte) []byte {
	if len(b) > 256 {
		return append([]byte(nil), b...)
	}
	if cap(st.bytes)-len(st.bytes) < len(b) {
		st.bytes = make([]byte, 0, 8192)
	}
	n := len(st.bytes)
	st.bytes = append(st.bytes, b...)
	return st.bytes[n : n+len(b) : n+len(b)]
}

// insert adds a group with the key k (hash h) and the id id, with fresh accumulators.
func (st *groups) insert(g *groupStage, k []byte, h uint64, id bson.RawValue) *groupEntry {
	e := take(&st.eslab, groupEntry{})
	n := len(g.accs)
	if len(st.aslab) < n {
		st.aslab = make([]accumulator, n*slabSize)
	}
	e.accs, st.aslab = st.aslab[:n:n], st.aslab[n:]
	e.key = st.keepBytes(k)
	e.id = bson.RawValue{Type: id.Type, Value: st.keepBytes(id.Value)}
	for i, a := range g.accs {
		if a.slab != nil {
			e.accs[i] = a.slab(&st.slab)
		} else {
			e.accs[i] = a.newAcc()
		}
	}
	e.next = st.byHash[h]
	st.byHash[h] = e
	st.order = append(st.order, e)
	return e
}

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
	case bson.TypeEmbeddedDocument, bson.TypeArray:
		// Field by field, so that {a: 1} and {a: 1.0} are one group as mongod's value
		// comparison has them equal; lengths keep the encoding unambiguous.
		elems, err := bson.Raw(v.Value).Elements()
		if err != nil {
			break
		}
		b := []byte{byte(v.Type)}
		for _, e := range elems {
			if v.Type == bson.TypeEmbeddedDocument {
				b = strconv.AppendInt(b, int64(len(e.Key())), 10)
				b = append(append(b, ':'), e.Key()...)
			}
			k := slowGroupKey(e.Value())
			b = strconv.AppendInt(b, int64(len(k)), 10)
			b = append(append(b, ':'), k...)
		}
		return string(b)
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
	if g.idField != "" {
		st.idDoc = appendElem(append(st.idDoc[:0], 0, 0, 0, 0), g.idField, id)
		st.idDoc = append(st.idDoc, 0)
		binary.LittleEndian.PutUint32(st.idDoc, uint32(len(st.idDoc)))
		id = bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: st.idDoc}
	}
	st.buf = appendGroupKey(st.buf[:0], id)
	entry, h := st.find(st.buf)
	if entry == nil {
		entry = st.insert(g, st.buf, h, id)
	}
	if cap(st.vals) < len(g.accs) {
		st.vals = make([]bson.RawValue, len(g.accs))
	}
	vals := st.vals[:len(g.accs)]
	for i, a := range g.accs {
		var v bson.RawValue
		switch {
		case g.same[i] >= 0:
			v = vals[g.same[i]]
		case a.input != nil:
			if v, err = a.input.Eval(env); err != nil {
				return err
			}
		}
		vals[i] = v
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

// results builds one document per group, in the order groups were first seen, all in one
// buffer.
func (g *groupStage) results(st *groups) []bson.Raw {
	var buf []byte
	ends := make([]int, len(st.order))
	for j, e := range st.order {
		idx, b := bsoncore.AppendDocumentStart(buf)
		b = appendElem(b, "_id", e.id)
		for i, f := range g.fields {
			b = appendElem(b, f, e.accs[i].result())
		}
		buf, _ = bsoncore.AppendDocumentEnd(b, idx)
		ends[j] = len(buf)
	}
	out := make([]bson.Raw, len(ends))
	start := 0
	for j, end := range ends {
		out[j] = buf[start:end:end]
		start = end
	}
	return out
}

// snapshot serializes the group states: [[id, [acc states...]], ...].
func (g *groupStage) snapshot(st *groups) bson.RawValue {
	items := make([]bson.RawValue, 0, len(st.order))
	for _, e := range st.order {
		states := make([]bson.RawValue, len(e.accs))
		for i, a := range e.accs {
			states[i] = a.state()
		}
		items = append(items, arrayValue([]bson.RawValue{e.id, arrayValue(states)}))
	}
	return arrayValue(items)
}

func (g *groupStage) restore(v bson.RawValue) (*groups, error) {
	st := newGroups(0)
	for _, item := range valuesOf(v) {
		pair := valuesOf(item)
		if len(pair) != 2 {
			return nil, errBadSnapshot
		}
		states := valuesOf(pair[1])
		if len(states) != len(g.accs) {
			return nil, errBadSnapshot
		}
		k := appendGroupKey(nil, pair[0])
		e, h := st.find(k)
		if e != nil {
			return nil, errBadSnapshot // the same group twice
		}
		e = st.insert(g, k, h, pair[0])
		for i := range g.accs {
			if err := e.accs[i].restore(states[i]); err != nil {
				return nil, err
			}
		}
	}
	return st, nil
}
