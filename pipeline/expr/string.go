package expr

import (
	"math"
	"strings"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/value"
)

func evalConcat(op string, vs []bson.RawValue) (bson.RawValue, error) {
	n := 0
	for _, v := range vs {
		if value.IsNullish(v) {
			return nullValue, nil
		}
		s, ok := str(v)
		if !ok {
			return value.Missing, evalErr(op, "$concat only supports strings, not "+typeName(v))
		}
		n += len(s)
	}
	if n > maxStringLen {
		return value.Missing, evalErr(op, "$concat result exceeds the maximum string size of 16MB")
	}
	var b strings.Builder
	b.Grow(n)
	for _, v := range vs {
		s, _ := str(v)
		b.WriteString(s)
	}
	return stringValue(b.String()), nil
}

// coerceToString is mongod's Value::coerceToString, used by the older string operators:
// null and missing are "", numbers and dates print.
func coerceToString(op string, v bson.RawValue) (string, error) {
	switch v.Type {
	case 0, bson.TypeNull, bson.TypeUndefined:
		return "", nil
	case bson.TypeString, bson.TypeSymbol:
		s, _ := str(v)
		return s, nil
	case bson.TypeInt32, bson.TypeInt64, bson.TypeDouble, bson.TypeDecimal128, bson.TypeDateTime, bson.TypeTimestamp, bson.TypeJavaScript:
		if v.Type == bson.TypeJavaScript {
			return v.JavaScript(), nil
		}
		if v.Type == bson.TypeTimestamp {
			t, i := v.Timestamp()
			return "Timestamp(" + itoa64(int64(t)) + ", " + itoa64(int64(i)) + ")", nil
		}
		return toStringValue(op, v)
	}
	return "", evalErr(op, op+" can't convert from BSON type "+typeName(v)+" to String")
}

func caseOp(upper bool) func(op string, v bson.RawValue) (bson.RawValue, error) {
	return func(op string, v bson.RawValue) (bson.RawValue, error) {
		s, err := coerceToString(op, v)
		if err != nil {
			return value.Missing, err
		}
		// mongod maps ASCII letters only.
		b := []byte(s)
		for i, c := range b {
			switch {
			case upper && c >= 'a' && c <= 'z':
				b[i] = c - 32
			case !upper && c >= 'A' && c <= 'Z':
				b[i] = c + 32
			}
		}
		return stringValue(string(b)), nil
	}
}

func evalStrcasecmp(op string, a, b bson.RawValue) (bson.RawValue, error) {
	sa, err := coerceToString(op, a)
	if err != nil {
		return value.Missing, err
	}
	sb, err := coerceToString(op, b)
	if err != nil {
		return value.Missing, err
	}
	la, _ := caseOp(false)(op, stringValue(sa))
	lb, _ := caseOp(false)(op, stringValue(sb))
	return int32Value(int32(strings.Compare(la.StringValue(), lb.StringValue()))), nil
}

// intArg reads an integral numeric argument that fits in 32 bits.
func intArg(v bson.RawValue) (int64, bool) {
	if !value.IsNumber(v) || !isIntegral(v) {
		return 0, false
	}
	f := asFloat(v)
	if f < math.MinInt32 || f > math.MaxInt32 {
		return 0, false
	}
	if v.Type == bson.TypeInt32 || v.Type == bson.TypeInt64 {
		return asInt64(v), true
	}
	return int64(f), true
}

func evalSubstrBytes(op string, vs []bson.RawValue) (bson.RawValue, error) {
	s, err := coerceToString(op, vs[0])
	if err != nil {
		return value.Missing, err
	}
	if !value.IsNumber(vs[1]) {
		return value.Missing, evalErr(op, op+": starting index must be a numeric type (is BSON type "+typeName(vs[1])+")")
	}
	if !value.IsNumber(vs[2]) {
		return value.Missing, evalErr(op, op+": length must be a numeric type (is BSON type "+typeName(vs[2])+")")
	}
	start, length := truncInt(vs[1]), truncInt(vs[2])
	if start < 0 {
		return value.Missing, evalErr(op, op+": starting index must be non-negative (got: "+itoa64(start)+")")
	}
	if start >= int64(len(s)) {
		return stringValue(""), nil
	}
	if !utf8.RuneStart(s[start]) {
		return value.Missing, evalErr(op, op+":  Invalid range, starting index is a UTF-8 continuation byte.")
	}
	end := int64(len(s))
	if length >= 0 && start+length < end {
		end = start + length
	}
	if end < int64(len(s)) && !utf8.RuneStart(s[end]) {
		return value.Missing, evalErr(op, op+":  Invalid range, ending index is in the middle of a UTF-8 character.")
	}
	return stringValue(s[start:end]), nil
}

