package match

import (
	"fmt"
	"math/big"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/pcre"
	"github.com/spi-streams/spi/pipeline/value"
)

// $jsonSchema: JSON Schema draft 4 as mongod implements it, with the bsonType extension. Each
// keyword only constrains values of the kind it is about (minimum only numbers, properties only
// objects) and, unlike the rest of the query language, nothing traverses arrays implicitly.

// schemaNode applies a schema to the whole document.
type schemaNode struct{ s *schema }

func (n schemaNode) match(doc bson.Raw, _ any) (bool, error) {
	return n.s.test(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: doc}), nil
}

// schema is a compiled (sub)schema: every check must pass.
type schema struct{ checks []pred }

func (s *schema) test(v bson.RawValue) bool {
	for _, c := range s.checks {
		if !c.test(v) {
			return false
		}
	}
	return true
}

// schemaKeywords lists every keyword compileSchema knows; the value says which are unsupported.
var schemaKeywords = map[string]bool{
	"type": true, "bsonType": true, "properties": true, "required": true,
	"additionalProperties": true, "patternProperties": true, "minProperties": true,
	"maxProperties": true, "items": true, "additionalItems": true, "minItems": true,
	"maxItems": true, "uniqueItems": true, "enum": true, "minimum": true, "maximum": true,
	"exclusiveMinimum": true, "exclusiveMaximum": true, "multipleOf": true, "minLength": true,
	"maxLength": true, "pattern": true, "allOf": true, "anyOf": true, "oneOf": true, "not": true,
	"dependencies": true, "title": true, "description": true,
	"$ref": false, "$schema": false, "default": false, "definitions": false, "format": false,
	"id": false, "encrypt": false, "encryptMetadata": false,
}

func compileJSONSchema(v bson.RawValue) (node, error) {
	if v.Type != bson.TypeEmbeddedDocument {
		return nil, errorf("", "$jsonSchema", "$jsonSchema must be an object")
	}
	s, err := compileSchema(bson.Raw(v.Value), "", 0)
	if err != nil {
		return nil, err
	}
	return schemaNode{s}, nil
}

type schemaError struct{ path string }

func (e schemaError) errf(format string, args ...any) error {
	return errorf(e.path, "$jsonSchema", fmt.Sprintf(format, args...))
}

