package expr

import (
	"math"
	"sort"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/value"
)

func evalArrayElemAt(op string, a, b bson.RawValue) (bson.RawValue, error) {
	if anyNullish(a, b) {
		return nullValue, nil
	}
	if a.Type != bson.TypeArray {
		return value.Missing, evalErr(op, "$arrayElemAt's first argument must be an array, but is "+typeName(a))
	}
	if !value.IsNumber(b) {
		return value.Missing, evalErr(op, "$arrayElemAt's second argument must be a numeric value, but is "+typeName(b))
	}
	i, ok := intArg(b)
	if !ok {
		return value.Missing, evalErr(op, "$arrayElemAt's second argument must be representable as a 32-bit integer: "+formatNum(b))
	}
	return elemAt(a, i), nil
}

// elemAt indexes an array, negative from the end; out of range is missing.
func elemAt(a bson.RawValue, i int64) bson.RawValue {
	if i < 0 {
		i += int64(arrayLen(a.Value))
		if i < 0 {
			return value.Missing
		}
	}
	var out bson.RawValue
	n := int64(0)
	eachElem(a.Value, func(_ []byte, v bson.RawValue) bool {
		if n == i {
			out = v
			return false
		}
		n++
		return true
	})
	return out
}

func firstLast(last bool) func(op string, v bson.RawValue) (bson.RawValue, error) {
	return func(op string, v bson.RawValue) (bson.RawValue, error) {
		if value.IsNullish(v) {
			return nullValue, nil
		}
		if v.Type != bson.TypeArray {
			return value.Missing, evalErr(op, op+"'s argument must be an array, but is "+typeName(v))
		}
		if last {
			return elemAt(v, -1), nil
		}
		return elemAt(v, 0), nil
	}
}

func evalConcatArrays(op string, vs []bson.RawValue) (bson.RawValue, error) {
	total := 0
	for _, v := range vs {
		if value.IsNullish(v) {
			return nullValue, nil
		}
		if v.Type != bson.TypeArray {
			return value.Missing, evalErr(op, "$concatArrays only supports arrays, not "+typeName(v))
		}
		total += arrayLen(v.Value)
		if total > maxArrayLen {
			return value.Missing, errTooLarge(op)
		}
	}
	b := newArr()
	for _, v := range vs {
		eachElem(v.Value, func(_ []byte, e bson.RawValue) bool { b.add(e); return true })
	}
	return b.done(), nil
}

func errTooLarge(op string) error {
	return evalErr(op, op+" would create an array of more than "+itoa(maxArrayLen)+" elements")
}

func evalIn(op string, a, b bson.RawValue) (bson.RawValue, error) {
	if b.Type != bson.TypeArray {
		return value.Missing, evalErr(op, "$in requires an array as a second argument, found: "+typeName(b))
	}
	found := false
	eachElem(b.Value, func(_ []byte, e bson.RawValue) bool {
		found = value.Equal(a, e)
		return !found
	})
	return boolValue(found), nil
}

func evalIndexOfArray(op string, vs []bson.RawValue) (bson.RawValue, error) {
	if value.IsNullish(vs[0]) {
		return nullValue, nil
	}
	if vs[0].Type != bson.TypeArray {
		return value.Missing, evalErr(op, "$indexOfArray requires an array as a first argument, found: "+typeName(vs[0]))
	}
	elems := arrayValues(vs[0])
	start, end := int64(0), int64(len(elems))
	for i, name := range []string{"starting", "ending"} {
		if len(vs) <= 2+i {
			break
		}
		v := vs[2+i]
		x, ok := intArg(v)
		if !ok {
			return value.Missing, evalErr(op, "$indexOfArray requires an integral "+name+" index, found a value of type: "+typeName(v)+", with value: "+v.String())
		}
		if x < 0 {
			return value.Missing, evalErr(op, "$indexOfArray requires a nonnegative "+name+" index, found: "+itoa64(x))
		}
		if i == 0 {
			start = x
		} else {
			end = min(x, end)
		}
	}
	for i := start; i < end; i++ {
		if value.Equal(elems[i], vs[1]) {
			return int32Value(int32(i)), nil
		}
	}
	return int32Value(-1), nil
}

func evalIsArray(_ string, v bson.RawValue) (bson.RawValue, error) {
	return boolValue(v.Type == bson.TypeArray), nil
}

func evalReverseArray(op string, v bson.RawValue) (bson.RawValue, error) {
	if value.IsNullish(v) {
		return nullValue, nil
	}
	if v.Type != bson.TypeArray {
		return value.Missing, evalErr(op, "The argument to $reverseArray must be an array, but was of type: "+typeName(v))
	}
	es := arrayValues(v)
	for i, j := 0, len(es)-1; i < j; i, j = i+1, j-1 {
		es[i], es[j] = es[j], es[i]
	}
	return buildArray(es), nil
}

