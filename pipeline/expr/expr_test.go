package expr

import (
	"testing"
)

func TestPathsAndVariables(t *testing.T) {
	runCases(t, []exprCase{
		{expr: `"$a"`, doc: `{"a": 1}`, want: `1`},
		{expr: `"$a.b"`, doc: `{"a": {"b": "x"}}`, want: `"x"`},
		{expr: `"$a.b"`, doc: `{"a": [{"b": 1}, {"b": 2}, {"c": 3}]}`, want: `[1, 2]`},
		{expr: `"$a.b"`, doc: `{"a": [[{"b": 1}], {"b": 2}, 5]}`, want: `[[1], 2]`},
		{expr: `"$a.b.c"`, doc: `{"a": [{"b": [{"c": 1}, {"c": 2}]}, {"b": {"c": 3}}]}`, want: `[[1, 2], 3]`},
		{expr: `"$a"`, doc: `{"a": [1, 2]}`, want: `[1, 2]`},
		{expr: `"$a.b"`, doc: `{"a": 5}`, want: `MISSING`},
		{expr: `"$nope"`, want: `MISSING`},
		{expr: `"$$ROOT"`, doc: `{"a": 1}`, want: `{"a": 1}`},
		{expr: `"$$CURRENT.a"`, doc: `{"a": 1}`, want: `1`},
		{expr: `"$$REMOVE"`, want: `MISSING`},
		{expr: `"$$KEEP"`, want: `"keep"`},
		{expr: `"$$PRUNE"`, want: `"prune"`},
		{expr: `"$$DESCEND"`, want: `"descend"`},
		{expr: `"$$NOW"`, err: "$$NOW is not supported"},
		{expr: `"$$CLUSTER_TIME"`, err: "$$CLUSTER_TIME is not supported"},
		{expr: `"$$USER_ROLES"`, err: "$$USER_ROLES is not supported"},
		{expr: `"$$SEARCH_META"`, err: "$$SEARCH_META is not supported"},
		{expr: `"$$foo"`, err: "Use of undefined variable: foo"},
		{expr: `"$"`, err: "'$' by itself is not a valid FieldPath"},
		{expr: `"$a..b"`, err: "FieldPath must not contain empty field names"},
		{expr: `{"$let": {"vars": {"x": 2, "y": "$a"}, "in": {"$add": ["$$x", "$$y"]}}}`, doc: `{"a": 3}`, want: `5`},
		{expr: `{"$let": {"vars": {"x": {"a": [{"b": 1}]}}, "in": "$$x.a.b"}}`, want: `[1]`},
		{expr: `{"$let": {"vars": {"CURRENT": {"z": 9}}, "in": "$z"}}`, doc: `{"z": 1}`, want: `9`},
		{expr: `{"$let": {"vars": {"Bad": 1}, "in": 1}}`, err: "starts with an invalid character"},
		{expr: `{"$let": {"vars": {"x": 1}}}`, err: "Missing 'in' parameter to $let"},
		{expr: `{"$let": {"vars": {"x": 1}, "in": "$$x", "foo": 1}}`, err: "Unrecognized parameter to $let: foo"},
		{expr: `{"$let": {"vars": {"x": 1}, "in": {"$let": {"vars": {"x": 2}, "in": "$$x"}}}}`, want: `2`},
		{expr: `{"$literal": "$a"}`, doc: `{"a": 1}`, want: `"$a"`},
		{expr: `{"$literal": {"$add": 1}}`, want: `{"$add": 1}`},
		{expr: `{"$foo": 1}`, err: "Unrecognized expression '$foo'"},
		{expr: `{"$add": [1], "$sub": 2}`, err: "exactly one field"},
		{expr: `{"a": 1, "$b": 2}`, err: "Unrecognized expression '$b'"},
		{expr: `{"a.b": 1}`, err: "may not contain '.'"},
		{expr: `{"a": "$x", "b": {"c": {"$add": [1, 1]}, "d": "$missing"}}`, doc: `{"x": 1}`, want: `{"a": 1, "b": {"c": 2}}`},
		{expr: `["$a", "$missing", 1]`, doc: `{"a": 1}`, want: `[1, null, 1]`},
		{expr: `{"$meta": "stream.source.topic"}`, want: `"t1"`},
		{expr: `{"$meta": "stream.nothing"}`, want: `MISSING`},
		{expr: `{"$meta": "textScore"}`, err: "not supported"},
		{expr: `{"$currentDate": {}}`, want: `{"$date": {"$numberLong": "1700000000000"}}`},
		{expr: `{"$currentDate": {"a": 1}}`, err: "$currentDate does not accept arguments."},
		{expr: `{"$createUUID": 1}`, err: "$createUUID does not accept arguments."},
		{expr: `{"$type": {"$createUUID": {}}}`, want: `"binData"`},
	})
}

func TestCompileObjectAndIsFieldPath(t *testing.T) {
	e, err := CompileObject(mustRaw(t, `{"a.b": 1, "a.c": "$x", "d": "$$REMOVE"}`))
	if err != nil {
		t.Fatal(err)
	}
	v, err := e.Eval(&Env{Root: mustRaw(t, `{"x": 2}`)})
	if err != nil {
		t.Fatal(err)
	}
	checkValue(t, v, `{"a": {"b": 1, "c": 2}}`)
	for _, bad := range []string{`{"a": 1, "a.b": 2}`, `{"a.b": 1, "a": 2}`, `{"$x": 1}`, `{"a": 1, "a": 1}`} {
		if _, err := CompileObject(mustRaw(t, bad)); err == nil {
			t.Errorf("CompileObject(%s) succeeded", bad)
		}
	}
	for s, want := range map[string]bool{`"$a.b"`: true, `"$$a"`: false, `"a"`: false, `1`: false, `"$"`: false} {
		if got := IsFieldPath(mustRaw(t, `{"v": `+s+`}`).Lookup("v")); got != want {
			t.Errorf("IsFieldPath(%s) = %v", s, got)
		}
	}
	ce := &CompileError{Operator: "$add", Msg: "bad"}
	if ce.Error() != "$add: bad" {
		t.Errorf("CompileError.Error() = %q", ce.Error())
	}
	if (&EvalError{Msg: "x"}).Error() != "x" {
		t.Error("EvalError without operator")
	}
}