// compileSchema compiles one schema object; path is the document field it applies to.
func compileSchema(doc bson.Raw, path string, depth int) (*schema, error) {
	se := schemaError{path}
	if depth > maxDepth {
		return nil, se.errf("$jsonSchema exceeded depth limit of 100")
	}
	kw := map[string]bson.RawValue{}
	it := value.NewIter(doc)
	for it.Next() {
		k := string(it.Key())
		supported, known := schemaKeywords[k]
		switch {
		case !known:
			return nil, se.errf("Unknown $jsonSchema keyword: %s", k)
		case !supported:
			return nil, se.errf("$jsonSchema keyword '%s' is not currently supported", k)
		}
		if _, dup := kw[k]; dup {
			return nil, se.errf("$jsonSchema keyword '%s' is specified more than once", k)
		}
		kw[k] = it.Val()
	}
	s := &schema{}
	add := func(p pred) { s.checks = append(s.checks, p) }

	for _, k := range []string{"title", "description"} {
		if v, ok := kw[k]; ok && v.Type != bson.TypeString {
			return nil, se.errf("$jsonSchema keyword '%s' must be a string", k)
		}
	}

	// Types.
	if _, ok := kw["type"]; ok {
		if _, ok := kw["bsonType"]; ok {
			return nil, se.errf("Cannot specify both $jsonSchema keywords 'type' and 'bsonType'")
		}
	}
	for _, k := range []string{"type", "bsonType"} {
		v, ok := kw[k]
		if !ok {
			continue
		}
		set, err := schemaTypes(se, k, v)
		if err != nil {
			return nil, err
		}
		add(typePred{set})
	}

	// Objects.
	obj := &objectCheck{}
	hasObj := false
	if v, ok := kw["properties"]; ok {
		if v.Type != bson.TypeEmbeddedDocument {
			return nil, se.errf("$jsonSchema keyword 'properties' must be an object")
		}
		obj.properties = map[string]*schema{}
		pit := value.NewIter(v.Value)
		for pit.Next() {
			name, sv := string(pit.Key()), pit.Val()
			if sv.Type != bson.TypeEmbeddedDocument {
				return nil, se.errf("Nested schema for $jsonSchema property '%s' must be an object", name)
			}
			sub, err := compileSchema(bson.Raw(sv.Value), joinPath(path, name), depth+1)
			if err != nil {
				return nil, err
			}
			obj.properties[name] = sub
		}
		hasObj = true
	}
	if v, ok := kw["patternProperties"]; ok {
		if v.Type != bson.TypeEmbeddedDocument {
			return nil, se.errf("$jsonSchema keyword 'patternProperties' must be an object")
		}
		pit := value.NewIter(v.Value)
		for pit.Next() {
			pat, sv := string(pit.Key()), pit.Val()
			if sv.Type != bson.TypeEmbeddedDocument {
				return nil, se.errf("Nested schema for $jsonSchema patternProperties '%s' must be an object", pat)
			}
			re, msg := compileRegex(pat, "")
			if msg != "" {
				return nil, se.errf("$jsonSchema patternProperties '%s': %s", pat, msg)
			}
			sub, err := compileSchema(bson.Raw(sv.Value), path, depth+1)
			if err != nil {
				return nil, err
			}
			obj.patterns = append(obj.patterns, patternSchema{re: re, s: sub})
		}
		hasObj = true
	}
	if v, ok := kw["additionalProperties"]; ok {
		switch v.Type {
		case bson.TypeBoolean:
			obj.noAdditional = !v.Boolean()
		case bson.TypeEmbeddedDocument:
			sub, err := compileSchema(bson.Raw(v.Value), path, depth+1)
			if err != nil {
				return nil, err
			}
			obj.additional = sub
		default:
			return nil, se.errf("$jsonSchema keyword 'additionalProperties' must be either an object or a boolean")
		}
		hasObj = true
	}
	if hasObj {
		add(obj)
	}
	if v, ok := kw["required"]; ok {
		names, err := schemaStrings(se, "required", v)
		if err != nil {
			return nil, err
		}
		add(requiredCheck(names))
	}
	for _, k := range []string{"minProperties", "maxProperties"} {
		if v, ok := kw[k]; ok {
			n, err := schemaCount(se, k, v)
			if err != nil {
				return nil, err
			}
			add(countCheck{t: bson.TypeEmbeddedDocument, n: n, max: k == "maxProperties"})
		}
	}
	if v, ok := kw["dependencies"]; ok {
		if v.Type != bson.TypeEmbeddedDocument {
			return nil, se.errf("$jsonSchema keyword 'dependencies' must be an object")
		}
		dit := value.NewIter(v.Value)
		for dit.Next() {
			name, dv := string(dit.Key()), dit.Val()
			d := &dependency{name: name}
			switch dv.Type {
			case bson.TypeEmbeddedDocument:
				sub, err := compileSchema(bson.Raw(dv.Value), path, depth+1)
				if err != nil {
					return nil, err
				}
				d.schema = sub
			case bson.TypeArray:
				names, err := schemaStrings(se, "dependencies", dv)
				if err != nil {
					return nil, err
				}
				d.required = names
			default:
				return nil, se.errf("property '%s' in $jsonSchema keyword 'dependencies' must be either an object or an array", name)
			}
			add(d)
		}
	}

	// Arrays.
	if v, ok := kw["items"]; ok {
		ic := &itemsCheck{}
		switch v.Type {
		case bson.TypeEmbeddedDocument:
			sub, err := compileSchema(bson.Raw(v.Value), path, depth+1)
			if err != nil {
				return nil, err
			}
			ic.all = sub
		case bson.TypeArray:
			ic.tuple = []*schema{}
			iit := value.NewIter(v.Value)
			for iit.Next() {
				e := iit.Val()
				if e.Type != bson.TypeEmbeddedDocument {
					return nil, se.errf("$jsonSchema keyword 'items' requires that each element of the array is an object")
				}
				sub, err := compileSchema(bson.Raw(e.Value), path, depth+1)
				if err != nil {
					return nil, err
				}
				ic.tuple = append(ic.tuple, sub)
			}
		default:
			return nil, se.errf("$jsonSchema keyword 'items' must be an array or an object")
		}
		if av, ok := kw["additionalItems"]; ok && ic.tuple != nil {
			switch av.Type {
			case bson.TypeBoolean:
				ic.noAdditional = !av.Boolean()
			case bson.TypeEmbeddedDocument:
				sub, err := compileSchema(bson.Raw(av.Value), path, depth+1)
				if err != nil {
					return nil, err
				}
				ic.additional = sub
			default:
				return nil, se.errf("$jsonSchema keyword 'additionalItems' must be either an object or a boolean")
			}
		}
		add(ic)
	} else if av, ok := kw["additionalItems"]; ok && av.Type != bson.TypeBoolean && av.Type != bson.TypeEmbeddedDocument {
		return nil, se.errf("$jsonSchema keyword 'additionalItems' must be either an object or a boolean")
	}
	for _, k := range []string{"minItems", "maxItems"} {
		if v, ok := kw[k]; ok {
			n, err := schemaCount(se, k, v)
			if err != nil {
				return nil, err
			}
			add(countCheck{t: bson.TypeArray, n: n, max: k == "maxItems"})
		}
	}
	if v, ok := kw["uniqueItems"]; ok {
		if v.Type != bson.TypeBoolean {
			return nil, se.errf("$jsonSchema keyword 'uniqueItems' must be a boolean")
		}
		if v.Boolean() {
			add(uniqueItems{})
		}
	}

	// Any type.
	if v, ok := kw["enum"]; ok {
		if v.Type != bson.TypeArray {
			return nil, se.errf("$jsonSchema keyword 'enum' must be an array")
		}
		var vals []bson.RawValue
		eit := value.NewIter(v.Value)
		for eit.Next() {
			e := eit.Val()
			for _, prev := range vals {
				if equalUnordered(prev, e) {
					return nil, se.errf("$jsonSchema keyword 'enum' array cannot contain duplicate values")
				}
			}
			vals = append(vals, e)
		}
		if len(vals) == 0 {
			return nil, se.errf("$jsonSchema keyword 'enum' cannot be an empty array")
		}
		add(enumCheck(vals))
	}

	// Numbers.
	for _, b := range []struct{ bound, exclusive string }{{"minimum", "exclusiveMinimum"}, {"maximum", "exclusiveMaximum"}} {
		v, hasBound := kw[b.bound]
		ex, hasEx := kw[b.exclusive]
		if hasEx {
			if ex.Type != bson.TypeBoolean {
				return nil, se.errf("$jsonSchema keyword '%s' must be a boolean", b.exclusive)
			}
			if !hasBound {
				return nil, se.errf("$jsonSchema keyword '%s' must be a present if %s is present", b.bound, b.exclusive)
			}
		}
		if !hasBound {
			continue
		}
		if !value.IsNumber(v) {
			return nil, se.errf("$jsonSchema keyword '%s' must be a number", b.bound)
		}
		exclusive := hasEx && ex.Boolean()
		op := opGTE
		switch {
		case b.bound == "minimum" && exclusive:
			op = opGT
		case b.bound == "maximum" && exclusive:
			op = opLT
		case b.bound == "maximum":
			op = opLTE
		}
		add(numberCheck{newCmp(op, v)})
	}
	if v, ok := kw["multipleOf"]; ok {
		if !value.IsNumber(v) {
			return nil, se.errf("$jsonSchema keyword 'multipleOf' must be a number")
		}
		r, ok := asDecimalRat(v)
		if !ok || r.Sign() <= 0 {
			return nil, se.errf("$jsonSchema keyword 'multipleOf' must have a positive value")
		}
		add(multipleOf{r})
	}

	// Strings.
	for _, k := range []string{"minLength", "maxLength"} {
		if v, ok := kw[k]; ok {
			n, err := schemaCount(se, k, v)
			if err != nil {
				return nil, err
			}
			add(lengthCheck{n: n, max: k == "maxLength"})
		}
	}
	if v, ok := kw["pattern"]; ok {
		if v.Type != bson.TypeString {
			return nil, se.errf("$jsonSchema keyword 'pattern' must be a string")
		}
		re, msg := compileRegex(v.StringValue(), "")
		if msg != "" {
			return nil, se.errf("$jsonSchema keyword 'pattern': %s", msg)
		}
		add(patternCheck{&regexPred{re: re}})
	}

	// Combinators.
	for _, k := range []string{"allOf", "anyOf", "oneOf"} {
		v, ok := kw[k]
		if !ok {
			continue
		}
		if v.Type != bson.TypeArray {
			return nil, se.errf("$jsonSchema keyword '%s' must be an array", k)
		}
		var subs []*schema
		ait := value.NewIter(v.Value)
		for ait.Next() {
			e := ait.Val()
			if e.Type != bson.TypeEmbeddedDocument {
				return nil, se.errf("$jsonSchema keyword '%s' must be an array of objects", k)
			}
			sub, err := compileSchema(bson.Raw(e.Value), path, depth+1)
			if err != nil {
				return nil, err
			}
			subs = append(subs, sub)
		}
		if len(subs) == 0 {
			return nil, se.errf("$jsonSchema keyword '%s' must be a nonempty array", k)
		}
		add(combinator{kind: k, subs: subs})
	}
	if v, ok := kw["not"]; ok {
		if v.Type != bson.TypeEmbeddedDocument {
			return nil, se.errf("$jsonSchema keyword 'not' must be an object")
		}
		sub, err := compileSchema(bson.Raw(v.Value), path, depth+1)
		if err != nil {
			return nil, err
		}
		add(notPred{sub})
	}
	return s, nil
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// jsonTypes are the JSON Schema type names mongod supports for 'type'.
var jsonTypes = map[string][]bson.Type{
	"object":  {bson.TypeEmbeddedDocument},
	"array":   {bson.TypeArray},
	"string":  {bson.TypeString},
	"boolean": {bson.TypeBoolean},
	"null":    {bson.TypeNull},
}

// schemaTypes reads 'type' (JSON names) or 'bsonType' (BSON names): a string or an array.
func schemaTypes(se schemaError, k string, v bson.RawValue) (*typeSet, error) {
	var names []string
	switch v.Type {
	case bson.TypeString:
		names = []string{v.StringValue()}
	case bson.TypeArray:
		var err error
		if names, err = schemaStrings(se, k, v); err != nil {
			return nil, err
		}
	default:
		return nil, se.errf("$jsonSchema keyword '%s' must be either a string or an array of strings", k)
	}
	set := &typeSet{}
	for _, name := range names {
		if name == "number" {
			set.number = true
			continue
		}
		if k == "type" {
			if name == "integer" {
				return nil, se.errf("$jsonSchema type 'integer' is not currently supported.")
			}
			ts, ok := jsonTypes[name]
			if !ok {
				return nil, se.errf("Unknown type name alias: %s", name)
			}
			for _, t := range ts {
				set.types[byte(t)] = true
			}
			continue
		}
		t, ok := typeNames[name]
		if !ok {
			return nil, se.errf("Unknown type name alias: %s", name)
		}
		set.types[byte(t)] = true
	}
	return set, nil
}

// schemaStrings reads a nonempty array of distinct strings ('required', 'type' arrays,
// property dependencies).
func schemaStrings(se schemaError, k string, v bson.RawValue) ([]string, error) {
	if v.Type != bson.TypeArray {
		return nil, se.errf("$jsonSchema keyword '%s' must be an array", k)
	}
	var out []string
	seen := map[string]bool{}
	it := value.NewIter(v.Value)
	for it.Next() {
		e := it.Val()
		if e.Type != bson.TypeString {
			return nil, se.errf("$jsonSchema keyword '%s' must be an array of strings", k)
		}
		s := e.StringValue()
		if seen[s] {
			return nil, se.errf("$jsonSchema keyword '%s' array cannot contain duplicate values", k)
		}
		seen[s] = true
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, se.errf("$jsonSchema keyword '%s' cannot be an empty array", k)
	}
	return out, nil
}

// schemaCount reads a non-negative whole number (minItems, maxLength, ...).
func schemaCount(se schemaError, k string, v bson.RawValue) (int64, error) {
	if !value.IsNumber(v) {
		return 0, se.errf("$jsonSchema keyword '%s' must be a number", k)
	}
	n, exact, _ := asInt64(v)
	if !exact {
		return 0, se.errf("$jsonSchema keyword '%s' must be representable as a long integer", k)
	}
	if n < 0 {
		return 0, se.errf("$jsonSchema keyword '%s' must be a non-negative integer", k)
	}
	return n, nil
}

type patternSchema struct {
	re *pcre.Regexp
	s  *schema
}

// objectCheck is properties, patternProperties and additionalProperties in one pass over the
// object's fields.
type objectCheck struct {
	properties   map[string]*schema
	patterns     []patternSchema
	additional   *schema
	noAdditional bool
}

func (c *objectCheck) test(v bson.RawValue) bool {
	if v.Type != bson.TypeEmbeddedDocument {
		return true
	}
	it := value.NewIter(v.Value)
	for it.Next() {
		known := false
		if c.properties != nil {
			if s, ok := c.properties[string(it.Key())]; ok {
				known = true
				if !s.test(it.Val()) {
					return false
				}
			}
		}
		if len(c.patterns) > 0 || (!known && (c.noAdditional || c.additional != nil)) {
			name := string(it.Key())
			for _, p := range c.patterns {
				if reMatch(p.re, name) {
					known = true
					if !p.s.test(it.Val()) {
						return false
					}
				}
			}
		}
		if known {
			continue
		}
		if c.noAdditional {
			return false
		}
		if c.additional != nil && !c.additional.test(it.Val()) {
			return false
		}
	}
	return true
}

type requiredCheck []string

func (r requiredCheck) test(v bson.RawValue) bool {
	if v.Type != bson.TypeEmbeddedDocument {
		return true
	}
	for _, name := range r {
		if value.Lookup(v.Value, name).Type == 0 {
			return false
		}
	}
	return true
}

// countCheck is min/maxProperties (objects) and min/maxItems (arrays).
type countCheck struct {
	t   bson.Type
	n   int64
	max bool
}

func (c countCheck) test(v bson.RawValue) bool {
	if v.Type != c.t {
		return true
	}
	n := int64(count(v.Value))
	if c.max {
		return n <= c.n
	}
	return n >= c.n
}

type dependency struct {
	name     string
	required []string
	schema   *schema
}

func (d *dependency) test(v bson.RawValue) bool {
	if v.Type != bson.TypeEmbeddedDocument || value.Lookup(v.Value, d.name).Type == 0 {
		return true
	}
	if d.schema != nil {
		return d.schema.test(v)
	}
	return requiredCheck(d.required).test(v)
}

type itemsCheck struct {
	all          *schema
	tuple        []*schema
	additional   *schema
	noAdditional bool
}

func (c *itemsCheck) test(v bson.RawValue) bool {
	if v.Type != bson.TypeArray {
		return true
	}
	i := 0
	it := value.NewIter(v.Value)
	for ; it.Next(); i++ {
		switch {
		case c.all != nil:
			if !c.all.test(it.Val()) {
				return false
			}
		case i < len(c.tuple):
			if !c.tuple[i].test(it.Val()) {
				return false
			}
		case c.noAdditional:
			return false
		case c.additional != nil:
			if !c.additional.test(it.Val()) {
				return false
			}
		}
	}
	return true
}

type uniqueItems struct{}

func (uniqueItems) test(v bson.RawValue) bool {
	if v.Type != bson.TypeArray {
		return true
	}
	var seen []bson.RawValue
	it := value.NewIter(v.Value)
	for it.Next() {
		for _, s := range seen {
			if equalUnordered(s, it.Val()) {
				return false
			}
		}
		seen = append(seen, it.Val())
	}
	return true
}

type enumCheck []bson.RawValue

func (e enumCheck) test(v bson.RawValue) bool {
	for _, x := range e {
		if equalUnordered(x, v) {
			return true
		}
	}
	return false
}

// equalUnordered is the equality $jsonSchema uses for enum and uniqueItems: BSON equality, but
// embedded documents compare as sets of fields.
func equalUnordered(a, b bson.RawValue) bool {
	if a.Type == bson.TypeEmbeddedDocument && b.Type == bson.TypeEmbeddedDocument {
		if count(a.Value) != count(b.Value) {
			return false
		}
		it := value.NewIter(a.Value)
		for it.Next() {
			o := value.Lookup(b.Value, string(it.Key()))
			if o.Type == 0 || !equalUnordered(it.Val(), o) {
				return false
			}
		}
		return true
	}
	if a.Type == bson.TypeArray && b.Type == bson.TypeArray {
		ia, ib := value.NewIter(a.Value), value.NewIter(b.Value)
		for {
			na, nb := ia.Next(), ib.Next()
			if na != nb {
				return false
			}
			if !na {
				return true
			}
			if !equalUnordered(ia.Val(), ib.Val()) {
				return false
			}
		}
	}
	if value.TypeOrder(a.Type) != value.TypeOrder(b.Type) || a.Type == 0 || b.Type == 0 {
		return false
	}
	return value.Compare(a, b) == 0
}

// numberCheck is minimum and maximum: only numbers are constrained.
type numberCheck struct{ c *cmpPred }

func (n numberCheck) test(v bson.RawValue) bool { return !value.IsNumber(v) || n.c.test(v) }

type multipleOf struct{ r *big.Rat }

func (m multipleOf) test(v bson.RawValue) bool {
	if !value.IsNumber(v) {
		return true
	}
	x, ok := asDecimalRat(v)
	if !ok {
		return false
	}
	return new(big.Rat).Quo(x, m.r).IsInt()
}

// lengthCheck is minLength and maxLength, counted in code points.
type lengthCheck struct {
	n   int64
	max bool
}

func (c lengthCheck) test(v bson.RawValue) bool {
	if v.Type != bson.TypeString {
		return true
	}
	s, _ := strBytes(v)
	n := int64(utf8.RuneCount(s))
	if c.max {
		return n <= c.n
	}
	return n >= c.n
}

type patternCheck struct{ r *regexPred }

func (p patternCheck) test(v bson.RawValue) bool {
	return v.Type != bson.TypeString || p.r.test(v)
}

type combinator struct {
	kind string
	subs []*schema
}

func (c combinator) test(v bson.RawValue) bool {
	n := 0
	for _, s := range c.subs {
		if s.test(v) {
			if c.kind == "anyOf" {
				return true
			}
			n++
		} else if c.kind == "allOf" {
			return false
		}
	}
	switch c.kind {
	case "allOf":
		return true
	case "oneOf":
		return n == 1
	}
	return false
}
