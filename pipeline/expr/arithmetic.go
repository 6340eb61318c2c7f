package expr

import (
	"math"
	"math/big"
	"math/bits"

	"github.com/cockroachdb/apd/v3"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/value"
)

// numeric kinds in promotion order.
const (
	kInt32 = iota
	kInt64
	kDouble
	kDecimal
)

func numKind(t bson.Type) int {
	switch t {
	case bson.TypeInt32:
		return kInt32
	case bson.TypeInt64:
		return kInt64
	case bson.TypeDouble:
		return kDouble
	}
	return kDecimal
}

func asInt64(v bson.RawValue) int64 {
	if v.Type == bson.TypeInt32 {
		return int64(v.Int32())
	}
	return v.Int64()
}

// asFloat converts any number to a double.
func asFloat(v bson.RawValue) float64 {
	switch v.Type {
	case bson.TypeInt32:
		return float64(v.Int32())
	case bson.TypeInt64:
		return float64(v.Int64())
	case bson.TypeDouble:
		return v.Double()
	case bson.TypeDecimal128:
		return toDec(v).float()
	}
	return math.NaN()
}

// numOp is an arithmetic operation on two numbers with mongod's promotion rules.
type numOp int

const (
	opAdd numOp = iota
	opSub
	opMul
)

func arith(op numOp, a, b bson.RawValue) bson.RawValue {
	x, okA := accOf(a)
	y, okB := accOf(b)
	if !okA || !okB {
		x, y := toDec(a), toDec(b)
		switch op {
		case opAdd:
			return decAdd(x, y).value()
		case opSub:
			return decAdd(x, decNeg(y)).value()
		}
		return decMul(x, y).value()
	}
	return x.step(op, y).value()
}

// numAcc is an int32, int64 or double held unboxed, so that a sum or product of several
// operands allocates only its result.
type numAcc struct {
	k int // kInt32, kInt64 or kDouble
	i int64
	f float64
}

// accOf unboxes an int32, int64 or double; it reports false for anything else (a decimal).
func accOf(v bson.RawValue) (numAcc, bool) {
	switch v.Type {
	case bson.TypeInt32:
		return numAcc{k: kInt32, i: int64(v.Int32())}, true
	case bson.TypeInt64:
		return numAcc{k: kInt64, i: v.Int64()}, true
	case bson.TypeDouble:
		return numAcc{k: kDouble, f: v.Double()}, true
	}
	return numAcc{}, false
}

func (a numAcc) float() float64 {
	if a.k == kDouble {
		return a.f
	}
	return float64(a.i)
}

// step is a op b with mongod's promotion rules: the wider kind of the two; an integer result
// that overflows a long becomes a double, and one that overflows an int of two ints a long.
func (a numAcc) step(op numOp, b numAcc) numAcc {
	k := max(a.k, b.k)
	if k == kDouble {
		x, y := a.float(), b.float()
		switch op {
		case opAdd:
			return numAcc{k: kDouble, f: x + y}
		case opSub:
			return numAcc{k: kDouble, f: x - y}
		}
		return numAcc{k: kDouble, f: x * y}
	}
	x, y := a.i, b.i
	var r int64
	overflow := false
	switch op {
	case opAdd:
		r = x + y
		overflow = (x >= 0) == (y >= 0) && (r >= 0) != (x >= 0)
	case opSub:
		r = x - y
		overflow = (x >= 0) != (y >= 0) && (r >= 0) != (x >= 0)
	default:
		hi, lo := bits.Mul64(uint64(absI(x)), uint64(absI(y)))
		neg := (x < 0) != (y < 0)
		switch {
		case x == math.MinInt64 || y == math.MinInt64:
			overflow = x != 0 && y != 0 && x != 1 && y != 1
			r = x * y
		case hi != 0 || lo > math.MaxInt64+1 || (lo == math.MaxInt64+1 && !neg):
			overflow = true
		default:
			r = int64(lo)
			if neg {
				r = -r
			}
		}
	}
	if overflow {
		x, y := float64(x), float64(y)
		switch op {
		case opAdd:
			return numAcc{k: kDouble, f: x + y}
		case opSub:
			return numAcc{k: kDouble, f: x - y}
		}
		return numAcc{k: kDouble, f: x * y}
	}
	if k == kInt32 && r >= math.MinInt32 && r <= math.MaxInt32 {
		return numAcc{k: kInt32, i: r}
	}
	return numAcc{k: kInt64, i: r}
}

