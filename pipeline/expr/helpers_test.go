package expr

import (
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// exprCase evaluates expr (extended JSON) against doc and expects want (extended JSON, or
// "MISSING") or an error containing err.
type exprCase struct {
	expr string
	doc  string
	want string
	err  string
}

func mustRaw(t testing.TB, js string) bson.Raw {
	t.Helper()
	var r bson.Raw
	if err := bson.UnmarshalExtJSON([]byte(js), false, &r); err != nil {
		t.Fatalf("bad test JSON %s: %v", js, err)
	}
	return r
}

func runCases(t *testing.T, cases []exprCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.expr, func(t *testing.T) {
			doc := c.doc
			if doc == "" {
				doc = "{}"
			}
			e, err := Compile(mustRaw(t, `{"e": `+c.expr+`}`).Lookup("e"))
			if err == nil {
				env := &Env{Root: mustRaw(t, doc), Now: func() time.Time { return time.UnixMilli(1700000000000) },
					Meta: func(p string) bson.RawValue {
						if p == "stream.source.topic" {
							return stringValue("t1")
						}
						return bson.RawValue{}
					}}
				var v bson.RawValue
				v, err = e.Eval(env)
				if err == nil {
					if c.err != "" {
						t.Fatalf("want error %q, got %v", c.err, v)
					}
					checkValue(t, v, c.want)
					return
				}
			}
			if c.err == "" || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("error %q, want %q", err, c.err)
			}
		})
	}
}

func checkValue(t *testing.T, v bson.RawValue, want string) {
	t.Helper()
	if want == "MISSING" {
		if v.Type != 0 {
			t.Fatalf("got %s (%s), want missing", v, v.Type)
		}
		return
	}
	if v.Type == 0 {
		t.Fatalf("got missing, want %s", want)
	}
	exp := mustRaw(t, `{"r": `+want+`}`)
	got := newDoc()
	got.add("r", v)
	g := got.done().Value
	if string(g) != string(exp) {
		t.Fatalf("got %s, want %s", bson.Raw(g), exp)
	}
}