func evalSize(op string, v bson.RawValue) (bson.RawValue, error) {
	if v.Type != bson.TypeArray {
		return value.Missing, evalErr(op, "The argument to $size must be an array, but was of type: "+typeName(v))
	}
	return int32Value(int32(arrayLen(v.Value))), nil
}

func evalSlice(op string, vs []bson.RawValue) (bson.RawValue, error) {
	if anyNullish(vs...) {
		return nullValue, nil
	}
	if vs[0].Type != bson.TypeArray {
		return value.Missing, evalErr(op, "First argument to $slice must be an array, but is of type: "+typeName(vs[0]))
	}
	if !value.IsNumber(vs[1]) {
		return value.Missing, evalErr(op, "Second argument to $slice must be a numeric value, but is of type: "+typeName(vs[1]))
	}
	p, ok := intArg(vs[1])
	if !ok {
		return value.Missing, evalErr(op, "Second argument to $slice can't be represented as a 32-bit integer: "+formatNum(vs[1]))
	}
	es := arrayValues(vs[0])
	n := int64(len(es))
	var start, end int64
	if len(vs) == 2 {
		if p >= 0 {
			start, end = 0, min(p, n)
		} else {
			start, end = max(n+p, 0), n
		}
	} else {
		if !value.IsNumber(vs[2]) {
			return value.Missing, evalErr(op, "Third argument to $slice must be numeric, but is of type: "+typeName(vs[2]))
		}
		c, ok := intArg(vs[2])
		if !ok {
			return value.Missing, evalErr(op, "Third argument to $slice can't be represented as a 32-bit integer: "+formatNum(vs[2]))
		}
		if c <= 0 {
			return value.Missing, evalErr(op, "Third argument to $slice must be positive: "+formatNum(vs[2]))
		}
		if p >= 0 {
			start = min(p, n)
		} else {
			start = max(n+p, 0)
		}
		end = min(start+c, n)
	}
	return buildArray(es[start:end]), nil
}

func evalRange(op string, vs []bson.RawValue) (bson.RawValue, error) {
	names := []string{"starting value", "ending value", "step value"}
	var xs [3]int64
	xs[2] = 1
	for i, v := range vs {
		if !value.IsNumber(v) {
			return value.Missing, evalErr(op, "$range requires a numeric "+names[i]+", found value of type: "+typeName(v))
		}
		x, ok := intArg(v)
		if !ok {
			return value.Missing, evalErr(op, "$range requires a "+names[i]+" that can be represented as a 32-bit integer, found value: "+formatNum(v))
		}
		xs[i] = x
	}
	start, end, step := xs[0], xs[1], xs[2]
	if step == 0 {
		return value.Missing, evalErr(op, "$range requires a non-zero step value")
	}
	n := int64(0)
	if (step > 0 && end > start) || (step < 0 && end < start) {
		n = (end - start + step - sign64(step)) / step
	}
	if n > maxArrayLen {
		return value.Missing, errTooLarge(op)
	}
	b := newArr()
	for i := int64(0); i < n; i++ {
		b.add(int32Value(int32(start + i*step)))
	}
	return b.done(), nil
}

func sign64(x int64) int64 {
	if x < 0 {
		return -1
	}
	return 1
}

