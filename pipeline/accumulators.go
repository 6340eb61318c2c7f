package pipeline

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/spi-streams/spi/pipeline/expr"
	"github.com/spi-streams/spi/pipeline/value"
)

// accumulator is the running state of one $group field for one group key. State is kept in
// BSON-friendly values so a window can be snapshotted.
type accumulator interface {
	add(v bson.RawValue, sortKey bson.RawValue) error
	result() bson.RawValue
	// state and restore serialize the running state as one BSON value.
	state() bson.RawValue
	restore(v bson.RawValue) error
}

// accDef is one accumulator operator.
type accDef struct {
	// parse checks the argument and returns the expression(s) to evaluate per document and a
	// constructor of fresh state.
	parse func(field string, arg bson.RawValue) (accSpec, error)
}

// accSpec is a compiled accumulator of one output field.
type accSpec struct {
	op    string
	input expr.Expr // evaluated per document (nil for $count)
	// path is the input when it is a plain field path ("$a.b"): accumulators of one $group
	// reading the same path share one evaluation.
	path   string
	sortBy []sortKey // $top, $bottom, $topN, $bottomN
	n      int       // N of the N-accumulators
	newAcc func() accumulator
	// slab, when set, makes the same fresh state as newAcc from a group state's slab.
	slab    func(*accSlab) accumulator
	pctiles []float64
}

// accSlab hands out the states of the common accumulators from arrays allocated a batch at a
// time: a window with thousands of groups then costs a few allocations, not one per group and
// field. It belongs to one window's group state.
type accSlab struct {
	sums      []sumAcc
	extremes  []extremeAcc
	firstLast []firstLastAcc
}

const slabSize = 128

func take[T any](slab *[]T, init T) *T {
	if len(*slab) == 0 {
		*slab = make([]T, slabSize)
	}
	p := &(*slab)[0]
	*slab = (*slab)[1:]
	*p = init
	return p
}

var accumulators map[string]accDef

func init() {
	type maker struct {
		mk   func() accumulator
		slab func(*accSlab) accumulator
	}
	simpleSlab := func(op string, m maker) accDef {
		return accDef{parse: func(field string, arg bson.RawValue) (accSpec, error) {
			e, err := compileExpr("$group", field+"."+op, arg)
			if err != nil {
				return accSpec{}, err
			}
			spec := accSpec{op: op, input: e, newAcc: m.mk, slab: m.slab}
			if p, ok := arg.StringValueOK(); ok && expr.IsFieldPath(arg) && !strings.HasPrefix(p, "$$") {
				spec.path = p
			}
			return spec, nil
		}}
	}
	simple := func(op string, mk func() accumulator) accDef { return simpleSlab(op, maker{mk: mk}) }
	sum := func(init sumAcc) maker {
		return maker{func() accumulator { a := init; return &a }, func(s *accSlab) accumulator { return take(&s.sums, init) }}
	}
	extreme := func(init extremeAcc) maker {
		return maker{func() accumulator { a := init; return &a }, func(s *accSlab) accumulator { return take(&s.extremes, init) }}
	}
	firstLast := func(init firstLastAcc) maker {
		return maker{func() accumulator { a := init; return &a }, func(s *accSlab) accumulator { return take(&s.firstLast, init) }}
	}
	accumulators = map[string]accDef{
		"$sum":          simpleSlab("$sum", sum(sumAcc{})),
		"$avg":          simpleSlab("$avg", sum(sumAcc{avg: true})),
		"$min":          simpleSlab("$min", extreme(extremeAcc{min: true})),
		"$max":          simpleSlab("$max", extreme(extremeAcc{})),
		"$first":        simpleSlab("$first", firstLast(firstLastAcc{first: true})),
		"$last":         simpleSlab("$last", firstLast(firstLastAcc{})),
		"$push":         simple("$push", func() accumulator { return &pushAcc{} }),
		"$addToSet":     simple("$addToSet", func() accumulator { return &pushAcc{set: true} }),
		"$mergeObjects": simple("$mergeObjects", func() accumulator { return &mergeAcc{} }),
		"$stdDevPop":    simple("$stdDevPop", func() accumulator { return &stdDevAcc{pop: true} }),
		"$stdDevSamp":   simple("$stdDevSamp", func() accumulator { return &stdDevAcc{} }),
		"$count": {parse: func(field string, arg bson.RawValue) (accSpec, error) {
			if d, ok := arg.DocumentOK(); !ok || len(d) != 5 {
				return accSpec{}, errf("$group", field+".$count", "takes no arguments: use {$count: {}}")
			}
			m := sum(sumAcc{count: true})
			return accSpec{op: "$count", newAcc: m.mk, slab: m.slab}, nil
		}},
		"$median":     {parse: parsePercentile("$median")},
		"$percentile": {parse: parsePercentile("$percentile")},
		"$top":        {parse: parseTopBottom("$top", false, true)},
		"$bottom":     {parse: parseTopBottom("$bottom", false, false)},
		"$topN":       {parse: parseTopBottom("$topN", true, true)},
		"$bottomN":    {parse: parseTopBottom("$bottomN", true, false)},
		"$firstN":     {parse: parseN("$firstN")},
		"$lastN":      {parse: parseN("$lastN")},
		"$maxN":       {parse: parseN("$maxN")},
		"$minN":       {parse: parseN("$minN")},
	}
}

