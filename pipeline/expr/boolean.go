package expr

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/value"
)

// compileAndOr compiles $and (all) and $or (!all); both short-circuit.
func compileAndOr(all bool) compileFunc {
	return func(op string, args bson.RawValue, sc *scope) (Expr, error) {
		es, err := compileArgs(op, args, sc)
		if err != nil {
			return nil, err
		}
		return evalFunc(func(env *Env) (bson.RawValue, error) {
			for _, e := range es {
				v, err := e.Eval(env)
				if err != nil {
					return v, err
				}
				if value.Truthy(v) != all {
					return boolValue(!all), nil
				}
			}
			return boolValue(all), nil
		}), nil
	}
}

func evalNot(_ string, v bson.RawValue) (bson.RawValue, error) {
	return boolValue(!value.Truthy(v)), nil
}
