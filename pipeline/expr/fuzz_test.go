package expr

import (
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// FuzzCompileEval compiles arbitrary BSON as an expression and evaluates it against an
// arbitrary document: it must neither panic nor run unbounded.
func FuzzCompileEval(f *testing.F) {
	seeds := []string{
		`{"$add": [1, "$a", {"$numberDecimal": "1.5"}]}`,
		`{"$map": {"input": {"$range": [0, 100]}, "in": {"$concat": ["x", {"$toString": "$$this"}]}}}`,
		`{"$reduce": {"input": [[1], [2]], "initialValue": [], "in": {"$concatArrays": ["$$value", "$$this"]}}}`,
		`{"$dateToString": {"date": "$d", "format": "%Y-%m-%d %z", "timezone": "Europe/Paris"}}`,
		`{"$convert": {"input": "$a", "to": "binData", "onError": null}}`,
		`{"$regexFindAll": {"input": "$s", "regex": "a*"}}`,
		`{"$let": {"vars": {"x": "$a.b"}, "in": {"$filter": {"input": "$$x", "cond": {"$gt": ["$$this", 1]}}}}}`,
		`{"a": {"$divide": ["$a", 3]}, "b": {"$switch": {"branches": [{"case": "$a", "then": 1}], "default": 2}}}`,
		`{"$dateTrunc": {"date": "$d", "unit": "week", "binSize": 3, "startOfWeek": "fri"}}`,
		`{"$setUnion": ["$a.b", [1, 2]]}`,
	}
	doc := `{"a": [{"b": 1}, {"b": 2.5}], "d": {"$date": "1960-01-01T00:00:00Z"}, "s": "aaab"}`
	for _, s := range seeds {
		f.Add([]byte(mustRaw(f, s)), []byte(mustRaw(f, doc)))
	}
	maxSteps = 1_000_000
	f.Fuzz(func(t *testing.T, exprBytes, docBytes []byte) {
		if bson.Raw(exprBytes).Validate() != nil || bson.Raw(docBytes).Validate() != nil {
			return
		}
		start := time.Now()
		for _, compile := range []func(bson.Raw) (Expr, error){
			func(r bson.Raw) (Expr, error) { return Compile(docValue(r)) },
			CompileObject,
		} {
			e, err := compile(bson.Raw(exprBytes))
			if err != nil {
				continue
			}
			env := &Env{Root: bson.Raw(docBytes), Now: func() time.Time { return time.UnixMilli(0) }}
			_, _ = e.Eval(env)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Fatalf("evaluation took %v", d)
		}
	})
}
