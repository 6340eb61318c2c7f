package expr

import "testing"

func TestArithmetic(t *testing.T) {
	runCases(t, []exprCase{
		{expr: `{"$add": [1, 2]}`, want: `3`},
		{expr: `{"$add": []}`, want: `0`},
		{expr: `{"$add": [2147483647, 1]}`, want: `{"$numberLong": "2147483648"}`},
		{expr: `{"$add": [{"$numberLong": "1"}, 1]}`, want: `{"$numberLong": "2"}`},
		{expr: `{"$add": [{"$numberLong": "9223372036854775807"}, 1]}`, want: `9.223372036854775808e18`},
		{expr: `{"$add": [1, 1.5]}`, want: `2.5`},
		{expr: `{"$add": [1, {"$numberDecimal": "1.1"}]}`, want: `{"$numberDecimal": "2.1"}`},
		{expr: `{"$add": [0.1, {"$numberDecimal": "0.2"}]}`, want: `{"$numberDecimal": "0.300000000000000"}`},
		{expr: `{"$add": [1, null]}`, want: `null`},
		{expr: `{"$add": [1, 2.5, {"$numberDecimal": "1"}, 3]}`, want: `{"$numberDecimal": "7.50000000000000"}`},
		{expr: `{"$add": [2147483647, 1, -1]}`, want: `{"$numberLong": "2147483647"}`},
		{expr: `{"$add": [{"$numberDecimal": "1"}, null]}`, want: `null`},
		{expr: `{"$multiply": [2, {"$numberLong": "3"}, 1.5]}`, want: `9.0`},
		{expr: `{"$add": [1, "$missing"]}`, want: `null`},
		{expr: `{"$add": [1, "a"]}`, err: "$add only supports numeric or date types, not string"},
		{expr: `{"$add": [{"$date": "2020-01-01T00:00:00Z"}, 1000]}`, want: `{"$date": "2020-01-01T00:00:01Z"}`},
		{expr: `{"$add": [{"$date": "1960-01-01T00:00:00Z"}, 1.6]}`, want: `{"$date": {"$numberLong": "-315619199998"}}`},
		{expr: `{"$add": [{"$date": "2020-01-01T00:00:00Z"}, {"$date": "2020-01-01T00:00:00Z"}]}`, err: "only one date allowed"},
		{expr: `{"$subtract": [5, 3]}`, want: `2`},
		{expr: `{"$subtract": [{"$numberLong": "-9223372036854775808"}, 1]}`, want: `-9.223372036854775808e18`},
		{expr: `{"$subtract": [{"$date": "2020-01-01T00:00:01Z"}, {"$date": "2020-01-01T00:00:00Z"}]}`, want: `{"$numberLong": "1000"}`},
		{expr: `{"$subtract": [{"$date": "2020-01-01T00:00:01Z"}, 1000]}`, want: `{"$date": "2020-01-01T00:00:00Z"}`},
		{expr: `{"$subtract": [1, {"$date": "2020-01-01T00:00:00Z"}]}`, err: "cant $subtract a date from a int"},
		{expr: `{"$subtract": [1, null]}`, want: `null`},
		{expr: `{"$subtract": [1]}`, err: "Expression $subtract takes exactly 2 arguments. 1 were passed in."},
		{expr: `{"$multiply": [3, 4]}`, want: `12`},
		{expr: `{"$multiply": [65536, 65536]}`, want: `{"$numberLong": "4294967296"}`},
		{expr: `{"$multiply": [{"$numberLong": "4294967296"}, {"$numberLong": "4294967296"}]}`, want: `1.8446744073709552e19`},
		{expr: `{"$multiply": [2, 1.5]}`, want: `3.0`},
		{expr: `{"$multiply": [{"$numberDecimal": "1.5"}, 2]}`, want: `{"$numberDecimal": "3.0"}`},
		{expr: `{"$multiply": ["a"]}`, err: "$multiply only supports numeric types, not string"},
		{expr: `{"$divide": [6, 3]}`, want: `2.0`},
		{expr: `{"$divide": [1, 0]}`, err: "can't $divide by zero"},
		{expr: `{"$divide": [1, {"$numberDecimal": "0"}]}`, err: "can't $divide by zero"},
		{expr: `{"$divide": [{"$numberDecimal": "10"}, 4]}`, want: `{"$numberDecimal": "2.5"}`},
		{expr: `{"$divide": [{"$numberDecimal": "1"}, 3]}`, want: `{"$numberDecimal": "0.3333333333333333333333333333333333"}`},
		{expr: `{"$divide": [null, 0]}`, want: `null`},
		{expr: `{"$divide": ["a", 1]}`, err: "$divide only supports numeric types, not string and int"},
		{expr: `{"$mod": [7, 3]}`, want: `1`},
		{expr: `{"$mod": [-7, 3]}`, want: `-1`},
		{expr: `{"$mod": [7.5, 2]}`, want: `1.5`},
		{expr: `{"$mod": [{"$numberLong": "7"}, 3]}`, want: `{"$numberLong": "1"}`},
		{expr: `{"$mod": [{"$numberDecimal": "7.5"}, 2]}`, want: `{"$numberDecimal": "1.5"}`},
		{expr: `{"$mod": [7, 0]}`, err: "can't $mod by zero"},
		{expr: `{"$abs": -5}`, want: `5`},
		{expr: `{"$abs": -2147483648}`, want: `{"$numberLong": "2147483648"}`},
		{expr: `{"$abs": {"$numberLong": "-9223372036854775808"}}`, err: "can't take $abs of long long min"},
		{expr: `{"$abs": -1.5}`, want: `1.5`},
		{expr: `{"$abs": {"$numberDecimal": "-1.5"}}`, want: `{"$numberDecimal": "1.5"}`},
		{expr: `{"$abs": null}`, want: `null`},
		{expr: `{"$abs": "x"}`, err: "$abs only supports numeric types, not string"},
		{expr: `{"$ceil": 1.2}`, want: `2.0`},
		{expr: `{"$floor": -1.2}`, want: `-2.0`},
		{expr: `{"$floor": 5}`, want: `5`},
		{expr: `{"$ceil": {"$numberDecimal": "1.2"}}`, want: `{"$numberDecimal": "2"}`},
		{expr: `{"$floor": {"$numberDecimal": "-1.2"}}`, want: `{"$numberDecimal": "-2"}`},
		{expr: `{"$round": [10.5, 0]}`, want: `10.0`},
		{expr: `{"$round": [11.5, 0]}`, want: `12.0`},
		{expr: `{"$round": [1.2345, 2]}`, want: `1.23`},
		{expr: `{"$round": [1234, -2]}`, want: `1200`},
		{expr: `{"$round": [1250, -2]}`, want: `1200`},
		{expr: `{"$round": [{"$numberDecimal": "1.255"}, 2]}`, want: `{"$numberDecimal": "1.26"}`},
		{expr: `{"$round": [1, 101]}`, err: "between -20 and 100"},
		{expr: `{"$round": [null, 1]}`, want: `null`},
		{expr: `{"$trunc": [1.99, 1]}`, want: `1.9`},
		{expr: `{"$trunc": [-1.99]}`, want: `-1.0`},
		{expr: `{"$trunc": [1999, -2]}`, want: `1900`},
		{expr: `{"$exp": 0}`, want: `1.0`},
		{expr: `{"$ln": 1}`, want: `0.0`},
		{expr: `{"$ln": 0}`, err: "$ln's argument must be a positive number, but is 0"},
		{expr: `{"$log10": 100}`, want: `2.0`},
		{expr: `{"$log": [8, 2]}`, want: `3.0`},
		{expr: `{"$log": [8, 1]}`, err: "$log's base must be a positive number not equal to 1"},
		{expr: `{"$sqrt": 16}`, want: `4.0`},
		{expr: `{"$sqrt": -1}`, err: "$sqrt's argument must be greater than or equal to 0"},
		{expr: `{"$sqrt": {"$numberDecimal": "4"}}`, want: `{"$numberDecimal": "2"}`},
		{expr: `{"$sqrt": {"$numberDecimal": "4.00"}}`, want: `{"$numberDecimal": "2.0"}`},
		{expr: `{"$pow": [2, 10]}`, want: `1024`},
		{expr: `{"$pow": [2, 31]}`, want: `{"$numberLong": "2147483648"}`},
		{expr: `{"$pow": [2, 63]}`, want: `9.223372036854775808e18`},
		{expr: `{"$pow": [-1, 3]}`, want: `-1`},
		{expr: `{"$pow": [2, -1]}`, want: `0.5`},
		{expr: `{"$pow": [0, -1]}`, err: "$pow cannot take a base of 0 and a negative exponent"},
		{expr: `{"$pow": [2.0, 2]}`, want: `4.0`},
		{expr: `{"$pow": [{"$numberLong": "3"}, 2]}`, want: `{"$numberLong": "9"}`},
	})
}