// value boxes a as a BSON value.
func (a numAcc) value() bson.RawValue {
	switch a.k {
	case kInt32:
		return int32Value(int32(a.i))
	case kInt64:
		return int64Value(a.i)
	}
	return doubleValue(a.f)
}

func absI(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// roundToInt64 rounds a number to whole milliseconds for date arithmetic: doubles half away
// from zero (llround), decimals half to even (Decimal128::toLong). NaN, infinities and values
// outside a long fail.
func roundToInt64(v bson.RawValue) (int64, bool) {
	switch v.Type {
	case bson.TypeInt32, bson.TypeInt64:
		return asInt64(v), true
	case bson.TypeDecimal128:
		d := toDec(v)
		if d.special() {
			return 0, false
		}
		r := decQuantize(d, 0, roundHalfEven)
		c := r.coef
		if r.exp > 0 {
			if r.exp > 20 {
				return 0, c.Sign() == 0
			}
			c = new(big.Int).Mul(c, pow10(r.exp))
		}
		if !c.IsInt64() {
			return 0, false
		}
		return c.Int64(), true
	}
	f := math.Round(asFloat(v))
	if math.IsNaN(f) || f < -9.223372036854775e18 || f >= 9.223372036854775e18 {
		return 0, false
	}
	return int64(f), true
}

// evalAdd is $add. Numbers add with arith's promotion rules. With a date, as in mongod's
// ExpressionAdd, the total so far is rounded to whole milliseconds when the date is met, and
// each later operand is rounded on its own before it is added; so the order of the operands
// can change the result by a millisecond (add_with_date.js). The result must fit a long.
func evalAdd(op string, vs []bson.RawValue) (bson.RawValue, error) {
	// The leading int32, int64 and double operands (usually all of them) add unboxed.
	acc := numAcc{k: kInt32}
	for len(vs) > 0 {
		a, ok := accOf(vs[0])
		if !ok {
			break
		}
		acc, vs = acc.step(opAdd, a), vs[1:]
	}
	sum := acc.value()
	date, hasDate := int64(0), false
	overflow := func() (bson.RawValue, error) {
		return value.Missing, evalErr(op, "date overflow in $add")
	}
	for _, v := range vs {
		switch {
		case value.IsNullish(v):
			return nullValue, nil
		case value.IsNumber(v):
			if !hasDate {
				sum = arith(opAdd, sum, v)
				continue
			}
			n, ok := roundToInt64(v)
			r := date + n
			if !ok || (n > 0 && r < date) || (n < 0 && r > date) {
				return overflow()
			}
			date = r
		case v.Type == bson.TypeDateTime:
			if hasDate {
				return value.Missing, evalErr(op, "only one date allowed in an $add expression")
			}
			n, ok := roundToInt64(sum)
			d := v.DateTime()
			r := d + n
			if !ok || (n > 0 && r < d) || (n < 0 && r > d) {
				return overflow()
			}
			date, hasDate = r, true
		default:
			return value.Missing, evalErr(op, "$add only supports numeric or date types, not "+typeName(v))
		}
	}
	if !hasDate {
		return sum, nil
	}
	return dateValue(date), nil
}

func evalSubtract(op string, a, b bson.RawValue) (bson.RawValue, error) {
	switch {
	case anyNullish(a, b):
		return nullValue, nil
	case value.IsNumber(a) && value.IsNumber(b):
		return arith(opSub, a, b), nil
	case a.Type == bson.TypeDateTime && b.Type == bson.TypeDateTime:
		return int64Value(a.DateTime() - b.DateTime()), nil
	case a.Type == bson.TypeDateTime && value.IsNumber(b):
		n, ok := roundToInt64(b)
		if !ok {
			return value.Missing, evalErr(op, "date overflow in $subtract")
		}
		return dateValue(a.DateTime() - n), nil
	}
	return value.Missing, evalErr(op, "cant $subtract a "+typeName(b)+" from a "+typeName(a))
}

func evalMultiply(op string, vs []bson.RawValue) (bson.RawValue, error) {
	acc := numAcc{k: kInt32, i: 1}
	for len(vs) > 0 {
		a, ok := accOf(vs[0])
		if !ok {
			break
		}
		acc, vs = acc.step(opMul, a), vs[1:]
	}
	prod := acc.value()
	for _, v := range vs {
		switch {
		case value.IsNullish(v):
			return nullValue, nil
		case value.IsNumber(v):
			prod = arith(opMul, prod, v)
		default:
			return value.Missing, evalErr(op, "$multiply only supports numeric types, not "+typeName(v))
		}
	}
	return prod, nil
}

func isZero(v bson.RawValue) bool {
	switch v.Type {
	case bson.TypeInt32:
		return v.Int32() == 0
	case bson.TypeInt64:
		return v.Int64() == 0
	case bson.TypeDouble:
		return v.Double() == 0
	case bson.TypeDecimal128:
		return decIsZero(toDec(v))
	}
	return false
}

func evalDivide(op string, a, b bson.RawValue) (bson.RawValue, error) {
	if anyNullish(a, b) {
		return nullValue, nil
	}
	if !value.IsNumber(a) || !value.IsNumber(b) {
		return value.Missing, evalErr(op, "$divide only supports numeric types, not "+typeName(a)+" and "+typeName(b))
	}
	if isZero(b) {
		return value.Missing, evalErr(op, "can't $divide by zero")
	}
	if a.Type == bson.TypeDecimal128 || b.Type == bson.TypeDecimal128 {
		return decDiv(toDec(a), toDec(b)).value(), nil
	}
	return doubleValue(asFloat(a) / asFloat(b)), nil
}

func evalMod(op string, a, b bson.RawValue) (bson.RawValue, error) {
	if anyNullish(a, b) {
		return nullValue, nil
	}
	if !value.IsNumber(a) || !value.IsNumber(b) {
		return value.Missing, evalErr(op, "$mod only supports numeric types, not "+typeName(a)+" and "+typeName(b))
	}
	if isZero(b) {
		return value.Missing, evalErr(op, "can't $mod by zero")
	}
	// mongod's ExpressionMod: a double divisor holding an int32 value divides an int or a
	// long as an integer, so {$mod: [8, 3.0]} is int 2 and {$mod: [NumberLong(8), 3.0]} long 2.
	ka, kb := numKind(a.Type), numKind(b.Type)
	if kb == kDouble && ka != kDouble && ka != kDecimal && isInt32Double(b.Double()) {
		kb = kInt32
		b = int32Value(int32(b.Double()))
	}
	switch max(ka, kb) {
	case kDecimal:
		return decMod(toDec(a), toDec(b)).value(), nil
	case kDouble:
		return doubleValue(math.Mod(asFloat(a), asFloat(b))), nil
	case kInt64:
		x, y := asInt64(a), asInt64(b)
		if y == -1 {
			return int64Value(0), nil
		}
		return int64Value(x % y), nil
	}
	x, y := a.Int32(), b.Int32()
	if y == -1 {
		return int32Value(0), nil
	}
	return int32Value(x % y), nil
}

// isInt32Double reports whether f holds an int32 value exactly (mongod's Value::integral).
func isInt32Double(f float64) bool {
	return f == math.Trunc(f) && f >= math.MinInt32 && f <= math.MaxInt32
}

func numArg(op string, v bson.RawValue) (bool, error) {
	if value.IsNullish(v) {
		return false, nil
	}
	if !value.IsNumber(v) {
		return false, evalErr(op, op+" only supports numeric types, not "+typeName(v))
	}
	return true, nil
}

func evalAbs(op string, v bson.RawValue) (bson.RawValue, error) {
	if ok, err := numArg(op, v); !ok {
		return nullValue, err
	}
	switch v.Type {
	case bson.TypeInt32:
		i := int64(v.Int32())
		return intValue(absI(i)), nil
	case bson.TypeInt64:
		if v.Int64() == math.MinInt64 {
			return value.Missing, evalErr(op, "can't take $abs of long long min")
		}
		return int64Value(absI(v.Int64())), nil
	case bson.TypeDouble:
		return doubleValue(math.Abs(v.Double())), nil
	}
	d := toDec(v)
	if d.sign() < 0 {
		d = decNeg(d)
	}
	return d.value(), nil
}

func roundingUnary(mode roundMode) func(op string, v bson.RawValue) (bson.RawValue, error) {
	return func(op string, v bson.RawValue) (bson.RawValue, error) {
		if ok, err := numArg(op, v); !ok {
			return nullValue, err
		}
		switch v.Type {
		case bson.TypeInt32, bson.TypeInt64:
			return v, nil
		case bson.TypeDouble:
			if mode == roundFloor {
				return doubleValue(math.Floor(v.Double())), nil
			}
			return doubleValue(math.Ceil(v.Double())), nil
		}
		return decQuantize(toDec(v), 0, mode).value(), nil
	}
}

// compileRound compiles $round and $trunc: [number, place].
func compileRound(mode roundMode) compileFunc {
	return func(op string, args bson.RawValue, sc *scope) (Expr, error) {
		es, err := countArgs(op, args, sc, 1, 2)
		if err != nil {
			return nil, err
		}
		return evalFunc(func(env *Env) (bson.RawValue, error) {
			vs, mark, err := evalAll(env, es)
			if err != nil {
				return value.Missing, err
			}
			defer env.release(mark)
			place := int64(0)
			if len(vs) == 2 {
				p := vs[1]
				if value.IsNullish(p) {
					return nullValue, nil
				}
				if !value.IsNumber(p) || !isIntegral(p) {
					return value.Missing, evalErr(op, op+" requires \"place\" argument to be an integer between -20 and 100")
				}
				place = int64(math.Round(asFloat(p)))
				if place < -20 || place > 100 {
					return value.Missing, evalErr(op, op+" requires \"place\" argument to be an integer between -20 and 100")
				}
			}
			return roundNumber(op, vs[0], int(place), mode)
		}), nil
	}
}

func isIntegral(v bson.RawValue) bool {
	switch v.Type {
	case bson.TypeInt32, bson.TypeInt64:
		return true
	case bson.TypeDouble:
		f := v.Double()
		return f == math.Trunc(f) && !math.IsInf(f, 0)
	case bson.TypeDecimal128:
		d := toDec(v)
		return !d.special() && decIsZero(decMod(d, dec{coef: bigOne()}))
	}
	return false
}

func roundNumber(op string, v bson.RawValue, place int, mode roundMode) (bson.RawValue, error) {
	if ok, err := numArg(op, v); !ok {
		return nullValue, err
	}
	switch v.Type {
	case bson.TypeInt32, bson.TypeInt64:
		if place >= 0 {
			return v, nil
		}
		r := decQuantize(toDec(v), place, mode)
		f := r.coef
		for i := 0; i < -place; i++ {
			f = f.Mul(f, bigTen)
		}
		if !f.IsInt64() {
			return value.Missing, evalErr(op, "invalid conversion from Decimal128 result in "+op+" resulting from arguments: ["+v.String()+", "+itoa(place)+"]")
		}
		if v.Type == bson.TypeInt32 {
			return intValue(f.Int64()), nil
		}
		return int64Value(f.Int64()), nil
	case bson.TypeDouble:
		f := v.Double()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return v, nil
		}
		return doubleValue(decQuantize(decFromFloat(f, 34), place, mode).float()), nil
	}
	return decQuantizePad(toDec(v), place, mode).value(), nil
}