func rv(t bson.Type, data []byte) bson.RawValue { return bson.RawValue{Type: t, Value: data} }

func doubleValue(f float64) bson.RawValue { return rv(bson.TypeDouble, bsoncore.AppendDouble(nil, f)) }

var nullValue = bson.RawValue{Type: bson.TypeNull}

// arrayValue builds an array value.
func arrayValue(vals []bson.RawValue) bson.RawValue {
	idx, b := bsoncore.AppendArrayStart(nil)
	for i, v := range vals {
		b = bsoncore.AppendValueElement(b, itoa(i), bsoncore.Value{Type: bsoncore.Type(v.Type), Data: v.Value})
	}
	b, _ = bsoncore.AppendArrayEnd(b, idx)
	return rv(bson.TypeArray, b)
}

func valuesOf(v bson.RawValue) []bson.RawValue {
	arr, ok := v.ArrayOK()
	if !ok {
		return nil
	}
	vals, _ := arr.Values()
	return vals
}

// sumAcc is $sum, $avg and $count; expr.Sum does the arithmetic, as for the expressions.
type sumAcc struct {
	avg, count bool
	sum        expr.Sum
	out        [8]byte // the bytes of a $count result
}

func (a *sumAcc) add(v bson.RawValue, _ bson.RawValue) error {
	if a.count {
		a.sum.Add(one)
		return nil
	}
	a.sum.Add(v)
	return nil
}

var one = bson.RawValue{Type: bson.TypeInt32, Value: []byte{1, 0, 0, 0}}

// decToFloat converts a decimal128 to the nearest double, as $stdDev* and $percentile do.
func decToFloat(v bson.RawValue) (float64, bool) {
	f, err := strconv.ParseFloat(v.Decimal128().String(), 64)
	return f, err == nil || errors.Is(err, strconv.ErrRange)
}

func (a *sumAcc) result() bson.RawValue {
	switch {
	case a.count:
		binary.LittleEndian.PutUint32(a.out[:], uint32(a.sum.Count()))
		return rv(bson.TypeInt32, a.out[:4])
	case a.avg:
		return a.sum.Avg()
	}
	return a.sum.Total()
}

func (a *sumAcc) state() bson.RawValue { return value.Of(a.sum.State()) }

func (a *sumAcc) restore(v bson.RawValue) error {
	d, ok := v.DocumentOK()
	if !ok || !a.sum.Restore(d) {
		return fmt.Errorf("bad $sum state")
	}
	return nil
}

// extremeAcc is $min and $max (missing and null are ignored).
type extremeAcc struct {
	min bool
	v   bson.RawValue
	inl [16]byte // holds v when it fits
}

func (a *extremeAcc) add(v bson.RawValue, _ bson.RawValue) error {
	if value.IsNullish(v) {
		return nil
	}
	if a.v.Type == 0 {
		a.v = keepValue(a.inl[:], v)
		return nil
	}
	c := value.Compare(v, a.v)
	if (a.min && c < 0) || (!a.min && c > 0) {
		a.v = keepValue(a.inl[:], v)
	}
	return nil
}

func (a *extremeAcc) result() bson.RawValue {
	if a.v.Type == 0 {
		return nullValue
	}
	return a.v
}

func (a *extremeAcc) state() bson.RawValue { return arrayValue(present(a.v)) }

