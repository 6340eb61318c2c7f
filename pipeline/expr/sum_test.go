package expr

import (
	"math"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/value"
)

func TestSum(t *testing.T) {
	d := func(s string) bson.RawValue { return decimalValue(mustDec(s)) }
	var tenths []bson.RawValue // 0.1 ten times: 0.9999999999999999 when added naively
	for range 10 {
		tenths = append(tenths, doubleValue(0.1))
	}
	for _, tc := range []struct {
		name       string
		in         []bson.RawValue
		total, avg bson.RawValue
	}{
		{"nothing", nil, int32Value(0), nullValue},
		{"only non-numbers", []bson.RawValue{value.Of("a"), nullValue}, int32Value(0), nullValue},
		{"int32", []bson.RawValue{int32Value(2), int32Value(3)}, int32Value(5), doubleValue(2.5)},
		{"int32 past its range", []bson.RawValue{int32Value(math.MaxInt32), int32Value(1)}, int64Value(1 << 31), doubleValue(1 << 30)},
		{"int64 past its range", []bson.RawValue{int64Value(math.MaxInt64), int64Value(math.MaxInt64)}, doubleValue(2 * float64(math.MaxInt64)), doubleValue(float64(math.MaxInt64))},
		{"compensated doubles", tenths, doubleValue(1), doubleValue(0.1)},
		{"NaN", []bson.RawValue{doubleValue(1), doubleValue(math.NaN())}, doubleValue(math.NaN()), doubleValue(math.NaN())},
		{"infinities", []bson.RawValue{doubleValue(math.Inf(1)), int32Value(1)}, doubleValue(math.Inf(1)), doubleValue(math.Inf(1))},
		{"decimals", []bson.RawValue{d("0.1"), d("0.2")}, d("0.3"), d("0.15")},
		{"decimal and a double at 34 digits", []bson.RawValue{d("0"), doubleValue(0.1)}, d("0.1000000000000000055511151231257827"), d("0.05000000000000000277555756156289135")},
		{"decimal and a long", []bson.RawValue{d("0.5"), int64Value(1 << 62)}, d("4611686018427387904.5"), d("2305843009213693952.25")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s Sum
			for _, v := range tc.in {
				s.Add(v)
			}
			check := func(what string, got, want bson.RawValue) {
				t.Helper()
				if got.Type != want.Type || got.String() != want.String() {
					t.Errorf("%s = %s, want %s", what, got, want)
				}
			}
			check("total", s.Total(), tc.total)
			check("avg", s.Avg(), tc.avg)
			// The state round-trips.
			var r Sum
			st, _ := bson.Marshal(s.State())
			if !r.Restore(st) {
				t.Fatal("Restore refused a State")
			}
			check("restored total", r.Total(), tc.total)
		})
	}
	var s Sum
	if s.Restore(mustRaw(t, `{"k": 3, "n": 1, "i": 0, "bad": false, "hi": 0.0, "lo": 0.0, "sp": 0.0}`)) {
		t.Error("Restore took an impossible type")
	}
}
