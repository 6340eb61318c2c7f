package value

import (
	"math"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func dec(s string) bson.RawValue {
	d, err := bson.ParseDecimal128(s)
	if err != nil {
		panic(err)
	}
	return Of(d)
}

func TestCompare(t *testing.T) {
	oid := bson.NewObjectID()
	ordered := []bson.RawValue{
		Of(bson.MinKey{}),
		Missing,
		Of(nil),
		Of(math.NaN()),
		Of(math.Inf(-1)),
		Of(int64(math.MinInt64)),
		Of(-2.5),
		dec("-1"),
		Of(int32(0)),
		Of(0.5),
		dec("0.75"),
		Of(int64(1)),
		Of(int64(9007199254740993)), // 2^53+1: not representable as a double
		Of(math.Inf(1)),
		Of(""),
		Of("a"),
		Of("b"),
		Of(bson.D{}),
		Of(bson.D{{Key: "a", Value: 1}}),
		Of(bson.D{{Key: "a", Value: 2}}),
		Of(bson.D{{Key: "b", Value: 1}}),
		Of(bson.A{}),
		Of(bson.A{1}),
		Of(bson.A{1, 2}),
		Of(bson.Binary{Subtype: 0, Data: []byte{9}}),
		Of(bson.Binary{Subtype: 0, Data: []byte{1, 2}}),
		Of(oid),
		Of(false),
		Of(true),
		Of(bson.DateTime(-1000)), // before 1970
		Of(bson.DateTime(5)),
		Of(bson.Timestamp{T: 1, I: 2}),
		Of(bson.Regex{Pattern: "a", Options: "i"}),
		Of(bson.MaxKey{}),
	}
	for i := range ordered {
		for j := range ordered {
			want := cmpInt(i, j)
			if got := Compare(ordered[i], ordered[j]); got != want {
				t.Errorf("Compare(%v, %v) = %d, want %d", ordered[i], ordered[j], got, want)
			}
		}
	}
	equal := [][2]bson.RawValue{
		{Of(int32(1)), Of(1.0)},
		{Of(int64(1)), dec("1.000")},
		{Of(math.NaN()), dec("NaN")},
		{Of(nil), Of(nil)},
		{Of(bson.Undefined{}), Missing},
		{Of("x"), Of(bson.Symbol("x"))},
		{Of(bson.A{int32(1)}), Of(bson.A{1.0})},
	}
	for _, p := range equal {
		if !Equal(p[0], p[1]) {
			t.Errorf("%v and %v should be equal", p[0], p[1])
		}
	}
	if Equal(Of(int64(9007199254740993)), Of(9007199254740992.0)) {
		t.Error("2^53+1 compared equal to 2^53")
	}
}

func TestTruthy(t *testing.T) {
	for _, v := range []bson.RawValue{Of(false), Of(nil), Missing, Of(int32(0)), Of(0.0), dec("0"), Of(bson.Undefined{})} {
		if Truthy(v) {
			t.Errorf("%v is truthy", v)
		}
	}
	for _, v := range []bson.RawValue{Of(true), Of(""), Of(bson.A{}), Of(bson.D{}), Of(int64(-1)), dec("0.1"), Of(math.NaN())} {
		if !Truthy(v) {
			t.Errorf("%v is falsy", v)
		}
	}
}
