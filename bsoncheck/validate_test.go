package bsoncheck

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

func TestValidate(t *testing.T) {
	good := bsoncore.NewDocumentBuilder().
		AppendString("s", "x").AppendDouble("d", 1).AppendBoolean("b", true).AppendNull("n").
		AppendDocument("o", bsoncore.NewDocumentBuilder().AppendInt64("i", 1).Build()).
		AppendArray("a", bsoncore.NewArrayBuilder().AppendInt32(1).Build()).
		AppendBinary("bin", 0, []byte{1, 2}).AppendRegex("r", "a.*", "i").
		AppendCodeWithScope("c", "f()", bsoncore.NewDocumentBuilder().Build()).
		AppendDecimal128("dec", 1, 2).AppendTimestamp("ts", 1, 2).AppendDateTime("dt", 5).
		AppendMinKey("min").AppendMaxKey("max").Build()
	if err := Validate(good); err != nil {
		t.Fatalf("valid document rejected: %v", err)
	}
	bad := map[string][]byte{
		"empty":         {},
		"short length":  {4, 0, 0, 0, 0},
		"no terminator": {5, 0, 0, 0, 1},
		"bad bool":      {9, 0, 0, 0, 8, 'b', 0, 2, 0},
		"string no nul": {14, 0, 0, 0, 2, 's', 0, 2, 0, 0, 0, 'x', 'y', 0},
		"trailing":      append(bsoncore.NewDocumentBuilder().Build(), 0),
		"unknown type":  {8, 0, 0, 0, 0x20, 'a', 0, 0},
	}
	for name, b := range bad {
		if Validate(b) == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzValidate checks the validator never panics and accepts nothing the driver's own
// (shallower) validation rejects.
func FuzzValidate(f *testing.F) {
	f.Add([]byte{5, 0, 0, 0, 0})
	f.Add([]byte(bsoncore.NewDocumentBuilder().AppendString("a", "b").AppendDocument("d",
		bsoncore.NewDocumentBuilder().AppendInt32("x", 1).Build()).Build()))
	f.Fuzz(func(t *testing.T, data []byte) {
		if Validate(data) != nil {
			return
		}
		if err := bsoncore.Document(data).Validate(); err != nil {
			t.Fatalf("Validate accepted what bsoncore rejects: %v", err)
		}
	})
}
