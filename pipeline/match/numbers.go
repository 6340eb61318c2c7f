package match

import (
	"math"
	"math/big"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func isNaN(v bson.RawValue) bool {
	switch v.Type {
	case bson.TypeDouble:
		f, _ := v.DoubleOK()
		return math.IsNaN(f)
	case bson.TypeDecimal128:
		d, _ := v.Decimal128OK()
		return d.IsNaN()
	}
	return false
}

// asNumber returns a numeric value as a float64.
func asNumber(v bson.RawValue) (float64, bool) {
	switch v.Type {
	case bson.TypeInt32:
		i, ok := v.Int32OK()
		return float64(i), ok
	case bson.TypeInt64:
		i, ok := v.Int64OK()
		return float64(i), ok
	case bson.TypeDouble:
		return v.DoubleOK()
	case bson.TypeDecimal128:
		d, ok := v.Decimal128OK()
		if !ok {
			return 0, false
		}
		f, err := strconv.ParseFloat(d.String(), 64)
		if err != nil {
			// "NaN", "Infinity" and "-Infinity" are spelled differently in Go.
			switch d.IsInf() {
			case 1:
				return math.Inf(1), true
			case -1:
				return math.Inf(-1), true
			}
			return math.NaN(), true
		}
		return f, true
	}
	return 0, false
}

// asInt64 returns a number that is a whole value representable as an int64; exact reports
// whether it was (a fractional or out-of-range value is truncated or saturated, NaN gives 0).
func asInt64(v bson.RawValue) (n int64, exact, ok bool) {
	switch v.Type {
	case bson.TypeInt32:
		i, ok := v.Int32OK()
		return int64(i), ok, ok
	case bson.TypeInt64:
		i, ok := v.Int64OK()
		return i, ok, ok
	case bson.TypeDouble, bson.TypeDecimal128:
		r, ok := asRat(v)
		if !ok {
			f, _ := asNumber(v)
			switch {
			case math.IsInf(f, 1):
				return math.MaxInt64, false, true
			case math.IsInf(f, -1):
				return math.MinInt64, false, true
			}
			return 0, false, true
		}
		whole := r.IsInt()
		t := new(big.Int).Quo(r.Num(), r.Denom())
		if !t.IsInt64() {
			if t.Sign() > 0 {
				return math.MaxInt64, false, true
			}
			return math.MinInt64, false, true
		}
		return t.Int64(), whole, true
	}
	return 0, false, false
}

// asRat converts a finite number to an exact rational.
func asRat(v bson.RawValue) (*big.Rat, bool) {
	switch v.Type {
	case bson.TypeInt32, bson.TypeInt64:
		n, _, ok := asInt64(v)
		return new(big.Rat).SetInt64(n), ok
	case bson.TypeDouble:
		f, ok := v.DoubleOK()
		if !ok || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, false
		}
		return new(big.Rat).SetFloat64(f), true
	case bson.TypeDecimal128:
		d, ok := v.Decimal128OK()
		if !ok || d.IsNaN() || d.IsInf() != 0 {
			return nil, false
		}
		coef, exp, err := d.BigInt()
		if err != nil {
			return nil, false
		}
		r := new(big.Rat).SetInt(coef)
		if exp != 0 {
			if exp > 6200 || exp < -6200 {
				return nil, false
			}
			p := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(abs(exp))), nil)
			if exp > 0 {
				r.Mul(r, new(big.Rat).SetInt(p))
			} else {
				r.Quo(r, new(big.Rat).SetInt(p))
			}
		}
		return r, true
	}
	return nil, false
}

// asDecimalRat converts a number as mongod's Decimal128 arithmetic sees it: a double keeps 15
// significant digits, so 0.3 is a multiple of 0.1.
func asDecimalRat(v bson.RawValue) (*big.Rat, bool) {
	if v.Type != bson.TypeDouble {
		return asRat(v)
	}
	f, ok := v.DoubleOK()
	if !ok || math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, false
	}
	r, ok := new(big.Rat).SetString(strconv.FormatFloat(f, 'g', 15, 64))
	return r, ok
}

func abs(i int) int {
	if i < 0 {
		return -i
	}
	return i
}