// truncInt converts a number to int64 toward zero, saturating.
func truncInt(v bson.RawValue) int64 {
	if v.Type == bson.TypeInt32 || v.Type == bson.TypeInt64 {
		return asInt64(v)
	}
	f := math.Trunc(asFloat(v))
	switch {
	case math.IsNaN(f):
		return 0
	case f >= 9.2e18:
		return math.MaxInt64
	case f <= -9.2e18:
		return math.MinInt64
	}
	return int64(f)
}

func evalSubstrCP(op string, vs []bson.RawValue) (bson.RawValue, error) {
	s, err := coerceToString(op, vs[0])
	if err != nil {
		return value.Missing, err
	}
	if !value.IsNumber(vs[1]) {
		return value.Missing, evalErr(op, "$substrCP: starting index must be a numeric type (is BSON type "+typeName(vs[1])+")")
	}
	if !value.IsNumber(vs[2]) {
		return value.Missing, evalErr(op, "$substrCP: length must be a numeric type (is BSON type "+typeName(vs[2])+")")
	}
	start, ok := intArg(vs[1])
	if !ok {
		return value.Missing, evalErr(op, "$substrCP: starting index cannot be represented as a 32-bit integral value")
	}
	length, ok := intArg(vs[2])
	if !ok {
		return value.Missing, evalErr(op, "$substrCP: length cannot be represented as a 32-bit integral value")
	}
	if start < 0 {
		return value.Missing, evalErr(op, "$substrCP: the starting index must be nonnegative integer.")
	}
	if length < 0 {
		return value.Missing, evalErr(op, "$substrCP: length must be a nonnegative integer.")
	}
	i, cp := 0, int64(0)
	for i < len(s) && cp < start {
		_, n := utf8.DecodeRuneInString(s[i:])
		i += n
		cp++
	}
	j := i
	for j < len(s) && cp < start+length {
		_, n := utf8.DecodeRuneInString(s[j:])
		j += n
		cp++
	}
	return stringValue(s[i:j]), nil
}

func evalStrLenBytes(op string, v bson.RawValue) (bson.RawValue, error) {
	s, ok := str(v)
	if !ok {
		return value.Missing, evalErr(op, "$strLenBytes requires a string argument, found: "+typeName(v))
	}
	return int32Value(int32(len(s))), nil
}

func evalStrLenCP(op string, v bson.RawValue) (bson.RawValue, error) {
	s, ok := str(v)
	if !ok {
		return value.Missing, evalErr(op, "$strLenCP requires a string argument, found: "+typeName(v))
	}
	return int32Value(int32(utf8.RuneCountInString(s))), nil
}

func evalSplit(op string, a, b bson.RawValue) (bson.RawValue, error) {
	if anyNullish(a, b) {
		return nullValue, nil
	}
	s, ok := str(a)
	if !ok {
		return value.Missing, evalErr(op, "$split requires an expression that evaluates to a string as a first argument, found: "+typeName(a))
	}
	sep, ok := str(b)
	if !ok {
		return value.Missing, evalErr(op, "$split requires an expression that evaluates to a string as a second argument, found: "+typeName(b))
	}
	if sep == "" {
		return value.Missing, evalErr(op, "$split requires a non-empty separator")
	}
	out := newArr()
	for _, p := range strings.Split(s, sep) {
		out.add(stringValue(p))
	}
	return out.done(), nil
}

