package pipeline

import (
	"sort"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/value"
)

// parseN parses $firstN, $lastN, $maxN and $minN: {input, n}.
func parseN(op string) func(string, bson.RawValue) (accSpec, error) {
	return func(field string, arg bson.RawValue) (accSpec, error) {
		f := field + "." + op
		d, ok := arg.DocumentOK()
		if !ok {
			return accSpec{}, errf("$group", f, "takes {input, n}")
		}
		if err := checkFields("$group", f, d, "input", "n"); err != nil {
			return accSpec{}, err
		}
		n, err := positiveN(f, d)
		if err != nil {
			return accSpec{}, err
		}
		in, err := compileExpr("$group", f+".input", d.Lookup("input"))
		if err != nil {
			return accSpec{}, err
		}
		return accSpec{op: op, input: in, n: n, newAcc: func() accumulator { return &nAcc{op: op, n: n} }}, nil
	}
}

func positiveN(f string, d bson.Raw) (int, error) {
	n, err := intField("$group", f+".n", d.Lookup("n"))
	if err != nil {
		return 0, err
	}
	if n < 1 {
		return 0, errf("$group", f+".n", "must be a positive integer, not %d", n)
	}
	return int(n), nil
}

// nAcc keeps the first, last, largest or smallest n values.
type nAcc struct {
	op   string
	n    int
	vals []bson.RawValue
}

func (a *nAcc) add(v bson.RawValue, _ bson.RawValue) error {
	switch a.op {
	case "$firstN":
		if len(a.vals) < a.n {
			a.vals = append(a.vals, nullIfMissing(v))
		}
	case "$lastN":
		a.vals = append(a.vals, nullIfMissing(v))
		if len(a.vals) > a.n {
			a.vals = a.vals[1:]
		}
	default: // $maxN, $minN ignore null and missing
		if value.IsNullish(v) {
			return nil
		}
		a.vals = append(a.vals, copyValue(v))
		desc := a.op == "$maxN"
		sort.SliceStable(a.vals, func(i, j int) bool {
			c := value.Compare(a.vals[i], a.vals[j])
			if desc {
				return c > 0
			}
			return c < 0
		})
		if len(a.vals) > a.n {
			a.vals = a.vals[:a.n]
		}
	}
	return nil
}

func nullIfMissing(v bson.RawValue) bson.RawValue {
	if v.Type == 0 {
		return nullValue
	}
	return copyValue(v)
}

func (a *nAcc) result() bson.RawValue { return arrayValue(a.vals) }

func (a *nAcc) state() bson.RawValue { return arrayValue(a.vals) }

func (a *nAcc) restore(v bson.RawValue) error {
	for _, x := range valuesOf(v) {
		a.vals = append(a.vals, copyValue(x))
	}
	return nil
}

// parseTopBottom parses $top, $bottom ({sortBy, output}) and $topN, $bottomN ({sortBy, output, n}).
func parseTopBottom(op string, withN, top bool) func(string, bson.RawValue) (accSpec, error) {
	return func(field string, arg bson.RawValue) (accSpec, error) {
		f := field + "." + op
		d, ok := arg.DocumentOK()
		if !ok {
			return accSpec{}, errf("$group", f, "takes {sortBy, output%s}", map[bool]string{true: ", n", false: ""}[withN])
		}
		allowed := []string{"sortBy", "output"}
		if withN {
			allowed = append(allowed, "n")
		}
		if err := checkFields("$group", f, d, allowed...); err != nil {
			return accSpec{}, err
		}
		sb, ok := d.Lookup("sortBy").DocumentOK()
		if !ok {
			return accSpec{}, errf("$group", f+".sortBy", "is required and must be a sort specification")
		}
		keys, err := parseSortKeys("$group", f+".sortBy", sb)
		if err != nil {
			return accSpec{}, err
		}
		out, err := compileExpr("$group", f+".output", d.Lookup("output"))
		if err != nil {
			return accSpec{}, err
		}
		n := 1
		if withN {
			if n, err = positiveN(f, d); err != nil {
				return accSpec{}, err
			}
		}
		return accSpec{op: op, input: out, sortBy: keys, n: n, newAcc: func() accumulator {
			return &topAcc{keys: keys, n: n, top: top, single: !withN}
		}}, nil
	}
}

// topAcc keeps the n (output, sort key) pairs that sort first ($top) or last ($bottom).
type topAcc struct {
	keys   []sortKey
	n      int
	top    bool
	single bool
	items  []topItem
}

type topItem struct {
	out, key bson.RawValue // key: the document the sort keys are read from
}

func (a *topAcc) add(v bson.RawValue, key bson.RawValue) error {
	a.items = append(a.items, topItem{out: nullIfMissing(v), key: copyValue(key)})
	sort.SliceStable(a.items, func(i, j int) bool {
		c := compareBySort(a.keys, a.items[i].key.Document(), a.items[j].key.Document())
		if a.top {
			return c < 0
		}
		return c > 0
	})
	if len(a.items) > a.n {
		a.items = a.items[:a.n]
	}
	return nil
}

func (a *topAcc) result() bson.RawValue {
	if a.single {
		if len(a.items) == 0 {
			return nullValue
		}
		return a.items[0].out
	}
	// $bottomN lists the bottom n in sort order (ascending), like mongod.
	vals := make([]bson.RawValue, len(a.items))
	for i, it := range a.items {
		if a.top {
			vals[i] = it.out
		} else {
			vals[len(a.items)-1-i] = it.out
		}
	}
	return arrayValue(vals)
}

func (a *topAcc) state() bson.RawValue {
	pairs := make([]bson.RawValue, 0, 2*len(a.items))
	for _, it := range a.items {
		pairs = append(pairs, it.out, it.key)
	}
	return arrayValue(pairs)
}

func (a *topAcc) restore(v bson.RawValue) error {
	vals := valuesOf(v)
	for i := 0; i+1 < len(vals); i += 2 {
		a.items = append(a.items, topItem{out: copyValue(vals[i]), key: copyValue(vals[i+1])})
	}
	return nil
}
