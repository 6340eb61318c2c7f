package expr

import (
	"github.com/cockroachdb/apd/v3"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// dec128 is IEEE 754-2008 decimal128 arithmetic: 34 significant digits, half to even, the
// exponent range of decimal128 (General Decimal Arithmetic, as mongod's Intel library
// computes $sqrt, $exp, $ln, $log, $log10 and $pow on decimals). Conditions are not trapped:
// an overflow gives Infinity and an invalid operation NaN, as in IEEE 754.
var dec128 = apd.Context{
	Precision:   34,
	MaxExponent: 6144,
	MinExponent: -6143,
	Rounding:    apd.RoundHalfEven,
}

// toAPD converts any number to an apd decimal (doubles keep 15 digits, as toDec does).
func toAPD(v bson.RawValue) *apd.Decimal {
	var s string
	if v.Type == bson.TypeDecimal128 {
		s = v.Decimal128().String()
	} else {
		s = toDec(v).value().Decimal128().String()
	}
	d, _, err := apd.NewFromString(s)
	if err != nil {
		return &apd.Decimal{Form: apd.NaN}
	}
	return d
}

// apdValue encodes an apd result as a decimal128 value.
func apdValue(d *apd.Decimal) bson.RawValue {
	switch d.Form {
	case apd.NaN, apd.NaNSignaling:
		return decimalValue(mustDec("NaN"))
	case apd.Infinite:
		if d.Negative {
			return decimalValue(mustDec("-Infinity"))
		}
		return decimalValue(mustDec("Infinity"))
	}
	r, ok := parseDec(d.Text('E'))
	if !ok {
		return decimalValue(mustDec("NaN"))
	}
	return r.value()
}

// decUnary applies one of apd's functions at decimal128 precision.
func decUnary(fn func(c *apd.Context, d, x *apd.Decimal) (apd.Condition, error), v bson.RawValue) bson.RawValue {
	var r apd.Decimal
	_, _ = fn(&dec128, &r, toAPD(v))
	return apdValue(&r)
}

// idealExponent gives an exact result d the exponent IEEE 754 prefers (ideal): trailing
// zeros are removed down to it, or added back up to it within 34 digits. An inexact result
// keeps its full coefficient.
func idealExponent(d *apd.Decimal, cond apd.Condition, ideal int32) {
	if cond.Inexact() || d.Form != apd.Finite {
		return
	}
	var r apd.Decimal
	r.Reduce(d)
	if r.IsZero() {
		d.Exponent = min(max(ideal, dec128.MinExponent-33), dec128.MaxExponent-33)
		return
	}
	if r.Exponent > ideal {
		shift := int64(r.Exponent) - int64(ideal)
		if room := 34 - r.NumDigits(); shift > room {
			shift = room
		}
		_, _ = apd.BaseContext.WithPrecision(80).Quantize(&r, &r, r.Exponent-int32(shift))
	}
	d.Set(&r)
}

// apdSqrt is the square root; an exact root has the ideal exponent floor(e/2) of IEEE 754
// (the square root of 4 is 2, of 4.00 is 2.0).
func apdSqrt(c *apd.Context, d, x *apd.Decimal) (apd.Condition, error) {
	cond, err := c.Sqrt(d, x)
	if err == nil && x.Form == apd.Finite {
		ideal := x.Exponent / 2
		if x.Exponent < 0 && x.Exponent%2 != 0 {
			ideal--
		}
		idealExponent(d, cond, ideal)
	}
	return cond, err
}

func apdExp(c *apd.Context, d, x *apd.Decimal) (apd.Condition, error) { return c.Exp(d, x) }
func apdLn(c *apd.Context, d, x *apd.Decimal) (apd.Condition, error)  { return c.Ln(d, x) }

// apdLog10 is the base-10 logarithm; of a power of ten it is the exact integer (log10 of 100
// is 2).
func apdLog10(c *apd.Context, d, x *apd.Decimal) (apd.Condition, error) {
	if x.Form == apd.Finite && !x.Negative && !x.IsZero() {
		var r apd.Decimal
		r.Reduce(x)
		if r.Coeff.Cmp(apd.NewBigInt(1)) == 0 {
			d.SetInt64(int64(r.Exponent))
			return 0, nil
		}
	}
	return c.Log10(d, x)
}

// decLog is $log on decimals: log10 for base 10, else ln(x)/ln(base), each rounded to 34
// digits, as mongod's Decimal128::logarithm computes it.
func decLog(x, base bson.RawValue) bson.RawValue {
	bx, bb := toAPD(x), toAPD(base)
	var r apd.Decimal
	if bb.Cmp(apd.New(10, 0)) == 0 {
		_, _ = apdLog10(&dec128, &r, bx)
		return apdValue(&r)
	}
	var lx, lb apd.Decimal
	_, _ = dec128.Ln(&lx, bx)
	_, _ = dec128.Ln(&lb, bb)
	cond, _ := dec128.Quo(&r, &lx, &lb)
	idealExponent(&r, cond, lx.Exponent-lb.Exponent)
	return apdValue(&r)
}

// decPow is $pow with a decimal operand. The result has a full 34-digit coefficient where the
// exponent range allows (Intel's bid128_pow: pow(10.0, 2) is 100.0000000000000000000000000000000).
func decPow(x, y bson.RawValue) bson.RawValue {
	var r apd.Decimal
	_, _ = dec128.Pow(&r, toAPD(x), toAPD(y))
	if r.Form == apd.Finite && !r.IsZero() {
		if n := r.NumDigits(); n < 34 {
			pad := 34 - n
			if lim := int64(r.Exponent) - (int64(dec128.MinExponent) - 33); pad > lim {
				pad = max(lim, 0)
			}
			if pad > 0 {
				var scaled apd.Decimal
				_, _ = dec128.Quantize(&scaled, &r, r.Exponent-int32(pad))
				if scaled.Form == apd.Finite {
					r = scaled
				}
			}
		}
	}
	return apdValue(&r)
}
