package ejson

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

var errorCases = []struct {
	in   string
	off  int
	path string
	msg  string // Error() must contain it
}{
	{``, 0, "", "empty input"},
	{`[1]`, 0, "", "the top-level value must be an object"},
	{`{"a":1} x`, 8, "", "unexpected data after the top-level object"},
	{`{"a":{"b":1 "c":2}}`, 12, "a.b", `invalid JSON at offset 12 (field "a.b"): expected ',' or '}'`},
	{`{"a":[1,2 3]}`, 10, "a.1", `expected ',' or ']'`},
	{`{"a":01}`, 6, "a", `expected ',' or '}'`},
	{`{"a":1.}`, 5, "a", "expected a digit after '.'"},
	{`{"a":1e400}`, 5, "a", "number out of the range of a double"},
	{`{"a":tru}`, 5, "a", "invalid literal"},
	{`{"a":"x` + "\x01" + `"}`, 7, "a", "raw control character"},
	{`{"a":"` + "\xff" + `"}`, 6, "a", "invalid UTF-8"},
	{`{"a":"\x"}`, 6, "a", "invalid escape sequence"},
	{`{"a":"\u12G4"}`, 6, "a", `invalid \u escape`},
	{`{"a\u0000b":1}`, 1, "", "field names cannot contain a NUL"},
	{`{"a":1,}`, 7, "", "expected a field name"},
	{`{"a" 1}`, 5, "a", "expected ':'"},
	{`{"a":"abc`, 9, "a", "unexpected end of input in a string"},
	{`{"ts":{"$date":true}}`, 15, "ts", `field "ts": $date must be a string, an integer or {"$numberLong": "<int64>"}`},
	{`{"ts":{"$date":1.5}}`, 15, "ts", `$date must be a string, an integer`},
	{`{"ts":{"$date":"2024-13-01T00:00:00Z"}}`, 15, "ts", `$date string must be an ISO-8601 date-time`},
	{`{"ts":{"$date":{"$numberLong":5}}}`, 30, "ts", `$date must be`},
	{`{"ts":{"$date":{"$numberLong":"5","x":1}}}`, 15, "ts", `$date must be`},
	{`{"a":{"b":{"$oid":"xyz"}}}`, 18, "a.b", `field "a.b": $oid must be a string of 24 hexadecimal digits`},
	{`{"a":[{"$oid":"5f1d7a3b9c1e4b2a3c4d5e6f","x":1}]}`, 40, "a.0", `$oid must be the only key of its object`},
	{`{"a":{"x":1,"$oid":"5f1d7a3b9c1e4b2a3c4d5e6f"}}`, 12, "a", `$oid must be the only key of its object`},
	{`{"n":{"$numberInt":"2147483648"}}`, 19, "n", `$numberInt must be a string holding a 32-bit integer`},
	{`{"n":{"$numberInt":5}}`, 19, "n", `$numberInt must be a string`},
	{`{"n":{"$numberLong":"1.5"}}`, 20, "n", `$numberLong must be a string holding a 64-bit integer`},
	{`{"n":{"$numberDouble":1.5}}`, 22, "n", `$numberDouble must be a string`},
	{`{"n":{"$numberDecimal":"abc"}}`, 23, "n", `$numberDecimal must be a string holding a decimal128`},
	{`{"b":{"$binary":{"base64":"AQ=","subType":"00"}}}`, 26, "b", `$binary base64 must be a string of padded standard base64`},
	{`{"b":{"$binary":{"base64":"AQ==","subType":"100"}}}`, 43, "b", `$binary subType must be a string of one or two hexadecimal digits`},
	{`{"b":{"$binary":{"base64":"AQ=="}}}`, 16, "b", `$binary must be {"base64"`},
	{`{"b":{"$binary":{"base64":"AQ==","subType":"00","x":1}}}`, 16, "b", `$binary must be`},
	{`{"b":{"$binary":"AQ==","$tipe":"00"}}`, 23, "b", `$binary must be`},
	{`{"u":{"$uuid":"c8edabc3f7384ca3b68dab92a91478a3"}}`, 14, "u", `$uuid must be a string of the form`},
	{`{"r":{"$regularExpression":{"pattern":"a"}}}`, 27, "r", `$regularExpression must be {"pattern"`},
	{`{"r":{"$regularExpression":{"pattern":"a\u0000","options":""}}}`, 27, "r", `cannot contain a NUL`},
	{`{"t":{"$timestamp":{"t":-1,"i":0}}}`, 19, "t", `$timestamp must be {"t": <uint32>, "i": <uint32>}`},
	{`{"t":{"$timestamp":{"t":4294967296,"i":0}}}`, 19, "t", `$timestamp must be`},
	{`{"m":{"$minKey":2}}`, 16, "m", `$minKey must be 1`},
	{`{"m":{"$maxKey":"1"}}`, 16, "m", `$maxKey must be 1`},
	{`{"u":{"$undefined":false}}`, 19, "u", `$undefined must be true`},
	{`{"s":{"$symbol":1}}`, 16, "s", `$symbol must be a string`},
	{`{"c":{"$code":1}}`, 14, "c", `$code must be a string`},
	{`{"c":{"$code":"x","$scope":1}}`, 27, "c", `$scope must be an object`},
	{`{"c":{"$code":"x","y":{}}}`, 18, "c", `$code may only be followed by "$scope"`},
	{`{"c":{"$scope":{"x":1}}}`, 22, "c", `$scope must come with "$code"`},
	{`{"c":{"$scope":{},"$cod":"x"}}`, 18, "c", `$scope must come with "$code"`},
	{`{"p":{"$dbPointer":{"$ref":"a","$id":"5f1d7a3b9c1e4b2a3c4d5e6f"}}}`, 37, "p", `$dbPointer must be`},
	{strings.Repeat(`{"a":`, MaxDepth+1) + `1` + strings.Repeat(`}`, MaxDepth+1), 5 * MaxDepth, strings.TrimSuffix(strings.Repeat("a.", MaxDepth), "."), "nesting exceeds the maximum depth of 100"},
}