// floatUnary is $exp, $ln, $log10, $sqrt: a double result for int, long and double inputs,
// and for a decimal input the decimal128 result at 34 digits (decFn).
func floatUnary(fn func(float64) float64, decFn func(c *apd.Context, d, x *apd.Decimal) (apd.Condition, error), domain func(float64) string) func(op string, v bson.RawValue) (bson.RawValue, error) {
	return func(op string, v bson.RawValue) (bson.RawValue, error) {
		if ok, err := numArg(op, v); !ok {
			return nullValue, err
		}
		if v.Type == bson.TypeDecimal128 {
			d := toDec(v)
			if domain != nil && !d.nan {
				if msg := domain(float64(d.sign())); msg != "" {
					return value.Missing, evalErr(op, op+msg+formatNum(v))
				}
			}
			return decUnary(decFn, v), nil
		}
		f := asFloat(v)
		if domain != nil && !math.IsNaN(f) {
			if msg := domain(f); msg != "" {
				return value.Missing, evalErr(op, op+msg+formatNum(v))
			}
		}
		return doubleValue(fn(f)), nil
	}
}

func positiveDomain(f float64) string {
	if f <= 0 {
		return "'s argument must be a positive number, but is "
	}
	return ""
}

// formatNum renders a number for an error message.
func formatNum(v bson.RawValue) string {
	switch v.Type {
	case bson.TypeInt32, bson.TypeInt64:
		return itoa64(asInt64(v))
	case bson.TypeDouble:
		return formatDouble(v.Double())
	case bson.TypeDecimal128:
		return v.Decimal128().String()
	}
	return v.String()
}

