package match

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// ej parses relaxed Extended JSON into a raw document, keeping field order.
func ej(t testing.TB, s string) bson.Raw {
	t.Helper()
	var r bson.Raw
	if err := bson.UnmarshalExtJSON([]byte(s), false, &r); err != nil {
		t.Fatalf("bad test JSON %s: %v", s, err)
	}
	return r
}

type matchCase struct {
	filter, doc string
	want        bool
}

func runMatchCases(t *testing.T, cases []matchCase) {
	t.Helper()
	for _, tc := range cases {
		m, err := Compile(ej(t, tc.filter), Options{})
		if err != nil {
			t.Errorf("Compile(%s): %v", tc.filter, err)
			continue
		}
		got, err := m.Match(ej(t, tc.doc), nil)
		if err != nil {
			t.Errorf("Match(%s, %s): %v", tc.filter, tc.doc, err)
			continue
		}
		if got != tc.want {
			t.Errorf("filter %s, doc %s: got %v, want %v", tc.filter, tc.doc, got, tc.want)
		}
	}
}