func TestAppendBSONErrors(t *testing.T) {
	for _, c := range errorCases {
		out, err := AppendBSON([]byte("keep"), []byte(c.in))
		if string(out) != "keep" {
			t.Errorf("%s: dst became %q", c.in, out)
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("%s: error %v, want *Error", c.in, err)
			continue
		}
		if e.Offset != c.off || e.Path != c.path || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s:\n got offset %d path %q: %s\nwant offset %d path %q: ...%s...", c.in, e.Offset, e.Path, err, c.off, c.path, c.msg)
		}
	}
}

// TestAppendBSONAgreesWithDriver checks every seed against the driver, and that both accept it.
func TestAppendBSONAgreesWithDriver(t *testing.T) {
	for _, s := range seedDocs {
		got, err := AppendBSON(nil, []byte(s))
		if err != nil {
			t.Errorf("%s: %v", s, err)
			continue
		}
		raw, ok := driverParse([]byte(s))
		if !ok {
			t.Errorf("%s: the driver refuses it", s)
			continue
		}
		if !bytes.Equal(got, raw) {
			t.Errorf("%s:\nours:   %v\ndriver: %v", s, bson.Raw(got), raw)
		}
	}
}

func TestAppendBSONSizeLimit(t *testing.T) {
	big := `{"a":"` + strings.Repeat("x", MaxSize) + `"}`
	_, err := AppendBSON(nil, []byte(big))
	if err == nil || !strings.Contains(err.Error(), "exceeds the BSON size limit of 16 MiB") {
		t.Fatalf("got %v", err)
	}
	ok := `{"a":"` + strings.Repeat("x", MaxSize-100) + `"}`
	if _, err := AppendBSON(nil, []byte(ok)); err != nil {
		t.Fatalf("a document under the limit: %v", err)
	}
}

func TestStripConfluentHeader(t *testing.T) {
	p, id, ok := StripConfluentHeader([]byte("\x00\x00\x00\x01\x02{\"a\":1}"))
	if !ok || id == 0 || id != 0x102 || string(p) != `{"a":1}` {
		t.Fatalf("got %q %d %v", p, id, ok)
	}
	for _, in := range []string{`{"a":1}`, "\x00\x00", ""} {
		if p, _, ok := StripConfluentHeader([]byte(in)); ok || string(p) != in {
			t.Errorf("%q: got %q %v", in, p, ok)
		}
	}
}