func TestComparisonBooleanConditional(t *testing.T) {
	runCases(t, []exprCase{
		{expr: `{"$eq": [1, 1.0]}`, want: `true`},
		{expr: `{"$eq": [1, {"$numberDecimal": "1.00"}]}`, want: `true`},
		{expr: `{"$eq": [{"$numberLong": "9007199254740993"}, 9007199254740992.0]}`, want: `false`},
		{expr: `{"$eq": ["$missing", null]}`, want: `false`},
		{expr: `{"$eq": [[1, 2], [1, 2]]}`, want: `true`},
		{expr: `{"$ne": [1, "1"]}`, want: `true`},
		{expr: `{"$gt": ["a", 1]}`, want: `true`},
		{expr: `{"$gt": [null, "$missing"]}`, want: `true`},
		{expr: `{"$gte": [2, 2]}`, want: `true`},
		{expr: `{"$lt": [{"$date": "1960-01-01T00:00:00Z"}, {"$date": "1970-01-01T00:00:00Z"}]}`, want: `true`},
		{expr: `{"$lte": [3, 2]}`, want: `false`},
		{expr: `{"$cmp": [1, 2]}`, want: `-1`},
		{expr: `{"$cmp": [{"a": 1}, {"a": 1}]}`, want: `0`},
		{expr: `{"$eq": [1]}`, err: "Expression $eq takes exactly 2 arguments. 1 were passed in."},
		{expr: `{"$and": [1, "a", []]}`, want: `true`},
		{expr: `{"$and": [1, 0]}`, want: `false`},
		{expr: `{"$and": []}`, want: `true`},
		{expr: `{"$and": [false, {"$divide": [1, 0]}]}`, want: `false`},
		{expr: `{"$or": [null, "$missing", {"$numberDecimal": "0"}]}`, want: `false`},
		{expr: `{"$or": [0, 1]}`, want: `true`},
		{expr: `{"$not": [0]}`, want: `true`},
		{expr: `{"$not": "$missing"}`, want: `true`},
		{expr: `{"$not": [1, 2]}`, err: "Expression $not takes exactly 1 argument. 2 were passed in."},
		{expr: `{"$cond": [true, 1, 2]}`, want: `1`},
		{expr: `{"$cond": {"if": null, "then": 1, "else": 2}}`, want: `2`},
		{expr: `{"$cond": {"if": true, "then": 1}}`, err: "Missing 'else' parameter to $cond"},
		{expr: `{"$cond": {"if": true, "then": 1, "else": 2, "x": 1}}`, err: "Unrecognized parameter to $cond: x"},
		{expr: `{"$cond": [1, 2]}`, err: "Expression $cond takes exactly 3 arguments"},
		{expr: `{"$ifNull": ["$a", "$b", 3]}`, doc: `{"b": null}`, want: `3`},
		{expr: `{"$ifNull": ["$a", "x"]}`, doc: `{"a": false}`, want: `false`},
		{expr: `{"$ifNull": ["$a", "$b"]}`, want: `MISSING`},
		{expr: `{"$ifNull": ["$a"]}`, err: "$ifNull needs at least two arguments, had: 1"},
		{expr: `{"$switch": {"branches": [{"case": {"$gt": ["$a", 5]}, "then": "big"}, {"case": true, "then": "small"}]}}`, doc: `{"a": 1}`, want: `"small"`},
		{expr: `{"$switch": {"branches": [{"case": false, "then": 1}], "default": "d"}}`, want: `"d"`},
		{expr: `{"$switch": {"branches": [{"case": false, "then": 1}]}}`, err: "$switch could not find a matching branch"},
		{expr: `{"$switch": {"branches": []}}`, err: "$switch requires at least one branch"},
		{expr: `{"$switch": {"branches": [{"case": true}]}}`, err: "'then' expression"},
		{expr: `{"$switch": {"branches": [{"case": true, "then": 1}], "foo": 1}}`, err: "$switch found an unknown argument: foo"},
	})
}