// compileIter compiles $map and $filter.
func compileIter(isMap bool) compileFunc {
	return func(op string, args bson.RawValue, sc *scope) (Expr, error) {
		allowed := []string{"input", "as", "cond", "limit"}
		body := "cond"
		if isMap {
			allowed, body = []string{"input", "as", "in"}, "in"
		}
		m, err := objArgs(op, args, allowed...)
		if err != nil {
			return nil, err
		}
		if _, ok := m["input"]; !ok {
			return nil, compileErr(op, "Missing 'input' parameter to "+op)
		}
		if _, ok := m[body]; !ok {
			return nil, compileErr(op, "Missing '"+body+"' parameter to "+op)
		}
		input, err := compile(m["input"], sc)
		if err != nil {
			return nil, err
		}
		limit, err := optExpr(m, "limit", sc)
		if err != nil {
			return nil, err
		}
		name := "this"
		if as, ok := m["as"]; ok {
			if name, ok = str(as); !ok {
				return nil, compileErr(op, op+" requires 'as' to be a string")
			}
			if err := validateVarName(name, true); err != nil {
				return nil, err
			}
		}
		slots, done := sc.bind(name)
		in, err := compile(m[body], sc)
		done()
		if err != nil {
			return nil, err
		}
		slot := slots[0]
		return evalFunc(func(env *Env) (bson.RawValue, error) {
			arr, err := input.Eval(env)
			if err != nil {
				return arr, err
			}
			if value.IsNullish(arr) {
				return nullValue, nil
			}
			if arr.Type != bson.TypeArray {
				return value.Missing, evalErr(op, "input to "+op+" must be an array not "+typeName(arr))
			}
			max := int64(math.MaxInt64)
			if limit != nil {
				l, err := limit.Eval(env)
				if err != nil {
					return l, err
				}
				if !value.IsNullish(l) {
					n, ok := intArg(l)
					if !ok {
						return value.Missing, evalErr(op, "$filter: limit must be represented as a 32-bit integral value: "+l.String())
					}
					if n < 1 {
						return value.Missing, evalErr(op, "$filter: limit must be greater than 0: "+itoa64(n))
					}
					max = n
				}
			}
			b := newArr()
			var ferr error
			eachElem(arr.Value, func(_ []byte, e bson.RawValue) bool {
				if ferr = env.tick(op, 1); ferr != nil {
					return false
				}
				env.setVar(slot, e)
				r, err := in.Eval(env)
				if err != nil {
					ferr = err
					return false
				}
				if isMap {
					if r.Type == 0 {
						r = nullValue
					}
					b.add(r)
				} else if value.Truthy(r) {
					b.add(e)
				}
				return int64(b.n) < max
			})
			if ferr != nil {
				return value.Missing, ferr
			}
			return b.done(), nil
		}), nil
	}
}

func compileReduce(op string, args bson.RawValue, sc *scope) (Expr, error) {
	m, err := objArgs(op, args, "input", "initialValue", "in")
	if err != nil {
		return nil, err
	}
	for _, k := range []string{"input", "initialValue", "in"} {
		if _, ok := m[k]; !ok {
			return nil, compileErr(op, "$reduce requires '"+k+"' to be specified")
		}
	}
	input, err := compile(m["input"], sc)
	if err != nil {
		return nil, err
	}
	init, err := compile(m["initialValue"], sc)
	if err != nil {
		return nil, err
	}
	slots, done := sc.bind("this", "value")
	in, err := compile(m["in"], sc)
	done()
	if err != nil {
		return nil, err
	}
	return evalFunc(func(env *Env) (bson.RawValue, error) {
		arr, err := input.Eval(env)
		if err != nil {
			return arr, err
		}
		if value.IsNullish(arr) {
			return nullValue, nil
		}
		if arr.Type != bson.TypeArray {
			return value.Missing, evalErr(op, "$reduce requires 'input' to be an array, found: "+typeName(arr))
		}
		acc, err := init.Eval(env)
		if err != nil {
			return acc, err
		}
		var ferr error
		eachElem(arr.Value, func(_ []byte, e bson.RawValue) bool {
			if ferr = env.tick(op, 1); ferr != nil {
				return false
			}
			env.setVar(slots[0], e)
			env.setVar(slots[1], acc)
			acc, ferr = in.Eval(env)
			return ferr == nil
		})
		if ferr != nil {
			return value.Missing, ferr
		}
		return acc, nil
	}), nil
}

func compileZip(op string, args bson.RawValue, sc *scope) (Expr, error) {
	m, err := objArgs(op, args, "inputs", "useLongestLength", "defaults")
	if err != nil {
		return nil, err
	}
	in, ok := m["inputs"]
	if !ok {
		return nil, compileErr(op, "$zip requires 'inputs' to be specified")
	}
	if in.Type != bson.TypeArray {
		return nil, compileErr(op, "inputs must be an array of expressions, found "+typeName(in))
	}
	inputs, err := compileArgs(op, in, sc)
	if err != nil {
		return nil, err
	}
	longest := false
	if l, ok := m["useLongestLength"]; ok {
		if l.Type != bson.TypeBoolean {
			return nil, compileErr(op, "useLongestLength must be a bool, found "+typeName(l))
		}
		longest = l.Boolean()
	}
	var defaults []Expr
	if d, ok := m["defaults"]; ok {
		if d.Type != bson.TypeArray {
			return nil, compileErr(op, "defaults must be an array of expressions, found "+typeName(d))
		}
		if !longest {
			return nil, compileErr(op, "cannot specify defaults unless useLongestLength is true")
		}
		if defaults, err = compileArgs(op, d, sc); err != nil {
			return nil, err
		}
		if len(defaults) != len(inputs) {
			return nil, compileErr(op, "defaults and inputs must have the same length")
		}
	}
	return evalFunc(func(env *Env) (bson.RawValue, error) {
		arrays := make([][]bson.RawValue, len(inputs))
		n := 0
		for i, e := range inputs {
			v, err := e.Eval(env)
			if err != nil {
				return v, err
			}
			if value.IsNullish(v) {
				return nullValue, nil
			}
			if v.Type != bson.TypeArray {
				return value.Missing, evalErr(op, "$zip found a non-array expression in input: "+v.String())
			}
			arrays[i] = arrayValues(v)
			if i == 0 || (longest && len(arrays[i]) > n) || (!longest && len(arrays[i]) < n) {
				n = len(arrays[i])
			}
		}
		defs := make([]bson.RawValue, len(inputs))
		for i := range defs {
			defs[i] = nullValue
			if defaults != nil {
				v, err := defaults[i].Eval(env)
				if err != nil {
					return v, err
				}
				defs[i] = v
			}
		}
		out := newArr()
		for j := 0; j < n; j++ {
			row := newArr()
			for i := range arrays {
				if j < len(arrays[i]) {
					row.add(arrays[i][j])
				} else {
					row.add(defs[i])
				}
			}
			out.add(row.done())
		}
		return out.done(), nil
	}), nil
}

