package expr

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestArithFastPath holds arithExpr (the unboxed $add and $multiply) to the general
// evaluators, evalAdd and evalMultiply over naryOp, on random trees of the two over
// constants and field paths, against documents whose fields hold every kind of operand:
// int32 and int64 at their overflow edges, doubles with NaN, infinities and -0, decimals,
// dates, strings, null and missing. Both must give the same type, bytes and error.
func TestArithFastPath(t *testing.T) {
	general := map[string]compileFunc{"$add": naryOp(0, -1, evalAdd), "$multiply": naryOp(0, -1, evalMultiply)}
	compileGeneral := func(src bson.RawValue) (Expr, error) {
		fast := map[string]compileFunc{"$add": operators["$add"], "$multiply": operators["$multiply"]}
		operators["$add"], operators["$multiply"] = general["$add"], general["$multiply"]
		defer func() { operators["$add"], operators["$multiply"] = fast["$add"], fast["$multiply"] }()
		return Compile(src)
	}
	fields := []any{int32(0), int32(1), int32(-1), int32(math.MaxInt32), int32(math.MinInt32), int64(math.MaxInt64), int64(math.MinInt64),
		int64(1 << 40), 0.1, 1.8, -2.5, math.Inf(1), math.NaN(), math.Copysign(0, -1), 1e308, nil, "s",
		bson.NewDateTimeFromTime(bson.DateTime(1_700_000_000_000).Time()), bson.NewDecimal128(0x3040000000000000, 15)}
	consts := []string{"0", "1", "-1", "2147483647", "-2147483648", `{"$numberLong": "9223372036854775807"}`, `{"$numberLong": "-9223372036854775808"}`,
		"1.8", "32", "0.5", "-0.0", "1e308", `{"$numberDecimal": "1.5"}`, "null", `"x"`, `{"$date": "2020-01-01T00:00:00Z"}`}
	r := rand.New(rand.NewPCG(3, 4))
	var gen func(depth int) string
	gen = func(depth int) string {
		switch k := r.IntN(10); {
		case depth > 0 && k < 4:
			op := "$add"
			if r.IntN(2) == 0 {
				op = "$multiply"
			}
			args := make([]string, r.IntN(4))
			for i := range args {
				args[i] = gen(depth - 1)
			}
			return `{"` + op + `": [` + strings.Join(args, ", ") + `]}`
		case k < 7:
			return fmt.Sprintf(`"$f%d"`, r.IntN(len(fields)+1)) // f<len> is missing
		default:
			return consts[r.IntN(len(consts))]
		}
	}
	var doc bson.D
	for i, f := range fields {
		doc = append(doc, bson.E{Key: fmt.Sprintf("f%d", i), Value: f})
	}
	root, err := bson.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	fastHits := 0
	for range 20_000 {
		src := `{"v": ` + gen(3) + `}`
		raw := mustRaw(t, src).Lookup("v")
		fast, err1 := Compile(raw)
		slow, err2 := compileGeneral(raw)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("%s: compile errors differ: %v / %v", src, err1, err2)
		}
		if err1 != nil {
			continue
		}
		if a, ok := fast.(rootExpr).e.(*arithExpr); ok {
			if _, ok := a.fold(&Env{Root: root}); ok {
				fastHits++
			}
		}
		got, gerr := fast.Eval(&Env{Root: root})
		want, werr := slow.Eval(&Env{Root: root})
		if fmt.Sprint(gerr) != fmt.Sprint(werr) || got.Type != want.Type || !bytes.Equal(got.Value, want.Value) {
			t.Fatalf("%s:\nfast    %v (%v)\ngeneral %v (%v)", src, got, gerr, want, werr)
		}
	}
	// The fast path must be taken on a good share of the trees, or the test tests nothing.
	if fastHits < 1000 {
		t.Fatalf("the unboxed fold completed on only %d trees", fastHits)
	}
}