// indexOf builds $indexOfBytes (cp false) and $indexOfCP (cp true).
func indexOf(cp bool) func(op string, vs []bson.RawValue) (bson.RawValue, error) {
	return func(op string, vs []bson.RawValue) (bson.RawValue, error) {
		if value.IsNullish(vs[0]) {
			return nullValue, nil
		}
		s, ok := str(vs[0])
		if !ok {
			return value.Missing, evalErr(op, op+" requires a string as the first argument, found: "+typeName(vs[0]))
		}
		sub, ok := str(vs[1])
		if !ok {
			return value.Missing, evalErr(op, op+" requires a string as the second argument, found: "+typeName(vs[1]))
		}
		var units []int // byte offset of each code point, for $indexOfCP
		n := len(s)
		if cp {
			for i := range s {
				units = append(units, i)
			}
			n = len(units)
		}
		start, end := int64(0), int64(n)
		for i, name := range []string{"starting", "ending"} {
			if len(vs) <= 2+i {
				break
			}
			v := vs[2+i]
			x, ok := intArg(v)
			if !ok {
				return value.Missing, evalErr(op, op+" requires an integral "+name+" index, found a value of type: "+typeName(v)+", with value: "+v.String())
			}
			if x < 0 {
				return value.Missing, evalErr(op, op+" requires a nonnegative "+name+" index, found: "+itoa64(x))
			}
			if i == 0 {
				start = x
			} else {
				end = min(x, int64(n))
			}
		}
		if start > int64(n) || start > end {
			return int32Value(-1), nil
		}
		if !cp {
			if i := strings.Index(s[start:end], sub); i >= 0 {
				return int32Value(int32(start) + int32(i)), nil
			}
			return int32Value(-1), nil
		}
		units = append(units, len(s))
		bs, be := units[start], units[end]
		i := strings.Index(s[bs:be], sub)
		if i < 0 {
			return int32Value(-1), nil
		}
		return int32Value(int32(start) + int32(utf8.RuneCountInString(s[bs:bs+i]))), nil
	}
}

// whitespace is what $trim removes by default (mongod's list).
const whitespace = "\x00 \t\n\v\f\r\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"

func compileTrim(left, right bool) compileFunc {
	return func(op string, args bson.RawValue, sc *scope) (Expr, error) {
		m, err := objArgs(op, args, "input", "chars")
		if err != nil {
			return nil, err
		}
		if _, ok := m["input"]; !ok {
			return nil, compileErr(op, op+" requires an 'input' field")
		}
		in, err := compile(m["input"], sc)
		if err != nil {
			return nil, err
		}
		chars, err := optExpr(m, "chars", sc)
		if err != nil {
			return nil, err
		}
		return evalFunc(func(env *Env) (bson.RawValue, error) {
			v, err := in.Eval(env)
			if err != nil {
				return v, err
			}
			if value.IsNullish(v) {
				return nullValue, nil
			}
			s, ok := str(v)
			if !ok {
				return value.Missing, evalErr(op, op+" requires its input to be a string, got "+v.String()+" (of type "+typeName(v)+") instead.")
			}
			cut := whitespace
			if chars != nil {
				c, err := chars.Eval(env)
				if err != nil {
					return c, err
				}
				if value.IsNullish(c) {
					return nullValue, nil
				}
				if cut, ok = str(c); !ok {
					return value.Missing, evalErr(op, op+" requires 'chars' to be a string, got "+c.String()+" (of type "+typeName(c)+") instead.")
				}
			}
			if left {
				s = strings.TrimLeft(s, cut)
			}
			if right {
				s = strings.TrimRight(s, cut)
			}
			return stringValue(s), nil
		}), nil
	}
}

func compileReplace(all bool) compileFunc {
	return func(op string, args bson.RawValue, sc *scope) (Expr, error) {
		m, err := objArgs(op, args, "input", "find", "replacement")
		if err != nil {
			return nil, err
		}
		var es [3]Expr
		for i, k := range []string{"input", "find", "replacement"} {
			if es[i], err = reqExpr(op, m, k, sc); err != nil {
				return nil, err
			}
		}
		return evalFunc(func(env *Env) (bson.RawValue, error) {
			var ss [3]string
			null := false
			for i, k := range []string{"input", "find", "replacement"} {
				v, err := es[i].Eval(env)
				if err != nil {
					return v, err
				}
				if value.IsNullish(v) {
					null = true
					continue
				}
				s, ok := str(v)
				if !ok {
					return value.Missing, evalErr(op, op+" requires that '"+k+"' be a string, found: "+v.String())
				}
				ss[i] = s
			}
			if null {
				return nullValue, nil
			}
			if !all {
				return stringValue(strings.Replace(ss[0], ss[1], ss[2], 1)), nil
			}
			n := strings.Count(ss[0], ss[1])
			if int64(len(ss[0]))+int64(n)*int64(len(ss[2])-len(ss[1])) > maxStringLen {
				return value.Missing, evalErr(op, op+" result exceeds the maximum string size of 16MB")
			}
			return stringValue(strings.ReplaceAll(ss[0], ss[1], ss[2])), nil
		}), nil
	}
}
