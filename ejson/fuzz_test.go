package ejson

import (
	"bytes"
	"errors"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// seedDocs are valid payloads covering every type wrapper in its canonical, relaxed and legacy
// forms, the number rules and the string escapes; they seed FuzzAppendBSON and the agreement
// table test.
var seedDocs = []string{
	`{}`,
	`{"a":1,"b":-2147483648,"c":2147483648,"d":-9223372036854775808,"e":9223372036854775808,"f":-0,"g":0.0,"h":-0.0,"i":1e3,"j":1.5E-7,"k":123456789012345678901234567890}`,
	`{"n":null,"t":true,"f":false,"s":"","arr":[],"o":{},"nested":{"x":[{"y":[1,[2,[3]]]}]}}`,
	`{"s":"\"\\\/\b\f\n\r\t\u0041\u00e9\u20ac\ud83d\ude00","u":"héllo wörld ✓ 😀"}`,
	`{"lone":"\ud800","lone2":"\udc00x","pair_bad":"\ud800\u0041","two":"\ud800\ud800","esc":"\ud800\n"}`,
	`{"_id":{"$oid":"5f1d7a3b9c1e4b2a3c4d5e6f"},"ref":{"$oid":"5F1D7A3B9C1E4B2A3C4D5E6F"}}`,
	`{"d1":{"$date":"2024-01-31T12:00:00Z"},"d2":{"$date":"2024-01-31T12:00:00.123Z"},"d3":{"$date":"2024-01-31T12:00:00.1+01:30"},"d4":{"$date":"1969-12-31T23:59:59.999-0000"},"d5":{"$date":"2024-02-29T00:00:00.123456789Z"}}`,
	`{"d1":{"$date":{"$numberLong":"1706702400123"}},"d2":{"$date":{"$numberLong":"-62135596800000"}},"d3":{"$date":1706702400123},"d4":{"$date":-1}}`,
	`{"i":{"$numberInt":"-2147483648"},"l":{"$numberLong":"9223372036854775807"},"d":{"$numberDouble":"1.0"},"di":{"$numberDouble":"Infinity"},"dn":{"$numberDouble":"-Infinity"},"nan":{"$numberDouble":"NaN"},"dz":{"$numberDouble":"-0.0"}}`,
	`{"dec":{"$numberDecimal":"1.5E+3"},"dec2":{"$numberDecimal":"-0"},"dec3":{"$numberDecimal":"NaN"},"dec4":{"$numberDecimal":"-Infinity"},"dec5":{"$numberDecimal":"1234567890123456789012345678901234"}}`,
	`{"b0":{"$binary":{"base64":"AQIDBA==","subType":"00"}},"b2":{"$binary":{"subType":"02","base64":"AQID"}},"b4":{"$binary":{"base64":"yO2rw/c4TKO2jauSqRR4ow==","subType":"04"}},"b80":{"$binary":{"base64":"","subType":"80"}}}`,
	`{"legacy":{"$binary":"AQIDBA==","$type":"00"},"legacy2":{"$binary":"AQID","$type":"2"}}`,
	`{"u":{"$uuid":"c8edabc3-f738-4ca3-b68d-ab92a91478a3"},"U":{"$uuid":"C8EDABC3-F738-4CA3-B68D-AB92A91478A3"}}`,
	`{"r":{"$regularExpression":{"pattern":"^a.*b$","options":"xmi"}},"r2":{"$regularExpression":{"options":"","pattern":"\\d+"}}}`,
	`{"ts":{"$timestamp":{"t":1706702400,"i":1}},"ts2":{"$timestamp":{"i":4294967295,"t":4294967295}}}`,
	`{"min":{"$minKey":1},"max":{"$maxKey":1},"u":{"$undefined":true},"sym":{"$symbol":"abc"}}`,
	`{"c":{"$code":"function() { return 1; }"},"cs":{"$code":"f(x)","$scope":{"x":{"$numberInt":"1"},"y":[{"$oid":"5f1d7a3b9c1e4b2a3c4d5e6f"}]}}}`,
	`{"p":{"$dbPointer":{"$ref":"db.coll","$id":{"$oid":"5f1d7a3b9c1e4b2a3c4d5e6f"}}},"p2":{"$dbPointer":{"$id":{"$oid":"5f1d7a3b9c1e4b2a3c4d5e6f"},"$ref":"x"}}}`,
	`{"dbref":{"$ref":"coll","$id":{"$oid":"5f1d7a3b9c1e4b2a3c4d5e6f"},"$db":"db"},"q":{"$regex":"^a","$options":"i"},"t":{"$type":"string"},"x":{"$foo":1}}`,
	`{"$oid":"top-level keys are field names","$date":1}`,
	`{"a":[{},{}],"b":[{},1],"c":{"d":{}},"e":[[],[{}]],"f":{"$code":"x","$scope":{}},"g":1}`,
	`{"a":{"$code":"x","$scope":{"$code":"y","$scope":{"k":{"$code":"z","$scope":{}}}}},"z":[{"$minKey":1},{"$date":"2020-01-01T00:00:00Z"},{}]}`,
	"  {\"ws\" :\t[ 1 ,\n2 ] , \"k\"\r: { } }  ",
	`{"sensor":"s-17","ts":{"$date":"2024-05-01T10:00:00.250Z"},"reading":{"temp":21.5,"hum":0.43,"ok":true},"tags":["a","b"],"seq":{"$numberLong":"77"}}`,
}

// FuzzAppendBSON runs arbitrary bytes through AppendBSON and the driver's Extended JSON parser
// (bson.UnmarshalExtJSON with canonicalOnly=false, since the Kafka source takes relaxed and
// canonical alike). AppendBSON never panics, its errors are *Error with an offset inside the
// input, what it accepts is valid BSON, and on every input both accept the BSON bytes are
// identical; no normalization is needed.
//
// AppendBSON refuses some inputs the driver takes, on purpose: invalid UTF-8, raw control
// characters and bad \u escapes in strings (RFC 8259), data after the top-level object, a
// top-level array or scalar, wrapper keys that are not the first key of their object (the
// specification calls extra keys an error; the driver keeps such an object as a document),
// nested wrappers where a plain string is due ({"$date": {"$numberLong": {"$numberLong": "1"}}}
// and the like, which the driver unwraps), a $uuid whose value is an object, nesting beyond
// MaxDepth. None of these is compared.
func FuzzAppendBSON(f *testing.F) {
	for _, s := range seedDocs {
		f.Add([]byte(s))
	}
	for _, c := range errorCases {
		f.Add([]byte(c.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := AppendBSON([]byte("prefix"), data)
		if !bytes.HasPrefix(got, []byte("prefix")) {
			t.Fatalf("dst's bytes were not kept")
		}
		got = got[len("prefix"):]
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is %T, not *Error", err, err)
			}
			if e.Offset < 0 || e.Offset > len(data) || e.Msg == "" {
				t.Fatalf("error %+v: offset outside the input or no reason", e)
			}
			if len(got) != 0 {
				t.Fatalf("an error left %d bytes in dst", len(got))
			}
			return
		}
		if verr := bsoncore.Document(got).Validate(); verr != nil {
			t.Fatalf("AppendBSON produced invalid BSON: %v", verr)
		}
		raw, ok := driverParse(data)
		if !ok {
			return
		}
		if !bytes.Equal(got, raw) {
			t.Fatalf("AppendBSON and the driver disagree on %q\nours:   %v\ndriver: %v", data, bson.Raw(got), raw)
		}
	})
}

// driverParse is the driver's Extended JSON parser; ok=false when it refuses the input (or
// panics on it, which is the driver's problem, not ours).
func driverParse(data []byte) (raw bson.Raw, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	if err := bson.UnmarshalExtJSON(data, false, &raw); err != nil {
		return nil, false
	}
	return raw, true
}