func (a *extremeAcc) restore(v bson.RawValue) error {
	vals := valuesOf(v)
	if len(vals) == 1 {
		a.v = copyValue(vals[0])
	}
	return nil
}

func present(v bson.RawValue) []bson.RawValue {
	if v.Type == 0 {
		return nil
	}
	return []bson.RawValue{v}
}

func copyValue(v bson.RawValue) bson.RawValue {
	return bson.RawValue{Type: v.Type, Value: append([]byte(nil), v.Value...)}
}

// keepValue copies v into inl when it fits (an accumulator's own array), else onto the heap.
func keepValue(inl []byte, v bson.RawValue) bson.RawValue {
	if len(v.Value) <= len(inl) {
		n := copy(inl, v.Value)
		return bson.RawValue{Type: v.Type, Value: inl[:n:n]}
	}
	return copyValue(v)
}

// firstLastAcc is $first and $last (missing becomes null).
type firstLastAcc struct {
	first bool
	set   bool
	v     bson.RawValue
	inl   [16]byte // holds v when it fits
}

func (a *firstLastAcc) add(v bson.RawValue, _ bson.RawValue) error {
	if a.first && a.set {
		return nil
	}
	a.set = true
	if v.Type == 0 {
		v = nullValue
	}
	a.v = keepValue(a.inl[:], v)
	return nil
}

func (a *firstLastAcc) result() bson.RawValue {
	if !a.set {
		return nullValue
	}
	return a.v
}

func (a *firstLastAcc) state() bson.RawValue {
	if !a.set {
		return arrayValue(nil)
	}
	return arrayValue([]bson.RawValue{a.v})
}

func (a *firstLastAcc) restore(v bson.RawValue) error {
	if vals := valuesOf(v); len(vals) == 1 {
		a.set, a.v = true, copyValue(vals[0])
	}
	return nil
}

// pushAcc is $push and $addToSet (missing values are skipped).
type pushAcc struct {
	set  bool
	vals []bson.RawValue
}

func (a *pushAcc) add(v bson.RawValue, _ bson.RawValue) error {
	if v.Type == 0 {
		return nil
	}
	if a.set {
		for _, x := range a.vals {
			if value.Equal(x, v) {
				return nil
			}
		}
	}
	a.vals = append(a.vals, copyValue(v))
	return nil
}

func (a *pushAcc) result() bson.RawValue { return arrayValue(a.vals) }

func (a *pushAcc) state() bson.RawValue { return arrayValue(a.vals) }

func (a *pushAcc) restore(v bson.RawValue) error {
	for _, x := range valuesOf(v) {
		a.vals = append(a.vals, copyValue(x))
	}
	return nil
}

// mergeAcc is $mergeObjects: later fields win; null and missing are ignored.
type mergeAcc struct{ doc bson.Raw }

func (a *mergeAcc) add(v bson.RawValue, _ bson.RawValue) error {
	if value.IsNullish(v) {
		return nil
	}
	d, ok := v.DocumentOK()
	if !ok {
		return fmt.Errorf("$mergeObjects requires object inputs, but input %s is of type %s", v.String(), value.TypeName(v))
	}
	if a.doc == nil {
		a.doc = emptyDoc
	}
	elems, _ := d.Elements()
	out := a.doc
	for _, e := range elems {
		ev := e.Value()
		out = setPath(out, []string{e.Key()}, &ev, nil)
	}
	a.doc = out
	return nil
}

func (a *mergeAcc) result() bson.RawValue {
	if a.doc == nil {
		return rv(bson.TypeEmbeddedDocument, emptyDoc)
	}
	return rv(bson.TypeEmbeddedDocument, a.doc)
}

func (a *mergeAcc) state() bson.RawValue { return a.result() }

func (a *mergeAcc) restore(v bson.RawValue) error {
	if d, ok := v.DocumentOK(); ok {
		a.doc = append(bson.Raw(nil), d...)
	}
	return nil
}

// stdDevAcc is $stdDevPop and $stdDevSamp (Welford's algorithm over numeric inputs).
type stdDevAcc struct {
	pop     bool
	n       int64
	mean, m float64
}

func (a *stdDevAcc) add(v bson.RawValue, _ bson.RawValue) error {
	if !value.IsNumber(v) {
		return nil
	}
	var x float64
	switch v.Type {
	case bson.TypeDecimal128:
		x, _ = decToFloat(v)
	case bson.TypeDouble:
		x = v.Double()
	default:
		x = float64(v.AsInt64())
	}
	a.n++
	d := x - a.mean
	a.mean += d / float64(a.n)
	a.m += d * (x - a.mean)
	return nil
}

