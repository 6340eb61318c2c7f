package expr

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/value"
)

func evalMergeObjects(op string, vs []bson.RawValue) (bson.RawValue, error) {
	var keys []string
	vals := map[string]bson.RawValue{}
	for _, v := range vs {
		if value.IsNullish(v) {
			continue
		}
		if v.Type != bson.TypeEmbeddedDocument {
			return value.Missing, evalErr(op, "$mergeObjects requires object inputs, but input "+v.String()+" is of type "+typeName(v))
		}
		eachElem(v.Value, func(k []byte, e bson.RawValue) bool {
			ks := string(k)
			if _, ok := vals[ks]; !ok {
				keys = append(keys, ks)
			}
			vals[ks] = e
			return true
		})
	}
	b := newDoc()
	for _, k := range keys {
		b.add(k, vals[k])
	}
	return b.done(), nil
}

// fieldArgs compiles the shared 'field' and 'input' arguments of $getField, $setField and
// $unsetField; field must be a constant string.
func fieldArgs(op string, m map[string]bson.RawValue, sc *scope) (string, Expr, error) {
	f, ok := m["field"]
	if !ok {
		return "", nil, compileErr(op, op+" requires 'field' to be specified")
	}
	if f.Type == bson.TypeEmbeddedDocument {
		if els, _ := elements(f.Value); len(els) == 1 && els[0].key == "$literal" {
			f = els[0].val
		}
	}
	name, ok := str(f)
	if !ok || (len(name) > 0 && name[0] == '$' && f.Type == bson.TypeString && m["field"].Type == bson.TypeString) {
		return "", nil, compileErr(op, op+" requires 'field' to evaluate to a constant of type string")
	}
	in, ok := m["input"]
	if !ok {
		return "", nil, compileErr(op, op+" requires 'input' to be specified")
	}
	e, err := compile(in, sc)
	return name, e, err
}

func compileGetField(op string, args bson.RawValue, sc *scope) (Expr, error) {
	var m map[string]bson.RawValue
	if args.Type == bson.TypeEmbeddedDocument && value.Lookup(args.Value, "field").Type != 0 {
		var err error
		if m, err = objArgs(op, args, "field", "input"); err != nil {
			return nil, err
		}
		if _, ok := m["input"]; !ok {
			m["input"] = stringValue("$$CURRENT")
		}
	} else {
		m = map[string]bson.RawValue{"field": args, "input": stringValue("$$CURRENT")}
	}
	name, in, err := fieldArgs(op, m, sc)
	if err != nil {
		return nil, err
	}
	return evalFunc(func(env *Env) (bson.RawValue, error) {
		v, err := in.Eval(env)
		if err != nil {
			return v, err
		}
		if value.IsNullish(v) {
			return nullValue, nil
		}
		if v.Type != bson.TypeEmbeddedDocument {
			return value.Missing, evalErr(op, "$getField requires 'input' to evaluate to type Object, but got "+typeName(v))
		}
		return value.Lookup(v.Value, name), nil
	}), nil
}

// compileSetField compiles $setField and, with unset, $unsetField.
func compileSetField(unset bool) compileFunc {
	return func(op string, args bson.RawValue, sc *scope) (Expr, error) {
		allowed := []string{"field", "input", "value"}
		if unset {
			allowed = allowed[:2]
		}
		m, err := objArgs(op, args, allowed...)
		if err != nil {
			return nil, err
		}
		name, in, err := fieldArgs(op, m, sc)
		if err != nil {
			return nil, err
		}
		var val Expr = constant{value.Missing}
		if !unset {
			if val, err = reqExpr(op, m, "value", sc); err != nil {
				return nil, err
			}
		}
		return evalFunc(func(env *Env) (bson.RawValue, error) {
			v, err := in.Eval(env)
			if err != nil {
				return v, err
			}
			if value.IsNullish(v) {
				return nullValue, nil
			}
			if v.Type != bson.TypeEmbeddedDocument {
				return value.Missing, evalErr(op, op+" requires 'input' to evaluate to type Object, but got "+typeName(v))
			}
			nv, err := val.Eval(env)
			if err != nil {
				return nv, err
			}
			b := newDoc()
			done := false
			eachElem(v.Value, func(k []byte, e bson.RawValue) bool {
				if string(k) == name {
					if !done && nv.Type != 0 {
						b.add(name, nv)
					}
					done = true
					return true
				}
				b.add(string(k), e)
				return true
			})
			if !done && nv.Type != 0 {
				b.add(name, nv)
			}
			return b.done(), nil
		}), nil
	}
}