func evalLog(op string, a, b bson.RawValue) (bson.RawValue, error) {
	if anyNullish(a, b) {
		return nullValue, nil
	}
	if !value.IsNumber(a) {
		return value.Missing, evalErr(op, "$log's argument must be numeric, not "+typeName(a))
	}
	if !value.IsNumber(b) {
		return value.Missing, evalErr(op, "$log's base must be numeric, not "+typeName(b))
	}
	if a.Type == bson.TypeDecimal128 || b.Type == bson.TypeDecimal128 {
		x, base := toDec(a), toDec(b)
		if !x.nan && x.sign() <= 0 {
			return value.Missing, evalErr(op, "$log's argument must be a positive number, but is "+formatNum(a))
		}
		if !base.nan && (base.sign() <= 0 || value.CompareNumbers(b, int32Value(1)) == 0) {
			return value.Missing, evalErr(op, "$log's base must be a positive number not equal to 1, but is "+formatNum(b))
		}
		return decLog(a, b), nil
	}
	x, base := asFloat(a), asFloat(b)
	if x <= 0 {
		return value.Missing, evalErr(op, "$log's argument must be a positive number, but is "+formatNum(a))
	}
	if base <= 0 || base == 1 {
		return value.Missing, evalErr(op, "$log's base must be a positive number not equal to 1, but is "+formatNum(b))
	}
	return doubleValue(math.Log(x) / math.Log(base)), nil
}

