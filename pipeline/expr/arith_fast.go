package expr

import (
	"go.mongodb.org/mongo-driver/v2/bson"
)

// arithExpr is $add or $multiply whose operands are all number constants, field paths or
// other such $add and $multiply: the arithmetic of unit conversions and scores, the common
// case of $addFields and $project. It folds the operands into a numAcc as they are
// evaluated, with no argument stack and no boxing of intermediate results, so that the whole
// tree costs one allocation (its result). It computes exactly what evalAdd and evalMultiply
// compute, in the same order: they fold their leading int32, int64 and double operands the
// same way. Any operand that is not such a number at run time (null, missing, a decimal, a
// date, a string) sends the whole expression to the general evaluator, slow, which evaluates
// every operand again (expressions have no side effects) and gives mongod's result or error.
type arithExpr struct {
	op   numOp // opAdd or opMul
	args []arithArg
	slow Expr
}

// arithArg is one operand of an arithExpr: exactly one of the fields is set.
type arithArg struct {
	c     *numAcc
	path  *pathExpr
	inner *arithExpr
}

// arithOp compiles $add (opAdd) or $multiply (opMul): an arithExpr when every operand
// allows it, else the general form, naryOp(0, -1, general).
func arithOp(op numOp, general func(op string, vs []bson.RawValue) (bson.RawValue, error)) compileFunc {
	return func(name string, args bson.RawValue, sc *scope) (Expr, error) {
		es, err := countArgs(name, args, sc, 0, -1)
		if err != nil {
			return nil, err
		}
		slow := naryEval(name, es, general)
		a := &arithExpr{op: op, slow: slow, args: make([]arithArg, 0, len(es))}
		for _, e := range es {
			switch x := e.(type) {
			case constant:
				n, ok := accOf(x.v)
				if !ok {
					return slow, nil
				}
				a.args = append(a.args, arithArg{c: &n})
			case *pathExpr:
				a.args = append(a.args, arithArg{path: x})
			case *arithExpr:
				a.args = append(a.args, arithArg{inner: x})
			default:
				return slow, nil
			}
		}
		return a, nil
	}
}

// Eval is the unboxed fold, or the general evaluator when an operand is not a plain number.
func (a *arithExpr) Eval(env *Env) (bson.RawValue, error) {
	if n, ok := a.fold(env); ok {
		return n.value(), nil
	}
	return a.slow.Eval(env)
}

// fold evaluates the operands in order into one numAcc; ok is false when one of them is not
// an int32, int64 or double (or a path fails), and the general evaluator must decide.
func (a *arithExpr) fold(env *Env) (numAcc, bool) {
	acc := numAcc{k: kInt32}
	if a.op == opMul {
		acc.i = 1
	}
	for i := range a.args {
		x := &a.args[i]
		var n numAcc
		switch {
		case x.c != nil:
			n = *x.c
		case x.path != nil:
			v, err := x.path.Eval(env)
			if err != nil {
				return acc, false
			}
			var ok bool
			if n, ok = accOf(v); !ok {
				return acc, false
			}
		default:
			var ok bool
			if n, ok = x.inner.fold(env); !ok {
				return acc, false
			}
		}
		acc = acc.step(a.op, n)
	}
	return acc, true
}
