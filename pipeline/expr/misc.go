package expr

import (
	"crypto/rand"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/value"
)

func compileLiteral(_ string, args bson.RawValue, _ *scope) (Expr, error) {
	return constant{args}, nil
}

func compileLet(op string, args bson.RawValue, sc *scope) (Expr, error) {
	if args.Type != bson.TypeEmbeddedDocument {
		return nil, compileErr(op, "$let only supports an object as its argument")
	}
	elems, _ := elements(args.Value)
	var varsV, inV bson.RawValue
	for _, el := range elems {
		switch el.key {
		case "vars":
			varsV = el.val
		case "in":
			inV = el.val
		default:
			return nil, compileErr(op, "Unrecognized parameter to $let: "+el.key)
		}
	}
	if varsV.Type == 0 {
		return nil, compileErr(op, "Missing 'vars' parameter to $let")
	}
	if inV.Type == 0 {
		return nil, compileErr(op, "Missing 'in' parameter to $let")
	}
	if varsV.Type != bson.TypeEmbeddedDocument {
		return nil, compileErr(op, "invalid parameter: expected an object (vars)")
	}
	defs, _ := elements(varsV.Value)
	names := make([]string, len(defs))
	exprs := make([]Expr, len(defs))
	for i, d := range defs {
		if err := validateVarName(d.key, true); err != nil {
			return nil, err
		}
		e, err := compile(d.val, sc)
		if err != nil {
			return nil, err
		}
		names[i], exprs[i] = d.key, e
	}
	slots, done := sc.bind(names...)
	in, err := compile(inV, sc)
	done()
	if err != nil {
		return nil, err
	}
	return evalFunc(func(env *Env) (bson.RawValue, error) {
		vs, mark, err := evalAll(env, exprs)
		if err != nil {
			return value.Missing, err
		}
		for i, v := range vs {
			env.setVar(slots[i], v)
		}
		env.release(mark)
		return in.Eval(env)
	}), nil
}

func compileMeta(op string, args bson.RawValue, _ *scope) (Expr, error) {
	s, ok := str(args)
	if !ok {
		return nil, compileErr(op, "$meta expects a string argument, found: "+typeName(args))
	}
	if s != "stream" && !strings.HasPrefix(s, "stream.") {
		return nil, compileErr(op, "$meta keyword '"+s+"' is not supported in stream processing; use \"stream\" or \"stream.<field>\"")
	}
	if strings.HasSuffix(s, ".") || strings.Contains(s, "..") {
		return nil, compileErr(op, "invalid $meta path '"+s+"'")
	}
	var sub []string
	if rest, ok := strings.CutPrefix(s, "stream."); ok {
		sub = strings.Split(rest, ".")
	}
	return evalFunc(func(env *Env) (bson.RawValue, error) {
		switch {
		case env.Meta != nil:
			return env.Meta(s), nil
		case env.MetaDoc == nil:
			return value.Missing, nil
		case sub == nil:
			return bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: env.MetaDoc}, nil
		}
		v, err := env.MetaDoc.LookupErr(sub...)
		if err != nil {
			return value.Missing, nil
		}
		return v, nil
	}), nil
}

// noArgs checks the {} argument of $currentDate and $createUUID.
func noArgs(op string, args bson.RawValue) error {
	if args.Type != bson.TypeEmbeddedDocument || len(args.Value) != 5 {
		return compileErr(op, op+" does not accept arguments.")
	}
	return nil
}

func compileCurrentDate(op string, args bson.RawValue, _ *scope) (Expr, error) {
	if err := noArgs(op, args); err != nil {
		return nil, err
	}
	return evalFunc(func(env *Env) (bson.RawValue, error) {
		now := time.Now
		if env.Now != nil {
			now = env.Now
		}
		return dateValue(now().UnixMilli()), nil
	}), nil
}

func compileCreateUUID(op string, args bson.RawValue, _ *scope) (Expr, error) {
	if err := noArgs(op, args); err != nil {
		return nil, err
	}
	return evalFunc(func(*Env) (bson.RawValue, error) {
		var u [16]byte
		_, _ = rand.Read(u[:])
		u[6] = u[6]&0x0f | 0x40 // version 4
		u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
		return binaryValue(bson.TypeBinaryUUID, u[:]), nil
	}), nil
}