// sortSpec is $sortArray's sortBy: a direction for whole values, or fields and directions.
type sortSpec struct {
	dir    int
	fields [][]string
	dirs   []int
}

func parseSortBy(op string, v bson.RawValue) (*sortSpec, error) {
	if value.IsNumber(v) {
		n, ok := intArg(v)
		if !ok || (n != 1 && n != -1) {
			return nil, compileErr(op, "$sortArray sortBy must be either 1, -1, or a sort specification document")
		}
		return &sortSpec{dir: int(n)}, nil
	}
	if v.Type != bson.TypeEmbeddedDocument {
		return nil, compileErr(op, "$sortArray sortBy must be either 1, -1, or a sort specification document")
	}
	els, _ := elements(v.Value)
	if len(els) == 0 {
		return nil, compileErr(op, "$sortArray sortBy must not be an empty object")
	}
	s := &sortSpec{}
	for _, el := range els {
		n, ok := intArg(el.val)
		if !ok || (n != 1 && n != -1) {
			return nil, compileErr(op, "$sortArray sort direction for '"+el.key+"' must be 1 or -1")
		}
		parts, err := splitPath(el.key, el.key)
		if err != nil {
			return nil, err
		}
		s.fields = append(s.fields, parts)
		s.dirs = append(s.dirs, int(n))
	}
	return s, nil
}

func (s *sortSpec) less(a, b bson.RawValue) bool {
	if s.fields == nil {
		return value.Compare(a, b)*s.dir < 0
	}
	for i, f := range s.fields {
		var fa, fb bson.RawValue
		if a.Type == bson.TypeEmbeddedDocument {
			fa = evalPath(a.Value, f)
		}
		if b.Type == bson.TypeEmbeddedDocument {
			fb = evalPath(b.Value, f)
		}
		if c := value.Compare(nullIfMissing(fa), nullIfMissing(fb)); c != 0 {
			return c*s.dirs[i] < 0
		}
	}
	return false
}

func nullIfMissing(v bson.RawValue) bson.RawValue {
	if v.Type == 0 {
		return nullValue
	}
	return v
}

func compileSortArray(op string, args bson.RawValue, sc *scope) (Expr, error) {
	m, err := objArgs(op, args, "input", "sortBy")
	if err != nil {
		return nil, err
	}
	input, err := reqExpr(op, m, "input", sc)
	if err != nil {
		return nil, err
	}
	sb, ok := m["sortBy"]
	if !ok {
		return nil, compileErr(op, "$sortArray requires 'sortBy' to be specified")
	}
	spec, err := parseSortBy(op, sb)
	if err != nil {
		return nil, err
	}
	return evalFunc(func(env *Env) (bson.RawValue, error) {
		v, err := input.Eval(env)
		if err != nil {
			return v, err
		}
		if value.IsNullish(v) {
			return nullValue, nil
		}
		if v.Type != bson.TypeArray {
			return value.Missing, evalErr(op, "The input argument to $sortArray must be an array, but was of type: "+typeName(v))
		}
		es := arrayValues(v)
		sort.SliceStable(es, func(i, j int) bool { return spec.less(es[i], es[j]) })
		return buildArray(es), nil
	}), nil
}