func (a *stdDevAcc) result() bson.RawValue {
	switch {
	case a.n == 0, !a.pop && a.n == 1:
		return nullValue
	case a.pop:
		return doubleValue(math.Sqrt(a.m / float64(a.n)))
	}
	return doubleValue(math.Sqrt(a.m / float64(a.n-1)))
}

func (a *stdDevAcc) state() bson.RawValue {
	return value.Of(bson.D{{Key: "n", Value: a.n}, {Key: "mean", Value: a.mean}, {Key: "m", Value: a.m}})
}

func (a *stdDevAcc) restore(v bson.RawValue) error {
	d, _ := v.DocumentOK()
	a.n, a.mean, a.m = d.Lookup("n").Int64(), d.Lookup("mean").Double(), d.Lookup("m").Double()
	return nil
}

// percentileAcc is $median and $percentile: it keeps the numeric inputs and answers exactly
// (MongoDB's "approximate" method gives the same result on these sizes: the nearest rank).
type percentileAcc struct {
	median bool
	ps     []float64
	vals   []float64
}

func parsePercentile(op string) func(string, bson.RawValue) (accSpec, error) {
	return func(field string, arg bson.RawValue) (accSpec, error) {
		d, ok := arg.DocumentOK()
		if !ok {
			return accSpec{}, errf("$group", field+"."+op, "takes {input, method: \"approximate\"%s}", map[bool]string{true: "", false: ", p: [...]"}[op == "$median"])
		}
		allowed := []string{"input", "method"}
		if op == "$percentile" {
			allowed = append(allowed, "p")
		}
		if err := checkFields("$group", field+"."+op, d, allowed...); err != nil {
			return accSpec{}, err
		}
		if m, _ := d.Lookup("method").StringValueOK(); m != "approximate" {
			return accSpec{}, errf("$group", field+"."+op+".method", "must be \"approximate\"")
		}
		in, err := compileExpr("$group", field+"."+op+".input", d.Lookup("input"))
		if err != nil {
			return accSpec{}, err
		}
		var ps []float64
		if op == "$percentile" {
			vals := valuesOf(d.Lookup("p"))
			if len(vals) == 0 {
				return accSpec{}, errf("$group", field+".$percentile.p", "must be a non-empty array of numbers between 0 and 1")
			}
			for _, v := range vals {
				f, ok := v.AsFloat64OK()
				if !ok || f < 0 || f > 1 {
					return accSpec{}, errf("$group", field+".$percentile.p", "must hold numbers between 0 and 1")
				}
				ps = append(ps, f)
			}
		}
		median := op == "$median"
		return accSpec{op: op, input: in, pctiles: ps, newAcc: func() accumulator { return &percentileAcc{median: median, ps: ps} }}, nil
	}
}

func (a *percentileAcc) add(v bson.RawValue, _ bson.RawValue) error {
	if !value.IsNumber(v) {
		return nil
	}
	f, ok := v.AsFloat64OK()
	if !ok {
		f, _ = decToFloat(v)
	}
	a.vals = append(a.vals, f)
	return nil
}

func (a *percentileAcc) at(p float64) bson.RawValue {
	if len(a.vals) == 0 {
		return nullValue
	}
	s := append([]float64(nil), a.vals...)
	sort.Float64s(s)
	rank := int(math.Ceil(p*float64(len(s)))) - 1
	rank = max(0, min(rank, len(s)-1))
	return doubleValue(s[rank])
}

func (a *percentileAcc) result() bson.RawValue {
	if a.median {
		return a.at(0.5)
	}
	out := make([]bson.RawValue, len(a.ps))
	for i, p := range a.ps {
		out[i] = a.at(p)
	}
	return arrayValue(out)
}

func (a *percentileAcc) state() bson.RawValue {
	vals := make([]bson.RawValue, len(a.vals))
	for i, f := range a.vals {
		vals[i] = doubleValue(f)
	}
	return arrayValue(vals)
}

func (a *percentileAcc) restore(v bson.RawValue) error {
	for _, x := range valuesOf(v) {
		a.vals = append(a.vals, x.Double())
	}
	return nil
}
