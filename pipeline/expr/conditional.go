package expr

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/value"
)

func compileCond(op string, args bson.RawValue, sc *scope) (Expr, error) {
	var ifE, thenE, elseE Expr
	if args.Type == bson.TypeEmbeddedDocument {
		elems, err := elements(args.Value)
		if err != nil {
			return nil, compileErr(op, "malformed arguments")
		}
		for _, el := range elems {
			e, err := compile(el.val, sc)
			if err != nil {
				return nil, err
			}
			switch el.key {
			case "if":
				ifE = e
			case "then":
				thenE = e
			case "else":
				elseE = e
			default:
				return nil, compileErr(op, "Unrecognized parameter to $cond: "+el.key)
			}
		}
		for _, p := range []struct {
			name string
			e    Expr
		}{{"if", ifE}, {"then", thenE}, {"else", elseE}} {
			if p.e == nil {
				return nil, compileErr(op, "Missing '"+p.name+"' parameter to $cond")
			}
		}
	} else {
		es, err := countArgs(op, args, sc, 3, 3)
		if err != nil {
			return nil, err
		}
		ifE, thenE, elseE = es[0], es[1], es[2]
	}
	return evalFunc(func(env *Env) (bson.RawValue, error) {
		c, err := ifE.Eval(env)
		if err != nil {
			return c, err
		}
		if value.Truthy(c) {
			return thenE.Eval(env)
		}
		return elseE.Eval(env)
	}), nil
}

func compileIfNull(op string, args bson.RawValue, sc *scope) (Expr, error) {
	es, err := compileArgs(op, args, sc)
	if err != nil {
		return nil, err
	}
	if len(es) < 2 {
		return nil, compileErr(op, "$ifNull needs at least two arguments, had: "+itoa(len(es)))
	}
	return evalFunc(func(env *Env) (bson.RawValue, error) {
		for i, e := range es {
			v, err := e.Eval(env)
			if err != nil {
				return v, err
			}
			if !value.IsNullish(v) || i == len(es)-1 {
				return v, nil
			}
		}
		return nullValue, nil
	}), nil
}

func compileSwitch(op string, args bson.RawValue, sc *scope) (Expr, error) {
	m, err := objArgs(op, args, "branches", "default")
	if err != nil {
		return nil, err
	}
	type branch struct{ cond, then Expr }
	var branches []branch
	br, ok := m["branches"]
	if !ok {
		return nil, compileErr(op, "$switch requires at least one branch.")
	}
	if br.Type != bson.TypeArray {
		return nil, compileErr(op, "$switch expected an array for 'branches', found: "+typeName(br))
	}
	bvals, _ := values(br.Value)
	for _, b := range bvals {
		if b.Type != bson.TypeEmbeddedDocument {
			return nil, compileErr(op, "$switch expected each branch to be an object, found: "+typeName(b))
		}
		elems, _ := elements(b.Value)
		var c branch
		for _, el := range elems {
			e, err := compile(el.val, sc)
			if err != nil {
				return nil, err
			}
			switch el.key {
			case "case":
				c.cond = e
			case "then":
				c.then = e
			default:
				return nil, compileErr(op, "$switch found an unknown argument to a branch: "+el.key)
			}
		}
		if c.cond == nil {
			return nil, compileErr(op, "$switch requires each branch have a 'case' expression")
		}
		if c.then == nil {
			return nil, compileErr(op, "$switch requires each branch have a 'then' expression.")
		}
		branches = append(branches, c)
	}
	if len(branches) == 0 {
		return nil, compileErr(op, "$switch requires at least one branch.")
	}
	def, err := optExpr(m, "default", sc)
	if err != nil {
		return nil, err
	}
	return evalFunc(func(env *Env) (bson.RawValue, error) {
		for _, b := range branches {
			c, err := b.cond.Eval(env)
			if err != nil {
				return c, err
			}
			if value.Truthy(c) {
				return b.then.Eval(env)
			}
		}
		if def == nil {
			return value.Missing, evalErr(op, "$switch could not find a matching branch for an input, and no default was specified.")
		}
		return def.Eval(env)
	}), nil
}