// compileNArray compiles $firstN, $lastN, $maxN, $minN over an array: {n, input}.
func compileNArray(kind string) compileFunc {
	return func(op string, args bson.RawValue, sc *scope) (Expr, error) {
		m, err := objArgs(op, args, "n", "input")
		if err != nil {
			return nil, err
		}
		nE, err := reqExpr(op, m, "n", sc)
		if err != nil {
			return nil, err
		}
		input, err := reqExpr(op, m, "input", sc)
		if err != nil {
			return nil, err
		}
		return evalFunc(func(env *Env) (bson.RawValue, error) {
			nv, err := nE.Eval(env)
			if err != nil {
				return nv, err
			}
			n, ok := intArg(nv)
			if nv.Type == bson.TypeInt64 {
				n, ok = nv.Int64(), true
			}
			if !ok || n <= 0 {
				return value.Missing, evalErr(op, "Value for 'n' must be a positive integral value, found "+nv.String()+" in "+op)
			}
			v, err := input.Eval(env)
			if err != nil {
				return v, err
			}
			if value.IsNullish(v) {
				return nullValue, nil
			}
			if v.Type != bson.TypeArray {
				return value.Missing, evalErr(op, "Input to "+op+" must be an array, found "+typeName(v))
			}
			es := arrayValues(v)
			switch kind {
			case "first":
				return buildArray(es[:min(int64(len(es)), n)]), nil
			case "last":
				return buildArray(es[int64(len(es))-min(int64(len(es)), n):]), nil
			}
			kept := es[:0]
			for _, e := range es {
				if !value.IsNullish(e) {
					kept = append(kept, e)
				}
			}
			sort.SliceStable(kept, func(i, j int) bool {
				c := value.Compare(kept[i], kept[j])
				if kind == "max" {
					return c > 0
				}
				return c < 0
			})
			return buildArray(kept[:min(int64(len(kept)), n)]), nil
		}), nil
	}
}

func evalArrayToObject(op string, v bson.RawValue) (bson.RawValue, error) {
	if value.IsNullish(v) {
		return nullValue, nil
	}
	if v.Type != bson.TypeArray {
		return value.Missing, evalErr(op, "$arrayToObject requires an array input, found: "+typeName(v))
	}
	es := arrayValues(v)
	var keys []string
	vals := map[string]bson.RawValue{}
	kvForm := false
	for i, e := range es {
		var k, val bson.RawValue
		switch e.Type {
		case bson.TypeArray:
			if i > 0 && kvForm {
				return value.Missing, evalErr(op, "$arrayToObject requires a consistent input format. Elements must all be arrays or all be objects. Object was detected, now found: array")
			}
			pair := arrayValues(e)
			if len(pair) != 2 {
				return value.Missing, evalErr(op, "$arrayToObject requires an array of size 2 arrays,found array of size: "+itoa(len(pair)))
			}
			k, val = pair[0], pair[1]
		case bson.TypeEmbeddedDocument:
			if i == 0 {
				kvForm = true
			} else if !kvForm {
				return value.Missing, evalErr(op, "$arrayToObject requires a consistent input format. Elements must all be arrays or all be objects. Array was detected, now found: object")
			}
			els, _ := elements(e.Value)
			if len(els) != 2 || els[0].key != "k" || els[1].key != "v" {
				return value.Missing, evalErr(op, "$arrayToObject requires an object keys of 'k' and 'v'. Found incorrect number of keys:"+itoa(len(els)))
			}
			k, val = els[0].val, els[1].val
		default:
			return value.Missing, evalErr(op, "Unrecognised input type format for $arrayToObject: "+typeName(e))
		}
		ks, ok := str(k)
		if !ok {
			return value.Missing, evalErr(op, "$arrayToObject requires a string as the key, found: "+typeName(k))
		}
		if indexByte0(ks) {
			return value.Missing, evalErr(op, "Key field cannot contain an embedded null byte")
		}
		if _, seen := vals[ks]; !seen {
			keys = append(keys, ks)
		}
		vals[ks] = val
	}
	b := newDoc()
	for _, k := range keys {
		b.add(k, vals[k])
	}
	return b.done(), nil
}

func indexByte0(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return true
		}
	}
	return false
}

func evalObjectToArray(op string, v bson.RawValue) (bson.RawValue, error) {
	if value.IsNullish(v) {
		return nullValue, nil
	}
	if v.Type != bson.TypeEmbeddedDocument {
		return value.Missing, evalErr(op, "$objectToArray requires a document input, found: "+typeName(v))
	}
	out := newArr()
	eachElem(v.Value, func(k []byte, e bson.RawValue) bool {
		d := newDoc()
		d.add("k", stringValue(string(k)))
		d.add("v", e)
		out.add(d.done())
		return true
	})
	return out.done(), nil
}
