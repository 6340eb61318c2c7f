// Package expr compiles and evaluates MongoDB aggregation expressions, as Atlas Stream Processing
// uses them, over raw BSON. An expression is compiled once per pipeline and evaluated per
// document; evaluation reads only the fields it names and builds results as raw BSON.
package expr

import (
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/value"
)

// The values $$DESCEND, $$PRUNE and $$KEEP evaluate to; $redact compares its expression's
// result against them (mongod binds the same strings).
const (
	RedactDescend = "descend"
	RedactPrune   = "prune"
	RedactKeep    = "keep"
)

// Env is what an expression evaluates against.
type Env struct {
	Root bson.Raw                        // $$ROOT and the default $$CURRENT
	Meta func(path string) bson.RawValue // resolves {$meta: "stream..."}; nil or a missing result → missing
	// MetaDoc is the stream metadata document {$meta} reads when Meta is nil: "stream" is
	// the whole document, "stream.a.b" its field a.b. It saves building a closure per document.
	MetaDoc bson.Raw
	Now     func() time.Time // $currentDate; nil → time.Now

	// vars holds the variables bound by $let, $map, $filter, $reduce, ... by slot; slots are
	// assigned at compile time by nesting depth, so evaluation never looks a name up.
	vars []bson.RawValue
	// args is the stack operators evaluate their arguments onto (see evalAll).
	args []bson.RawValue

	steps int64 // loop iterations charged to the current top-level evaluation
}

func (env *Env) setVar(slot int, v bson.RawValue) {
	for len(env.vars) <= slot {
		env.vars = append(env.vars, bson.RawValue{})
	}
	env.vars[slot] = v
}

func (env *Env) getVar(slot int) bson.RawValue {
	if slot < len(env.vars) {
		return env.vars[slot]
	}
	return value.Missing
}

// current is $$CURRENT: the root unless a $let rebound it (slot >= 0).
func (env *Env) current(slot int) bson.RawValue {
	if slot >= 0 {
		return env.getVar(slot)
	}
	return bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: env.Root}
}

// Expr is a compiled expression.
type Expr interface {
	// Eval evaluates the expression; the result may be value.Missing.
	Eval(env *Env) (bson.RawValue, error)
}

// CompileError is an expression that cannot be compiled: the operator (if any) and the reason.
type CompileError struct{ Operator, Msg string }

// Error returns "<Operator>: <Msg>", or Msg alone when it already names the operator.
func (e *CompileError) Error() string { return errText(e.Operator, e.Msg) }

// EvalError is a per-document evaluation failure; the document goes to the dead-letter queue
// with this as its reason.
type EvalError struct{ Operator, Msg string }

// Error returns "<Operator>: <Msg>", or Msg alone when it already names the operator.
func (e *EvalError) Error() string { return errText(e.Operator, e.Msg) }

func errText(op, msg string) string {
	if op == "" || strings.Contains(msg, op) {
		return msg
	}
	return op + ": " + msg
}

func compileErr(op, msg string) error { return &CompileError{Operator: op, Msg: msg} }
func evalErr(op, msg string) error    { return &EvalError{Operator: op, Msg: msg} }

// scope is the compile-time view of the variables in reach.
type scope struct {
	names      []string // names[i] is bound to slot i
	currentVar int      // slot of a rebound CURRENT, or -1
}

func newScope() *scope { return &scope{currentVar: -1} }

// bind adds variables and returns their slots and a function that unbinds them.
func (sc *scope) bind(names ...string) (slots []int, done func()) {
	n, cur := len(sc.names), sc.currentVar
	for _, name := range names {
		slots = append(slots, len(sc.names))
		if name == "CURRENT" {
			sc.currentVar = len(sc.names)
		}
		sc.names = append(sc.names, name)
	}
	return slots, func() { sc.names, sc.currentVar = sc.names[:n], cur }
}

func (sc *scope) lookup(name string) int {
	for i := len(sc.names) - 1; i >= 0; i-- {
		if sc.names[i] == name {
			return i
		}
	}
	return -1
}

// Compile compiles any expression: a literal, "$field.path", "$$var.path", {$op: args}, or an
// expression object {a: <expr>, b: {c: <expr>}}.
func Compile(v bson.RawValue) (Expr, error) {
	if err := v.Validate(); err != nil {
		return nil, compileErr("", "invalid BSON expression: "+err.Error())
	}
	e, err := compile(v, newScope())
	if err != nil {
		return nil, err
	}
	return rootExpr{e}, nil
}

// CompileObject compiles an expression object (the value of $addFields or $project); it
// evaluates to a document and omits fields that evaluate to missing. Dotted field names
// ("a.b") build nested documents.
func CompileObject(d bson.Raw) (Expr, error) {
	if err := d.Validate(); err != nil {
		return nil, compileErr("", "invalid BSON expression object: "+err.Error())
	}
	e, err := compileObjectSpec(d, newScope(), true)
	if err != nil {
		return nil, err
	}
	return rootExpr{e}, nil
}

// IsFieldPath reports whether v is a field path string such as "$a.b" (not "$$var").
func IsFieldPath(v bson.RawValue) bool {
	if v.Type != bson.TypeString {
		return false
	}
	s, ok := v.StringValueOK()
	return ok && len(s) > 1 && s[0] == '$' && s[1] != '$'
}

