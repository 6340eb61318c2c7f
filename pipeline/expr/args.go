package expr

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/value"
)

// compileFunc compiles the arguments of one operator.
type compileFunc func(op string, args bson.RawValue, sc *scope) (Expr, error)

// evalFunc adapts a closure to Expr.
type evalFunc func(env *Env) (bson.RawValue, error)

func (f evalFunc) Eval(env *Env) (bson.RawValue, error) { return f(env) }

// rootExpr is what Compile returns: it resets the per-evaluation work budget.
type rootExpr struct{ e Expr }

func (r rootExpr) Eval(env *Env) (bson.RawValue, error) {
	env.steps = 0
	return r.e.Eval(env)
}

// tick charges n loop iterations to the evaluation's budget.
func (env *Env) tick(op string, n int) error {
	env.steps += int64(n)
	if env.steps > maxSteps {
		return evalErr(op, op+" exceeded the evaluation work limit for one document")
	}
	return nil
}

// compileArgs compiles an operator's arguments: an array is a list, anything else one argument.
func compileArgs(op string, args bson.RawValue, sc *scope) ([]Expr, error) {
	if args.Type != bson.TypeArray {
		e, err := compile(args, sc)
		if err != nil {
			return nil, err
		}
		return []Expr{e}, nil
	}
	vals, err := values(args.Value)
	if err != nil {
		return nil, compileErr(op, "malformed arguments")
	}
	out := make([]Expr, len(vals))
	for i, v := range vals {
		if out[i], err = compile(v, sc); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func plural(n int) string {
	if n == 1 {
		return "argument"
	}
	return "arguments"
}

// countArgs compiles arguments and checks there are between lo and hi of them (hi < 0: no limit).
func countArgs(op string, args bson.RawValue, sc *scope, lo, hi int) ([]Expr, error) {
	es, err := compileArgs(op, args, sc)
	if err != nil {
		return nil, err
	}
	n := len(es)
	switch {
	case lo == hi && n != lo:
		return nil, compileErr(op, "Expression "+op+" takes exactly "+itoa(lo)+" "+plural(lo)+". "+itoa(n)+" were passed in.")
	case n < lo && hi < 0:
		return nil, compileErr(op, "Expression "+op+" takes at least "+itoa(lo)+" "+plural(lo)+", but "+itoa(n)+" were passed in.")
	case n < lo || (hi >= 0 && n > hi):
		return nil, compileErr(op, "Expression "+op+" takes at least "+itoa(lo)+" "+plural(lo)+", and at most "+itoa(hi)+", but "+itoa(n)+" were passed in.")
	}
	return es, nil
}

// objArgs reads an operator's object-form arguments; unknown names are rejected.
func objArgs(op string, args bson.RawValue, allowed ...string) (map[string]bson.RawValue, error) {
	if args.Type != bson.TypeEmbeddedDocument {
		return nil, compileErr(op, op+" expects an object as its argument, found: "+value.TypeName(args))
	}
	elems, err := elements(args.Value)
	if err != nil {
		return nil, compileErr(op, "malformed arguments")
	}
	out := make(map[string]bson.RawValue, len(elems))
	for _, el := range elems {
		ok := false
		for _, a := range allowed {
			if a == el.key {
				ok = true
				break
			}
		}
		if !ok {
			return nil, compileErr(op, op+" found an unknown argument: "+el.key)
		}
		out[el.key] = el.val
	}
	return out, nil
}

// optExpr compiles an optional object argument (nil when absent).
func optExpr(m map[string]bson.RawValue, key string, sc *scope) (Expr, error) {
	v, ok := m[key]
	if !ok {
		return nil, nil
	}
	return compile(v, sc)
}

// reqExpr compiles a required object argument.
func reqExpr(op string, m map[string]bson.RawValue, key string, sc *scope) (Expr, error) {
	v, ok := m[key]
	if !ok {
		return nil, compileErr(op, op+" requires '"+key+"' to be specified")
	}
	return compile(v, sc)
}

// evalAll evaluates each expression onto the environment's argument stack, so operators'
// arguments cost no allocation. It returns the values and the mark to release the stack to:
// the caller uses the values, then calls env.release(mark). The values (headers of bytes that
// live elsewhere) may be kept; the slice may not.
func evalAll(env *Env, es []Expr) ([]bson.RawValue, int, error) {
	mark := len(env.args)
	for _, e := range es {
		v, err := e.Eval(env)
		if err != nil {
			env.args = env.args[:mark]
			return nil, mark, err
		}
		env.args = append(env.args, v)
	}
	n := len(env.args)
	return env.args[mark:n:n], mark, nil
}

// release pops the argument stack back to mark.
func (env *Env) release(mark int) { env.args = env.args[:mark] }

// evalOpt evaluates an optional expression (missing when nil).
func evalOpt(env *Env, e Expr) (bson.RawValue, error) {
	if e == nil {
		return value.Missing, nil
	}
	return e.Eval(env)
}

// unaryOp builds a one-argument operator from a function of its value.
func unaryOp(fn func(op string, v bson.RawValue) (bson.RawValue, error)) compileFunc {
	return func(op string, args bson.RawValue, sc *scope) (Expr, error) {
		es, err := countArgs(op, args, sc, 1, 1)
		if err != nil {
			return nil, err
		}
		a := es[0]
		return evalFunc(func(env *Env) (bson.RawValue, error) {
			v, err := a.Eval(env)
			if err != nil {
				return v, err
			}
			return fn(op, v)
		}), nil
	}
}

// binaryOp builds a two-argument operator.
func binaryOp(fn func(op string, a, b bson.RawValue) (bson.RawValue, error)) compileFunc {
	return func(op string, args bson.RawValue, sc *scope) (Expr, error) {
		es, err := countArgs(op, args, sc, 2, 2)
		if err != nil {
			return nil, err
		}
		x, y := es[0], es[1]
		return evalFunc(func(env *Env) (bson.RawValue, error) {
			a, err := x.Eval(env)
			if err != nil {
				return a, err
			}
			b, err := y.Eval(env)
			if err != nil {
				return b, err
			}
			return fn(op, a, b)
		}), nil
	}
}

// naryOp builds an operator taking between lo and hi arguments (hi < 0: any number).
func naryOp(lo, hi int, fn func(op string, vs []bson.RawValue) (bson.RawValue, error)) compileFunc {
	return func(op string, args bson.RawValue, sc *scope) (Expr, error) {
		es, err := countArgs(op, args, sc, lo, hi)
		if err != nil {
			return nil, err
		}
		return naryEval(op, es, fn), nil
	}
}

// naryEval is the evaluator of an operator of arguments es: their values, in order, to fn.
func naryEval(op string, es []Expr, fn func(op string, vs []bson.RawValue) (bson.RawValue, error)) Expr {
	return evalFunc(func(env *Env) (bson.RawValue, error) {
		vs, mark, err := evalAll(env, es)
		if err != nil {
			return value.Missing, err
		}
		defer env.release(mark)
		return fn(op, vs)
	})
}

func anyNullish(vs ...bson.RawValue) bool {
	for _, v := range vs {
		if value.IsNullish(v) {
			return true
		}
	}
	return false
}

func typeName(v bson.RawValue) string { return value.TypeName(v) }

// str returns a string value's contents (symbols included).
func str(v bson.RawValue) (string, bool) {
	switch v.Type {
	case bson.TypeString:
		return v.StringValueOK()
	case bson.TypeSymbol:
		return v.SymbolOK()
	}
	return "", false
}
