package ejson

import (
	"bytes"
	"errors"
	"strings"
	"testing"

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
	{`{"c":{"$scope":{},"$code":"x"}}`, 6, "c", `$scope must follow "$code"`},
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