func compile(v bson.RawValue, sc *scope) (Expr, error) {
	switch v.Type {
	case bson.TypeString:
		s, ok := v.StringValueOK()
		if ok && strings.HasPrefix(s, "$") {
			return compilePath(s, sc)
		}
	case bson.TypeEmbeddedDocument:
		doc, ok := v.DocumentOK()
		if !ok {
			return nil, compileErr("", "invalid BSON document in expression")
		}
		return compileDoc(doc, sc)
	case bson.TypeArray:
		arr, ok := v.ArrayOK()
		if !ok {
			return nil, compileErr("", "invalid BSON array in expression")
		}
		vals, err := values(bson.Raw(arr))
		if err != nil {
			return nil, compileErr("", "invalid BSON array in expression")
		}
		items := make([]Expr, len(vals))
		for i, item := range vals {
			if items[i], err = compile(item, sc); err != nil {
				return nil, err
			}
		}
		return &arrayExpr{items: items}, nil
	}
	return constant{v}, nil
}

// compileDoc compiles {$op: args} or an expression object.
func compileDoc(doc bson.Raw, sc *scope) (Expr, error) {
	elems, err := elements(doc)
	if err != nil {
		return nil, compileErr("", "invalid BSON document in expression")
	}
	if len(elems) > 0 && strings.HasPrefix(elems[0].key, "$") {
		if len(elems) != 1 {
			return nil, compileErr("", "an expression specification must contain exactly one field, the name of the expression. Found "+itoa(len(elems))+" fields in "+doc.String())
		}
		name := elems[0].key
		c, ok := operators[name]
		if !ok {
			return nil, compileErr(name, "Unrecognized expression '"+name+"'")
		}
		return c(name, elems[0].val, sc)
	}
	return compileObjectSpec(doc, sc, false)
}

// constant is a value known at compile time.
type constant struct{ v bson.RawValue }

func (c constant) Eval(*Env) (bson.RawValue, error) { return c.v, nil }

// arrayExpr is an array literal whose elements are expressions; missing elements become null,
// as in mongod.
type arrayExpr struct{ items []Expr }

func (a *arrayExpr) Eval(env *Env) (bson.RawValue, error) {
	b := newArr()
	for _, it := range a.items {
		v, err := it.Eval(env)
		if err != nil {
			return v, err
		}
		if v.Type == 0 {
			v = nullValue
		}
		b.add(v)
	}
	return b.done(), nil
}

// objectField is one field of an expression object.
type objectField struct {
	name string
	e    Expr
}

// objectExpr is an expression object; fields that evaluate to missing are omitted.
type objectExpr struct{ fields []objectField }

func (o *objectExpr) Eval(env *Env) (bson.RawValue, error) {
	b := newDoc()
	for _, f := range o.fields {
		v, err := f.e.Eval(env)
		if err != nil {
			return v, err
		}
		if v.Type != 0 {
			b.add(f.name, v)
		}
	}
	return b.done(), nil
}

// compileObjectSpec compiles an expression object. With dotted set (a stage's top level),
// "a.b" keys build nested objects; otherwise they are rejected as mongod does.
func compileObjectSpec(doc bson.Raw, sc *scope, dotted bool) (Expr, error) {
	elems, err := elements(doc)
	if err != nil {
		return nil, compileErr("", "invalid BSON document in expression")
	}
	root := &objectExpr{}
	leaves, prefixes := map[string]bool{}, map[string]bool{}
	for _, el := range elems {
		if el.key == "" {
			return nil, compileErr("", "FieldPath cannot be constructed with empty string")
		}
		if strings.HasPrefix(el.key, "$") {
			if !dotted {
				if _, isOp := operators[el.key]; !isOp {
					return nil, compileErr(el.key, "Unrecognized expression '"+el.key+"'")
				}
			}
			return nil, compileErr("", "FieldPath field names may not start with '$'. Consider using $getField or $setField. (field '"+el.key+"')")
		}
		parts := []string{el.key}
		if strings.Contains(el.key, ".") {
			if !dotted {
				return nil, compileErr("", "FieldPath field names may not contain '.'. Consider using $getField or $setField. (field '"+el.key+"')")
			}
			parts = strings.Split(el.key, ".")
			for _, p := range parts {
				if p == "" || strings.HasPrefix(p, "$") {
					return nil, compileErr("", "invalid field path '"+el.key+"'")
				}
			}
		}
		e, err := compile(el.val, sc)
		if err != nil {
			return nil, err
		}
		if conflicts(leaves, prefixes, parts) {
			return nil, compileErr("", "specification contains two conflicting paths: '"+el.key+"'")
		}
		insertField(root, parts, e)
	}
	return root, nil
}

func insertField(o *objectExpr, parts []string, e Expr) {
	if len(parts) == 1 {
		o.fields = append(o.fields, objectField{name: parts[0], e: e})
		return
	}
	for _, f := range o.fields {
		if f.name == parts[0] {
			if sub, ok := f.e.(*objectExpr); ok {
				insertField(sub, parts[1:], e)
				return
			}
		}
	}
	sub := &objectExpr{}
	o.fields = append(o.fields, objectField{name: parts[0], e: sub})
	insertField(sub, parts[1:], e)
}

// conflicts reports whether path collides with an earlier field ("a" and "a.b", or "a" twice),
// and records it.
func conflicts(leaves, prefixes map[string]bool, parts []string) bool {
	full := strings.Join(parts, ".")
	if leaves[full] || prefixes[full] {
		return true
	}
	for i := 1; i < len(parts); i++ {
		if leaves[strings.Join(parts[:i], ".")] {
			return true
		}
	}
	leaves[full] = true
	for i := 1; i < len(parts); i++ {
		prefixes[strings.Join(parts[:i], ".")] = true
	}
	return false
}
