package expr

import (
	"math"
	"math/big"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// dec is a decimal128 operand as an exact coefficient and exponent, for arithmetic that the
// driver's Decimal128 does not provide. Results are rounded to 34 digits, half to even.
type dec struct {
	coef *big.Int
	exp  int
	nan  bool
	inf  int // +1 or -1 for ±Infinity
}

var (
	bigTen  = big.NewInt(10)
	maxCoef = new(big.Int).Sub(new(big.Int).Exp(bigTen, big.NewInt(34), nil), big.NewInt(1))
)

func pow10(n int) *big.Int { return new(big.Int).Exp(bigTen, big.NewInt(int64(n)), nil) }

func (d dec) special() bool { return d.nan || d.inf != 0 }

func (d dec) sign() int {
	if d.nan {
		return 0
	}
	if d.inf != 0 {
		return d.inf
	}
	return d.coef.Sign()
}

// toDec converts any number; doubles keep 15 significant digits, as mongod converts them.
func toDec(v bson.RawValue) dec {
	switch v.Type {
	case bson.TypeInt32:
		return dec{coef: big.NewInt(int64(v.Int32()))}
	case bson.TypeInt64:
		return dec{coef: big.NewInt(v.Int64())}
	case bson.TypeDouble:
		return decFromFloat(v.Double(), 15)
	case bson.TypeDecimal128:
		d := v.Decimal128()
		if d.IsNaN() {
			return dec{nan: true}
		}
		if i := d.IsInf(); i != 0 {
			return dec{inf: i}
		}
		c, e, err := d.BigInt()
		if err != nil {
			return dec{nan: true}
		}
		return dec{coef: c, exp: e}
	}
	return dec{nan: true}
}

// decFromFloat converts a double keeping digits significant digits.
func decFromFloat(f float64, digits int) dec {
	switch {
	case math.IsNaN(f):
		return dec{nan: true}
	case math.IsInf(f, 1):
		return dec{inf: 1}
	case math.IsInf(f, -1):
		return dec{inf: -1}
	case f == 0:
		return dec{coef: new(big.Int)}
	}
	d, _ := parseDec(strconv.FormatFloat(f, 'e', digits-1, 64))
	return d
}

// parseDec parses a decimal string ("1.5e3", "NaN", "-Infinity").
func parseDec(s string) (dec, bool) {
	d128, err := bson.ParseDecimal128(s)
	if err != nil {
		return dec{}, false
	}
	return toDec(decimalValue(d128)), true
}

func numDigits(c *big.Int) int {
	if c.Sign() == 0 {
		return 1
	}
	s := c.String()
	return len(strings.TrimPrefix(s, "-"))
}

// shiftRound divides c by 10^k rounding half to even (k > 0).
func shiftRound(c *big.Int, k int, mode roundMode) *big.Int {
	if k <= 0 {
		return new(big.Int).Set(c)
	}
	if k > 80 {
		// Everything is discarded; only the sign and rounding direction matter.
		k = numDigits(c) + 1
	}
	p := pow10(k)
	q, r := new(big.Int).QuoRem(c, p, new(big.Int))
	if r.Sign() == 0 {
		return q
	}
	neg := c.Sign() < 0
	switch mode {
	case roundTrunc:
		return q
	case roundFloor:
		if neg {
			q.Sub(q, big.NewInt(1))
		}
		return q
	case roundCeil:
		if !neg {
			q.Add(q, big.NewInt(1))
		}
		return q
	}
	twice := new(big.Int).Abs(r)
	twice.Lsh(twice, 1)
	cmp := twice.Cmp(p)
	if cmp > 0 || (cmp == 0 && q.Bit(0) == 1) {
		if neg {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
	}
	return q
}

type roundMode int

const (
	roundHalfEven roundMode = iota
	roundTrunc
	roundFloor
	roundCeil
)

// value encodes d as a decimal128, rounding to 34 digits.
func (d dec) value() bson.RawValue {
	switch {
	case d.nan:
		return decimalValue(mustDec("NaN"))
	case d.inf > 0:
		return decimalValue(mustDec("Infinity"))
	case d.inf < 0:
		return decimalValue(mustDec("-Infinity"))
	}
	c, e := d.coef, d.exp
	if n := numDigits(c); n > 34 {
		c = shiftRound(c, n-34, roundHalfEven)
		e += n - 34
		if new(big.Int).Abs(c).Cmp(maxCoef) > 0 {
			c = shiftRound(c, 1, roundHalfEven)
			e++
		}
	}
	if e < bson.MinDecimal128Exp {
		c = shiftRound(c, bson.MinDecimal128Exp-e, roundHalfEven)
		e = bson.MinDecimal128Exp
	}
	if c.Sign() == 0 && e > bson.MaxDecimal128Exp {
		e = bson.MaxDecimal128Exp
	}
	r, ok := bson.ParseDecimal128FromBigInt(c, e)
	if !ok {
		if c.Sign() < 0 {
			return decimalValue(mustDec("-Infinity"))
		}
		return decimalValue(mustDec("Infinity"))
	}
	return decimalValue(r)
}

func mustDec(s string) bson.Decimal128 {
	d, _ := bson.ParseDecimal128(s)
	return d
}

// float returns d as the nearest double.
func (d dec) float() float64 {
	switch {
	case d.nan:
		return math.NaN()
	case d.inf != 0:
		return math.Inf(d.inf)
	}
	f, _ := strconv.ParseFloat(d.coef.String()+"e"+strconv.Itoa(d.exp), 64)
	return f
}

// align returns both coefficients scaled exactly to the smaller exponent (at most ~6200
// digits, the decimal128 exponent range).
func align(a, b dec) (ca, cb *big.Int, e int) {
	e = min(a.exp, b.exp)
	return new(big.Int).Mul(a.coef, pow10(a.exp-e)), new(big.Int).Mul(b.coef, pow10(b.exp-e)), e
}

func decAdd(a, b dec) dec {
	switch {
	case a.nan || b.nan:
		return dec{nan: true}
	case a.inf != 0 && b.inf != 0:
		if a.inf != b.inf {
			return dec{nan: true}
		}
		return a
	case a.inf != 0:
		return a
	case b.inf != 0:
		return b
	}
	if a.coef.Sign() == 0 && a.exp > b.exp {
		a.exp = b.exp
	}
	if b.coef.Sign() == 0 && b.exp > a.exp {
		b.exp = a.exp
	}
	ca, cb, e := alignNear(a, b)
	return dec{coef: new(big.Int).Add(ca, cb), exp: e}
}

// alignNear aligns exponents; when one operand is far below the other's precision it is
// replaced by a tiny sticky value of the same sign, which rounds identically.
func alignNear(a, b dec) (ca, cb *big.Int, e int) {
	if a.exp < b.exp {
		cb, ca, e = alignNear(b, a)
		return ca, cb, e
	}
	// a.exp >= b.exp
	gap := a.exp - b.exp
	if a.coef.Sign() != 0 && gap > 80 && gap-numDigits(b.coef) > 40 {
		// b is below a's last digit by more than 40 places: keep a at 40 extra digits plus a sticky unit.
		ca = new(big.Int).Mul(a.coef, pow10(40))
		return ca, big.NewInt(int64(b.coef.Sign())), a.exp - 40
	}
	return new(big.Int).Mul(a.coef, pow10(gap)), b.coef, b.exp
}

func decNeg(a dec) dec {
	if a.nan {
		return a
	}
	if a.inf != 0 {
		return dec{inf: -a.inf}
	}
	return dec{coef: new(big.Int).Neg(a.coef), exp: a.exp}
}

func decMul(a, b dec) dec {
	switch {
	case a.nan || b.nan:
		return dec{nan: true}
	case a.inf != 0 || b.inf != 0:
		s := a.sign() * b.sign()
		if s == 0 {
			return dec{nan: true}
		}
		return dec{inf: s}
	}
	return dec{coef: new(big.Int).Mul(a.coef, b.coef), exp: a.exp + b.exp}
}

// decDiv divides; b must not be zero.
func decDiv(a, b dec) dec {
	switch {
	case a.nan || b.nan, a.inf != 0 && b.inf != 0:
		return dec{nan: true}
	case a.inf != 0:
		return dec{inf: a.inf * b.sign()}
	case b.inf != 0:
		return dec{coef: new(big.Int), exp: 0}
	}
	if a.coef.Sign() == 0 {
		return dec{coef: new(big.Int), exp: a.exp - b.exp}
	}
	scale := 36 + numDigits(b.coef) - numDigits(a.coef)
	if scale < 0 {
		scale = 0
	}
	num := new(big.Int).Mul(a.coef, pow10(scale))
	q, r := new(big.Int).QuoRem(num, b.coef, new(big.Int))
	e := a.exp - b.exp - scale
	if r.Sign() != 0 {
		// Sticky digit so that half-even rounding sees the remainder.
		q.Mul(q, bigTen)
		if q.Sign() < 0 || (q.Sign() == 0 && (a.coef.Sign() < 0) != (b.coef.Sign() < 0)) {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
		e--
		return dec{coef: q, exp: e}
	}
	// Exact: prefer the exponent a.exp - b.exp (IEEE 754), dropping trailing zeros.
	pref := a.exp - b.exp
	m := new(big.Int)
	for e < pref {
		qq, rr := new(big.Int).QuoRem(q, bigTen, m)
		if rr.Sign() != 0 {
			break
		}
		q = qq
		e++
	}
	return dec{coef: q, exp: e}
}

// decMod is the truncated remainder; b must not be zero.
func decMod(a, b dec) dec {
	if a.special() || b.nan {
		return dec{nan: true}
	}
	if b.inf != 0 {
		return a
	}
	ca, cb, e := align(a, b)
	return dec{coef: new(big.Int).Rem(ca, cb), exp: e}
}

// decQuantize rounds to places digits after the point; a with fewer places is unchanged.
func decQuantize(a dec, places int, mode roundMode) dec {
	if a.special() || -a.exp <= places {
		return a
	}
	k := -places - a.exp
	return dec{coef: shiftRound(a.coef, k, mode), exp: -places}
}

// decQuantizePad is Decimal128::quantize to 1E-places, which $round and $trunc use: as
// decQuantize, but a with fewer places is padded with zeros up to places or up to the 34
// digits of decimal128, whichever comes first ($round of 1.298 to 100 places is
// 1.298000000000000000000000000000000).
func decQuantizePad(a dec, places int, mode roundMode) dec {
	if a.special() || -a.exp >= places {
		return decQuantize(a, places, mode)
	}
	pad := places + a.exp
	if a.coef.Sign() != 0 {
		pad = min(pad, 34-numDigits(a.coef))
	}
	if pad <= 0 {
		return a
	}
	return dec{coef: new(big.Int).Mul(a.coef, pow10(pad)), exp: a.exp - pad}
}

func decIsZero(a dec) bool { return !a.special() && a.coef.Sign() == 0 }

func bigOne() *big.Int { return big.NewInt(1) }

type bigInt = big.Int