// TestAppendBSONTypes checks the number rules and a few wrappers by the BSON types they give.
func TestAppendBSONTypes(t *testing.T) {
	doc, err := AppendBSON(nil, []byte(`{"i":1,"neg":-2147483648,"l":3000000000,"d":1.0,"e":2e3,"big":99999999999999999999,"z":-0,"oid":{"$oid":"5f1d7a3b9c1e4b2a3c4d5e6f"},"dt":{"$date":"1970-01-01T00:00:01.5Z"},"u":{"$uuid":"c8edabc3-f738-4ca3-b68d-ab92a91478a3"}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bson.Type{"i": bson.TypeInt32, "neg": bson.TypeInt32, "l": bson.TypeInt64, "d": bson.TypeDouble, "e": bson.TypeDouble, "big": bson.TypeDouble, "z": bson.TypeInt32, "oid": bson.TypeObjectID, "dt": bson.TypeDateTime, "u": bson.TypeBinary}
	for k, ty := range want {
		if v := bson.Raw(doc).Lookup(k); v.Type != ty {
			t.Errorf("%s: type %v, want %v", k, v.Type, ty)
		}
	}
	if ms := bson.Raw(doc).Lookup("dt").DateTime(); ms != 1500 {
		t.Errorf("dt = %d ms", ms)
	}
	if sub, data := bson.Raw(doc).Lookup("u").Binary(); sub != 4 || len(data) != 16 {
		t.Errorf("uuid: subtype %d, %d bytes", sub, len(data))
	}
}

// TestScopeBeforeCode: key order in a wrapper has no significance (Extended JSON spec,
// "Parsers"), so $scope may come before $code; the driver refuses that order, so the result is
// compared with the usual order's.
func TestScopeBeforeCode(t *testing.T) {
	a, err := AppendBSON(nil, []byte(`{"c":{"$scope":{"x":{"$numberLong":"1"},"y":[1]},"$code":"f(x)"}}`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := AppendBSON(nil, []byte(`{"c":{"$code":"f(x)","$scope":{"x":{"$numberLong":"1"},"y":[1]}}}`))
	if err != nil || !bytes.Equal(a, b) {
		t.Fatalf("%v %v %v", bson.Raw(a), bson.Raw(b), err)
	}
}

func TestAppendBSONMaxDepthAccepted(t *testing.T) {
	in := strings.Repeat(`{"a":[`, MaxDepth/2-1) + `{"b":1}` + strings.Repeat(`]}`, MaxDepth/2-1)
	in = `{"x":` + in + `}`
	if _, err := AppendBSON(nil, []byte(in)); err != nil {
		t.Fatalf("%d levels: %v", MaxDepth, err)
	}
}

// TestTranscoderAllocs holds the "allocates little" rule: with a reused buffer, AppendBSON and
// AppendJSON allocate nothing per ~1 KB payload.
func TestTranscoderAllocs(t *testing.T) {
	var buf []byte
	for _, set := range [][][]byte{benchSet.relaxed, benchSet.canonical} {
		i := 0
		if n := testing.AllocsPerRun(200, func() {
			buf, _ = AppendBSON(buf[:0], set[i%len(set)])
			i++
		}); n != 0 {
			t.Errorf("AppendBSON: %.1f allocations per document", n)
		}
	}
	for _, f := range []Format{RelaxedJSON, CanonicalJSON, BasicJSON} {
		i := 0
		if n := testing.AllocsPerRun(200, func() {
			buf, _ = AppendJSON(buf[:0], benchSet.docs[i%len(benchSet.docs)], Options{Format: f})
			i++
		}); n != 0 {
			t.Errorf("AppendJSON %s: %.1f allocations per document", f, n)
		}
	}
}

// TestFastISODateMatchesTimeParse holds the hand-written $date parser to time.Parse with the
// driver's layouts over dates near the edges of each field.
func TestFastISODateMatchesTimeParse(t *testing.T) {
	years := []string{"0000", "0001", "1900", "1969", "1970", "2000", "2024", "2100", "9999"}
	monthDays := []string{"01-01", "01-31", "02-28", "02-29", "02-30", "04-30", "04-31", "12-31", "13-01", "00-10", "06-00"}
	times := []string{"00:00:00", "23:59:59", "24:00:00", "12:60:00", "12:00:60", "07:08:09"}
	fracs := []string{"", ".1", ".12", ".123", ".999999999", ".1234567891", "."}
	zones := []string{"Z", "+00:00", "-00:00", "+05:30", "-23:59", "+24:00", "+25:00", "+01:61", "+0130", "-1200", "z", "+1:00"}
	n := 0
	for _, y := range years {
		for _, md := range monthDays {
			for _, tm := range times {
				for _, f := range fracs {
					for _, z := range zones {
						s := y + "-" + md + "T" + tm + f + z
						got, gotOK := parseISODate([]byte(s))
						var want int64
						wantOK := false
						for _, layout := range dateLayouts {
							if tt, err := time.Parse(layout, s); err == nil {
								want, wantOK = tt.Unix()*1e3+int64(tt.Nanosecond())/1e6, true
								break
							}
						}
						if got != want || gotOK != wantOK {
							t.Fatalf("%s: got %d %v, time.Parse %d %v", s, got, gotOK, want, wantOK)
						}
						if _, fast := fastISODate([]byte(s)); fast {
							n++
						}
					}
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("the fast path took no input")
	}
}

// TestNumbersMatchStrconv holds the transcoder's number fast paths (Clinger's for short
// decimals, nineteen-digit integers) to strconv over random literals of every length around
// their limits.
func TestNumbersMatchStrconv(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	digits := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('0' + r.IntN(10))
		}
		if n > 1 && b[0] == '0' {
			b[0] = '1'
		}
		return string(b)
	}
	for range 300_000 {
		lit := digits(1 + r.IntN(20))
		if r.IntN(3) > 0 {
			lit += "." + digits(1+r.IntN(24))
		}
		if r.IntN(2) == 0 {
			lit = "-" + lit
		}
		doc, err := AppendBSON(nil, []byte(`{"n": `+lit+`}`))
		if err != nil {
			t.Fatalf("%s: %v", lit, err)
		}
		v := bson.Raw(doc).Lookup("n")
		switch v.Type {
		case bson.TypeInt32, bson.TypeInt64:
			want, err := strconv.ParseInt(lit, 10, 64)
			if got := v.AsInt64(); err != nil || got != want {
				t.Fatalf("%s: got %d, strconv %d (%v)", lit, got, want, err)
			}
		case bson.TypeDouble:
			want, _ := strconv.ParseFloat(lit, 64)
			if got := v.Double(); math.Float64bits(got) != math.Float64bits(want) {
				t.Fatalf("%s: got %v, strconv %v", lit, got, want)
			}
		default:
			t.Fatalf("%s: type %v", lit, v.Type)
		}
	}
}