// Operators evaluate their arguments onto one stack in the environment (evalAll): nested
// operators, $let, $map and an error part-way through must each leave it as they found it.
func TestArgumentStack(t *testing.T) {
	runCases(t, []exprCase{
		{expr: `{"$add": [1, {"$multiply": [2, {"$add": [3, 4]}]}, {"$let": {"vars": {"x": {"$add": [5, 6]}}, "in": {"$add": ["$$x", {"$max": [7, 8, 9]}]}}}]}`, want: `35`},
		{expr: `{"$concat": [{"$substr": [{"$concat": ["ab", "cd"]}, 1, 2]}, "-", {"$toString": {"$sum": [1, {"$add": [2, 3]}]}}]}`, want: `"bc-6"`},
		{expr: `{"$map": {"input": [1, 2, 3], "in": {"$add": ["$$this", {"$multiply": ["$$this", {"$add": [1, 1]}]}]}}}`, want: `[3, 6, 9]`},
		{expr: `{"$add": [1, {"$ifNull": [{"$add": [1, {"$divide": [1, 0]}]}, 5]}]}`, err: "can't $divide by zero"},
		{expr: `{"$add": [{"$add": [1, 2]}, {"$cond": [{"$gt": [{"$add": [1, 1]}, 1]}, {"$add": [10, 20]}, 0]}]}`, want: `33`},
	})
	// Evaluated again and again in one environment, the stack does not grow.
	e, err := Compile(mustRaw(t, `{"v": {"$add": [1, {"$multiply": [2, {"$add": [3, 4]}]}, {"$let": {"vars": {"x": 1}, "in": {"$add": ["$$x", 1]}}}]}}`).Lookup("v"))
	if err != nil {
		t.Fatal(err)
	}
	env := &Env{Root: mustRaw(t, `{}`)}
	for range 100 {
		if _, err := e.Eval(env); err != nil {
			t.Fatal(err)
		}
	}
	if len(env.args) != 0 {
		t.Fatalf("the argument stack holds %d values after evaluation", len(env.args))
	}
	bad, _ := Compile(mustRaw(t, `{"v": {"$add": [1, {"$multiply": [2, {"$divide": [1, 0]}]}]}}`).Lookup("v"))
	if _, err := bad.Eval(env); err == nil || len(env.args) != 0 {
		t.Fatalf("after an error (%v) the argument stack holds %d values", err, len(env.args))
	}
}
