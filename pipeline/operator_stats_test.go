package pipeline

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestOperators counts documents per operator: a stage's output is the next one's input, and
// the window reports its own results.
func TestOperators(t *testing.T) {
	p := bson.A{
		bson.D{{Key: "$source", Value: bson.D{{Key: "documents", Value: bson.A{}}}}},
		bson.D{{Key: "$match", Value: bson.D{{Key: "k", Value: bson.D{{Key: "$lt", Value: 3}}}}}},
		bson.D{{Key: "$tumblingWindow", Value: bson.D{{Key: "interval", Value: bson.D{{Key: "size", Value: 1}, {Key: "unit", Value: "second"}}},
			{Key: "pipeline", Value: bson.A{bson.D{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$k"}}}}}}}}},
		bson.D{{Key: "$project", Value: bson.D{{Key: "_id", Value: 1}}}},
		bson.D{{Key: "$match", Value: bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: 0}}}}}},
	}
	_, raw, err := bson.MarshalValue(p)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := Parse(raw, ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(plan, Options{})
	var in []Input
	for i := range 10 {
		d, _ := bson.Marshal(bson.D{{Key: "k", Value: i % 5}})
		in = append(in, Input{Doc: d, Time: 1_000_000 + int64(i)})
	}
	e.Push(in)
	res := e.Flush()
	ops := e.Operators()
	want := []OperatorStats{
		{Name: "$match", InputCount: 10, OutputCount: 6},
		{Name: "$tumblingWindow", InputCount: 6, OutputCount: 3},
		{Name: "$project", InputCount: 3, OutputCount: 3},
		{Name: "$match", InputCount: 3, OutputCount: 2},
	}
	if len(ops) != len(want) {
		t.Fatalf("operators %+v", ops)
	}
	for i := range want {
		if ops[i] != want[i] {
			t.Errorf("operator %d: %+v, want %+v", i, ops[i], want[i])
		}
	}
	if len(res.Out) != 2 {
		t.Fatalf("%d outputs", len(res.Out))
	}
}
