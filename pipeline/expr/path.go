package expr

import (
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/value"
)

// pathExpr is "$a.b" (relative to $$CURRENT) or "$$var.a.b".
type pathExpr struct {
	kind  int // pathCurrent, pathRoot, pathVar
	slot  int // variable slot for pathVar, rebound CURRENT slot (or -1) for pathCurrent
	parts []string
}

const (
	pathCurrent = iota
	pathRoot
	pathVar
)

func (p *pathExpr) Eval(env *Env) (bson.RawValue, error) {
	var base bson.RawValue
	switch p.kind {
	case pathCurrent:
		base = env.current(p.slot)
	case pathRoot:
		base = docValue(env.Root)
	default:
		base = env.getVar(p.slot)
	}
	if len(p.parts) == 0 {
		return base, nil
	}
	switch base.Type {
	case bson.TypeEmbeddedDocument:
		return evalPath(base.Value, p.parts), nil
	case bson.TypeArray:
		return evalPathArray(base.Value, p.parts), nil
	}
	return value.Missing, nil
}

// evalPath looks parts up in a document the aggregation way: arrays on the way map the rest of
// the path over their elements (ExpressionFieldPath::evaluatePath in mongod).
func evalPath(doc []byte, parts []string) bson.RawValue {
	for {
		f := value.Lookup(doc, parts[0])
		if len(parts) == 1 {
			return f
		}
		switch f.Type {
		case bson.TypeEmbeddedDocument:
			doc, parts = f.Value, parts[1:]
			continue
		case bson.TypeArray:
			return evalPathArray(f.Value, parts[1:])
		}
		return value.Missing
	}
}

func evalPathArray(arr []byte, parts []string) bson.RawValue {
	b := newArr()
	eachElem(arr, func(_ []byte, v bson.RawValue) bool {
		switch v.Type {
		case bson.TypeEmbeddedDocument:
			if r := evalPath(v.Value, parts); r.Type != 0 {
				b.add(r)
			}
		case bson.TypeArray:
			b.add(evalPathArray(v.Value, parts))
		}
		return true
	})
	return b.done()
}

// unsupportedVars are system variables Atlas Stream Processing does not provide.
var unsupportedVars = map[string]string{
	"NOW":          "$$NOW is not supported in stream processing; use {$currentDate: {}}",
	"CLUSTER_TIME": "$$CLUSTER_TIME is not supported in stream processing",
	"USER_ROLES":   "$$USER_ROLES is not supported in stream processing",
	"SEARCH_META":  "$$SEARCH_META is not supported in stream processing",
	"SEARCH_SCORE": "$$SEARCH_SCORE is not supported in stream processing",
	"IS_MR":        "$$IS_MR is not supported in stream processing",
	"JS_SCOPE":     "$$JS_SCOPE is not supported in stream processing",
}

func splitPath(path, whole string) ([]string, error) {
	if path == "" {
		return nil, nil
	}
	parts := strings.Split(path, ".")
	for _, p := range parts {
		if p == "" {
			return nil, compileErr("", "FieldPath must not contain empty field names: '"+whole+"'")
		}
		if p[0] == '$' {
			return nil, compileErr("", "FieldPath field names may not start with '$': '"+whole+"'")
		}
		if strings.IndexByte(p, 0) >= 0 {
			return nil, compileErr("", "FieldPath field names may not contain a null byte: '"+whole+"'")
		}
	}
	return parts, nil
}

// compilePath compiles "$a.b" or "$$var.a.b".
func compilePath(s string, sc *scope) (Expr, error) {
	if s == "$" {
		return nil, compileErr("", "'$' by itself is not a valid FieldPath")
	}
	if !strings.HasPrefix(s, "$$") {
		parts, err := splitPath(s[1:], s)
		if err != nil {
			return nil, err
		}
		return &pathExpr{kind: pathCurrent, slot: sc.currentVar, parts: parts}, nil
	}
	name, rest, _ := strings.Cut(s[2:], ".")
	if name == "" {
		return nil, compileErr("", "empty variable names are not allowed: '"+s+"'")
	}
	parts, err := splitPath(rest, s)
	if err != nil {
		return nil, err
	}
	if strings.Contains(s[2:], ".") && rest == "" {
		return nil, compileErr("", "FieldPath must not end with a '.': '"+s+"'")
	}
	if slot := sc.lookup(name); slot >= 0 {
		return &pathExpr{kind: pathVar, slot: slot, parts: parts}, nil
	}
	switch name {
	case "ROOT":
		return &pathExpr{kind: pathRoot, parts: parts}, nil
	case "CURRENT":
		return &pathExpr{kind: pathCurrent, slot: -1, parts: parts}, nil
	case "REMOVE":
		return constant{value.Missing}, nil
	case "DESCEND":
		return constant{stringValue(RedactDescend)}, nil
	case "PRUNE":
		return constant{stringValue(RedactPrune)}, nil
	case "KEEP":
		return constant{stringValue(RedactKeep)}, nil
	}
	if msg, ok := unsupportedVars[name]; ok {
		return nil, compileErr("", msg)
	}
	if err := validateVarName(name, false); err != nil {
		return nil, err
	}
	return nil, compileErr("", "Use of undefined variable: "+name)
}

// validateVarName applies mongod's rules for variable names; user-bound names must start with
// a lowercase letter or a non-ASCII character.
func validateVarName(name string, write bool) error {
	if name == "" {
		return compileErr("", "empty variable names are not allowed")
	}
	for i, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r > 127:
		case r >= 'A' && r <= 'Z':
			if i == 0 && write && name != "CURRENT" {
				return compileErr("", "'"+name+"' starts with an invalid character for a user variable name")
			}
		case (r >= '0' && r <= '9' || r == '_') && i > 0:
		default:
			if i == 0 {
				return compileErr("", "'"+name+"' starts with an invalid character for a user variable name")
			}
			return compileErr("", "'"+name+"' contains an invalid character for a variable name: '"+string(r)+"'")
		}
	}
	return nil
}
