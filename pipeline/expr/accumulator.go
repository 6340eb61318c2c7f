package expr

import (
	"math"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/value"
)

// compileAccumulator compiles $sum, $avg, $max, $min, $stdDevPop and $stdDevSamp used as
// expressions: one argument that is an array applies to its elements; several arguments apply
// to the arguments themselves.
func compileAccumulator(fn func(vs []bson.RawValue) bson.RawValue) compileFunc {
	return func(op string, args bson.RawValue, sc *scope) (Expr, error) {
		es, err := compileArgs(op, args, sc)
		if err != nil {
			return nil, err
		}
		single := args.Type != bson.TypeArray || len(es) == 1
		return evalFunc(func(env *Env) (bson.RawValue, error) {
			vs, mark, err := evalAll(env, es)
			if err != nil {
				return value.Missing, err
			}
			defer env.release(mark)
			if single && vs[0].Type == bson.TypeArray {
				vs = arrayValues(vs[0])
			}
			return fn(vs), nil
		}), nil
	}
}

func accSum(vs []bson.RawValue) bson.RawValue {
	var s Sum
	for _, v := range vs {
		s.Add(v)
	}
	return s.Total()
}

func accAvg(vs []bson.RawValue) bson.RawValue {
	var s Sum
	for _, v := range vs {
		s.Add(v)
	}
	return s.Avg()
}

func accMinMax(isMax bool) func(vs []bson.RawValue) bson.RawValue {
	return func(vs []bson.RawValue) bson.RawValue {
		out := nullValue
		found := false
		for _, v := range vs {
			if value.IsNullish(v) {
				continue
			}
			c := value.Compare(v, out)
			if !found || (isMax && c > 0) || (!isMax && c < 0) {
				out, found = v, true
			}
		}
		return out
	}
}

func accStdDev(sample bool) func(vs []bson.RawValue) bson.RawValue {
	return func(vs []bson.RawValue) bson.RawValue {
		// Welford's algorithm, as mongod uses.
		var n, mean, m2 float64
		for _, v := range vs {
			if !value.IsNumber(v) {
				continue
			}
			x := asFloat(v)
			n++
			d := x - mean
			mean += d / n
			m2 += d * (x - mean)
		}
		switch {
		case n == 0, sample && n < 2:
			return nullValue
		case sample:
			return doubleValue(math.Sqrt(m2 / (n - 1)))
		}
		return doubleValue(math.Sqrt(m2 / n))
	}
}
