package expr

import (
	"encoding/binary"
	"math"
	"math/big"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Sum adds numbers as mongod's $sum and $avg do, for the accumulators of $group and for the
// expressions alike. Integers are summed exactly while the sum fits an int64; doubles (and
// integers past that) in double-double arithmetic, compensated, so that adding 0.1 ten
// times gives 1; decimal128 inputs apart and exactly. The result has the widest input type:
// int32 while the sum fits, then int64, then double; with any decimal input, the decimal sum
// plus the rest converted to decimal at 34 digits.
type Sum struct {
	kind bson.Type // widest non-decimal input: TypeInt32, TypeInt64, TypeDouble (0: none)
	n    int64     // numbers added
	i    int64     // the exact integer sum, while exact
	iBad bool      // an integer sum overflowed int64, or a double was added
	// Once iBad, hi + lo is the double-double sum of the non-decimal inputs; special is their
	// plain sum, which carries NaN and infinities.
	hi, lo, special float64
	dec             [16]byte // sum of the decimal inputs, when hasDec
	hasDec          bool     // (kept as bytes, so a Sum holds no pointer for the GC to follow)
	out             [8]byte  // the bytes of the last int or double result
}

// result returns a fixed-size result in the Sum's own bytes: it is valid until the next
// Total or Avg, and $group copies it into the output document at once.
func (s *Sum) result(t bson.Type, bits uint64) bson.RawValue {
	if t == bson.TypeInt32 {
		binary.LittleEndian.PutUint32(s.out[:], uint32(bits))
		return bson.RawValue{Type: t, Value: s.out[:4]}
	}
	binary.LittleEndian.PutUint64(s.out[:], bits)
	return bson.RawValue{Type: t, Value: s.out[:8]}
}

// Add adds v if it is a number; other values are ignored, as $sum ignores them.
func (s *Sum) Add(v bson.RawValue) {
	switch v.Type {
	case bson.TypeInt32, bson.TypeInt64:
		x := v.AsInt64()
		if s.kind == 0 || (v.Type == bson.TypeInt64 && s.kind == bson.TypeInt32) {
			s.kind = v.Type
		}
		if !s.iBad {
			sum := s.i + x
			if overflow := (x > 0 && sum < s.i) || (x < 0 && sum > s.i); !overflow {
				s.i = sum
				break
			}
			s.inexact()
		}
		s.addLong(x)
	case bson.TypeDouble:
		s.inexact()
		s.kind = bson.TypeDouble
		s.addDouble(v.Double())
	case bson.TypeDecimal128:
		if !s.hasDec {
			s.hasDec = len(v.Value) == 16
			copy(s.dec[:], v.Value)
		} else {
			copy(s.dec[:], decAdd(toDec(s.decimal()), toDec(v)).value().Value)
		}
	default:
		return
	}
	s.n++
}

// inexact moves the sum from the exact integer to the double-double one, which takes the
// integer sum so far.
func (s *Sum) inexact() {
	if !s.iBad {
		s.iBad = true
		s.addLong(s.i)
	}
}

// addLong adds an integer in two halves that doubles hold exactly, as mongod does.
func (s *Sum) addLong(x int64) {
	high := x / (1 << 32) * (1 << 32)
	s.addDouble(float64(x - high))
	s.addDouble(float64(high))
}

// addDouble is the compensated (2Sum and Fast2Sum) addition of double-double summation.
func (s *Sum) addDouble(x float64) {
	s.special += x
	x, s.lo = fast2Sum(x, s.lo)
	s.hi, x = twoSum(s.hi, x)
	s.lo += x
}

// fast2Sum is exact when |a| >= |b| or b is tiny, as the compensation lo is.
func fast2Sum(a, b float64) (float64, float64) {
	sum := a + b
	return sum, b - (sum - a)
}

func twoSum(a, b float64) (float64, float64) {
	sum := a + b
	ap := sum - b
	bp := sum - ap
	return sum, (a - ap) + (b - bp)
}

// Count is the number of numbers added.
func (s *Sum) Count() int64 { return s.n }

// double is the double nearest the non-decimal sum.
func (s *Sum) double() float64 {
	if math.IsNaN(s.hi) || math.IsInf(s.hi, 0) {
		return s.special
	}
	return s.hi
}

// Total is the sum in its type (int32 0 when nothing was added).
func (s *Sum) Total() bson.RawValue {
	var t bson.RawValue
	switch {
	case s.kind == 0:
		t = s.result(bson.TypeInt32, 0)
	case s.kind == bson.TypeInt32 && !s.iBad && s.i >= math.MinInt32 && s.i <= math.MaxInt32:
		t = s.result(bson.TypeInt32, uint64(s.i))
	case s.kind != bson.TypeDouble && !s.iBad:
		t = s.result(bson.TypeInt64, uint64(s.i))
	default:
		t = s.result(bson.TypeDouble, math.Float64bits(s.double()))
	}
	if !s.hasDec {
		return t
	}
	return decAdd(toDec(s.decimal()), s.nonDecimal()).value()
}

// decimal is the sum of the decimal inputs.
func (s *Sum) decimal() bson.RawValue {
	return bson.RawValue{Type: bson.TypeDecimal128, Value: s.dec[:]}
}

// nonDecimal is the non-decimal sum as a decimal: exact for integers, else each half of the
// double-double converted exactly and rounded to 34 digits, as mongod converts them.
func (s *Sum) nonDecimal() dec {
	if s.kind != bson.TypeDouble && !s.iBad {
		return dec{coef: big.NewInt(s.i)}
	}
	if math.IsNaN(s.hi) || math.IsInf(s.hi, 0) {
		return decExact(s.special)
	}
	return decAdd(decExact(s.hi), decExact(s.lo))
}

// decExact converts a double to the decimal of exactly its value, in the fewest digits,
// rounded to 34 digits if it needs more (Decimal128(double, kRoundTo34Digits) in mongod).
func decExact(f float64) dec {
	switch {
	case math.IsNaN(f):
		return dec{nan: true}
	case math.IsInf(f, 0):
		return dec{inf: int(math.Copysign(1, f))}
	case f == 0:
		return dec{coef: new(big.Int)}
	}
	frac, e := math.Frexp(f)
	m := int64(frac * (1 << 53)) // f = m * 2^(e-53), |m| < 2^53
	e -= 53
	for m%2 == 0 {
		m /= 2
		e++
	}
	c := big.NewInt(m)
	if e >= 0 {
		return toDec(dec{coef: c.Lsh(c, uint(e))}.value())
	}
	// m * 2^e = m * 5^-e * 10^e: with m odd, the fewest digits.
	c.Mul(c, new(big.Int).Exp(big.NewInt(5), big.NewInt(int64(-e)), nil))
	return toDec(dec{coef: c, exp: e}.value())
}

// Avg is the mean, or null when no number was added: a double, or a decimal with any decimal
// input.
func (s *Sum) Avg() bson.RawValue {
	if s.n == 0 {
		return nullValue
	}
	if s.hasDec {
		return decDiv(toDec(s.Total()), dec{coef: big.NewInt(s.n)}).value()
	}
	if s.kind != bson.TypeDouble && !s.iBad {
		return s.result(bson.TypeDouble, math.Float64bits(float64(s.i)/float64(s.n)))
	}
	return s.result(bson.TypeDouble, math.Float64bits(s.double()/float64(s.n)))
}

// State is the running sum as a document, for snapshots; Restore reads it back.
func (s *Sum) State() bson.D {
	st := bson.D{{Key: "k", Value: int32(s.kind)}, {Key: "n", Value: s.n}, {Key: "i", Value: s.i},
		{Key: "bad", Value: s.iBad}, {Key: "hi", Value: s.hi}, {Key: "lo", Value: s.lo}, {Key: "sp", Value: s.special}}
	if s.hasDec {
		st = append(st, bson.E{Key: "d", Value: s.decimal()})
	}
	return st
}

// Restore sets the sum from a State document and reports whether it was one.
func (s *Sum) Restore(d bson.Raw) bool {
	var ok [7]bool
	var k int32
	k, ok[0] = d.Lookup("k").Int32OK()
	s.n, ok[1] = d.Lookup("n").Int64OK()
	s.i, ok[2] = d.Lookup("i").Int64OK()
	s.iBad, ok[3] = d.Lookup("bad").BooleanOK()
	s.hi, ok[4] = d.Lookup("hi").DoubleOK()
	s.lo, ok[5] = d.Lookup("lo").DoubleOK()
	s.special, ok[6] = d.Lookup("sp").DoubleOK()
	for _, b := range ok {
		if !b {
			return false
		}
	}
	s.kind = bson.Type(k)
	switch s.kind {
	case 0, bson.TypeInt32, bson.TypeInt64, bson.TypeDouble:
	default:
		return false
	}
	s.hasDec = false
	if v, err := d.LookupErr("d"); err == nil {
		if v.Type != bson.TypeDecimal128 || len(v.Value) != 16 {
			return false
		}
		s.hasDec = true
		copy(s.dec[:], v.Value)
	}
	return true
}