func evalPow(op string, a, b bson.RawValue) (bson.RawValue, error) {
	if anyNullish(a, b) {
		return nullValue, nil
	}
	if !value.IsNumber(a) {
		return value.Missing, evalErr(op, "$pow's base must be numeric, not "+typeName(a))
	}
	if !value.IsNumber(b) {
		return value.Missing, evalErr(op, "$pow's exponent must be numeric, not "+typeName(b))
	}
	if isZero(a) && value.CompareNumbers(b, int32Value(0)) < 0 {
		return value.Missing, evalErr(op, "$pow cannot take a base of 0 and a negative exponent")
	}
	k := max(numKind(a.Type), numKind(b.Type))
	switch k {
	case kDecimal:
		return decPow(a, b), nil
	case kDouble:
		return doubleValue(math.Pow(asFloat(a), asFloat(b))), nil
	}
	// Integers: an exact result when it fits a long (mongod's ExpressionPow), a long when
	// either operand is one, an int when both are and the result fits; otherwise a double.
	base, exp := asInt64(a), asInt64(b)
	switch {
	case base == 1 || base == 0 && exp > 0:
		return intResult(k, base), nil
	case base == -1:
		if exp%2 == 0 {
			return intResult(k, 1), nil
		}
		return intResult(k, -1), nil
	case exp < 0 || exp > 63:
		return doubleValue(math.Pow(float64(base), float64(exp))), nil
	}
	r := new(big.Int).Exp(big.NewInt(base), big.NewInt(exp), nil)
	if !r.IsInt64() {
		return doubleValue(math.Pow(float64(base), float64(exp))), nil
	}
	return intResult(k, r.Int64()), nil
}

func intResult(k int, r int64) bson.RawValue {
	if k == kInt32 && r >= math.MinInt32 && r <= math.MaxInt32 {
		return int32Value(int32(r))
	}
	return int64Value(r)
}

func mathExp(f float64) float64   { return math.Exp(f) }
func mathLog(f float64) float64   { return math.Log(f) }
func mathLog10(f float64) float64 { return math.Log10(f) }
func mathSqrt(f float64) float64  { return math.Sqrt(f) }

func sqrtDomain(f float64) string {
	if f < 0 {
		return "'s argument must be greater than or equal to 0, but is "
	}
	return ""
}
