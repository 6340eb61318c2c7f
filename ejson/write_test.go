package ejson

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// writeDocs are BSON documents built with the driver, covering every BSON type and the edges of
// the formats (string escapes, invalid UTF-8, dates outside 1970-9999, doubles' shortest form).
func writeDocs(t testing.TB) []bson.Raw {
	oid, _ := bson.ObjectIDFromHex("5f1d7a3b9c1e4b2a3c4d5e6f")
	dec, _ := bson.ParseDecimal128("-1.2345E+300")
	docs := []bson.D{
		{},
		{{Key: "a", Value: int32(1)}, {Key: "b", Value: int64(-1 << 40)}, {Key: "c", Value: 1.0}, {Key: "d", Value: 0.1}, {Key: "e", Value: 1e21}, {Key: "f", Value: 1e-7}, {Key: "g", Value: math.Copysign(0, -1)}, {Key: "h", Value: 123456.789}, {Key: "i", Value: math.MaxFloat64}, {Key: "j", Value: 5e-324}, {Key: "k", Value: 1e6}, {Key: "l", Value: 100.0}},
		{{Key: "inf", Value: math.Inf(1)}, {Key: "ninf", Value: math.Inf(-1)}, {Key: "nan", Value: math.NaN()}},
		{{Key: "s", Value: "plain"}, {Key: "esc", Value: "q\" b\\ \n\r\t\b\f \x01\x1f \x7f / <>& é € 😀 \u2028\u2029"}, {Key: "bad", Value: "a\xffb\xc3"}, {Key: "k\"\\\x01é", Value: ""}},
		{{Key: "t", Value: true}, {Key: "f", Value: false}, {Key: "n", Value: nil}, {Key: "u", Value: bson.Undefined{}}, {Key: "min", Value: bson.MinKey{}}, {Key: "max", Value: bson.MaxKey{}}},
		{{Key: "oid", Value: oid}, {Key: "dec", Value: dec}, {Key: "ts", Value: bson.Timestamp{T: 1706702400, I: 7}}, {Key: "ts0", Value: bson.Timestamp{T: math.MaxUint32, I: math.MaxUint32}}},
		{{Key: "d0", Value: bson.DateTime(0)}, {Key: "d1", Value: bson.DateTime(1706702400123)}, {Key: "d2", Value: bson.DateTime(1706702400100)}, {Key: "d3", Value: bson.DateTime(1706702400120)}, {Key: "d4", Value: bson.DateTime(-1)}, {Key: "d5", Value: bson.DateTime(253402300800000)}, {Key: "d6", Value: bson.DateTime(253402300799999)}, {Key: "d7", Value: bson.DateTime(math.MinInt64)}, {Key: "d8", Value: bson.DateTime(math.MaxInt64)}},
		{{Key: "b0", Value: bson.Binary{Subtype: 0, Data: []byte{1, 2, 3}}}, {Key: "b2", Value: bson.Binary{Subtype: 2, Data: []byte{1, 2, 3, 4, 5}}}, {Key: "b4", Value: bson.Binary{Subtype: 4, Data: bytes.Repeat([]byte{0xab}, 16)}}, {Key: "b4short", Value: bson.Binary{Subtype: 4, Data: []byte{1}}}, {Key: "b80", Value: bson.Binary{Subtype: 0x80}}, {Key: "b3", Value: bson.Binary{Subtype: 3, Data: bytes.Repeat([]byte{7}, 16)}}},
		{{Key: "r", Value: bson.Regex{Pattern: `^a"\.b$`, Options: "xsmi"}}, {Key: "r2", Value: bson.Regex{Pattern: "", Options: ""}}},
		{{Key: "js", Value: bson.JavaScript("function(){ return \"x\"; }")}, {Key: "sym", Value: bson.Symbol("sym\n")}, {Key: "cws", Value: bson.CodeWithScope{Code: "f(x)", Scope: bson.D{{Key: "x", Value: int32(1)}, {Key: "d", Value: bson.DateTime(5)}}}}},
		{{Key: "p", Value: bson.DBPointer{DB: "db.coll", Pointer: oid}}},
		{{Key: "p", Value: bson.DBPointer{DB: "d\"b", Pointer: oid}}},
		{{Key: "arr", Value: bson.A{int32(1), "two", bson.A{}, bson.D{}, bson.A{bson.D{{Key: "x", Value: bson.A{3.5}}}}}}, {Key: "nested", Value: bson.D{{Key: "a", Value: bson.D{{Key: "b", Value: bson.D{{Key: "c", Value: oid}}}}}}}},
	}
	var out []bson.Raw
	for _, d := range docs {
		b, err := bson.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	for _, s := range seedDocs {
		b, err := AppendBSON(nil, []byte(s))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// TestAppendJSONMatchesDriver holds relaxedJson and canonicalJson to the driver's
// MarshalExtJSON, byte for byte.
func TestAppendJSONMatchesDriver(t *testing.T) {
	for _, doc := range writeDocs(t) {
		checkAgainstDriver(t, doc)
	}
}

// checkAgainstDriver compares AppendJSON with MarshalExtJSON. The one intended difference: the
// driver writes a DBPointer's namespace without escaping it, AppendJSON escapes it like any
// string, so documents with a namespace that needs escaping are not compared.
func checkAgainstDriver(t *testing.T, doc bson.Raw) {
	t.Helper()
	if rawNamespace(bsoncore.Document(doc)) {
		return
	}
	for _, f := range []Format{RelaxedJSON, CanonicalJSON} {
		want, err := bson.MarshalExtJSON(doc, f == CanonicalJSON, false)
		if err != nil {
			return
		}
		got, err := AppendJSON([]byte("x"), doc, Options{Format: f})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if !bytes.Equal(got[1:], want) {
			t.Fatalf("%s of %v:\nours:   %s\ndriver: %s", f, doc, got[1:], want)
		}
	}
}

func TestAppendJSONBasic(t *testing.T) {
	oid, _ := bson.ObjectIDFromHex("5f1d7a3b9c1e4b2a3c4d5e6f")
	dec, _ := bson.ParseDecimal128("1.50")
	uuid := []byte{0xc8, 0xed, 0xab, 0xc3, 0xf7, 0x38, 0x4c, 0xa3, 0xb6, 0x8d, 0xab, 0x92, 0xa9, 0x14, 0x78, 0xa3}
	cases := []struct {
		doc  bson.D
		o    Options
		want string
	}{
		{bson.D{{Key: "b", Value: bson.Binary{Data: []byte{1, 2, 3, 4}}}}, Options{Format: BasicJSON}, `{"b":"AQIDBA=="}`},
		{bson.D{{Key: "u", Value: bson.Binary{Subtype: 4, Data: uuid}}}, Options{Format: BasicJSON}, `{"u":"c8edabc3-f738-4ca3-b68d-ab92a91478a3"}`},
		{bson.D{{Key: "d", Value: bson.DateTime(1706702400123)}}, Options{Format: BasicJSON}, `{"d":1706702400123}`},
		{bson.D{{Key: "n", Value: dec}}, Options{Format: BasicJSON}, `{"n":"1.50"}`},
		{bson.D{{Key: "t", Value: bson.Timestamp{T: 1706702400, I: 9}}}, Options{Format: BasicJSON}, `{"t":1706702400000}`},
		{bson.D{{Key: "_id", Value: oid}}, Options{Format: BasicJSON}, `{"_id":"5f1d7a3b9c1e4b2a3c4d5e6f"}`},
		{bson.D{{Key: "i", Value: math.Inf(1)}, {Key: "j", Value: math.Inf(-1)}, {Key: "n", Value: math.NaN()}, {Key: "x", Value: 2.5}, {Key: "y", Value: 3.0}}, Options{Format: BasicJSON}, `{"i":"Infinity","j":"-Infinity","n":"NaN","x":2.5,"y":3.0}`},
		{bson.D{{Key: "r", Value: bson.Regex{Pattern: "^a", Options: "mi"}}}, Options{Format: BasicJSON}, `{"r":{"pattern":"^a","options":"im"}}`},
		{bson.D{{Key: "i", Value: int32(5)}, {Key: "l", Value: int64(1 << 40)}, {Key: "s", Value: "x"}, {Key: "a", Value: bson.A{true, nil}}}, Options{Format: BasicJSON}, `{"i":5,"l":1099511627776,"s":"x","a":[true,null]}`},
		{bson.D{{Key: "sym", Value: bson.Symbol("s")}, {Key: "js", Value: bson.JavaScript("c")}, {Key: "u", Value: bson.Undefined{}}, {Key: "p", Value: bson.DBPointer{DB: "d.c", Pointer: oid}}}, Options{Format: BasicJSON}, `{"sym":"s","js":"c","u":null,"p":{"$ref":"d.c","$id":"5f1d7a3b9c1e4b2a3c4d5e6f"}}`},
		// dateFormat ISO8601, in every format.
		{bson.D{{Key: "d", Value: bson.DateTime(1706702400000)}}, Options{Format: BasicJSON, ISODates: true}, `{"d":"2024-01-31T12:00:00.000Z"}`},
		{bson.D{{Key: "d", Value: bson.DateTime(1706702400120)}}, Options{Format: RelaxedJSON, ISODates: true}, `{"d":"2024-01-31T12:00:00.120Z"}`},
		{bson.D{{Key: "d", Value: bson.DateTime(-1)}}, Options{Format: CanonicalJSON, ISODates: true}, `{"d":"1969-12-31T23:59:59.999Z"}`},
		{bson.D{{Key: "d", Value: bson.DateTime(253402300800000)}}, Options{ISODates: true}, `{"d":"+010000-01-01T00:00:00.000Z"}`},
		{bson.D{{Key: "d", Value: bson.DateTime(-62198755200000)}}, Options{ISODates: true}, `{"d":"-000001-01-01T00:00:00.000Z"}`},
	}
	for _, c := range cases {
		doc, err := bson.Marshal(c.doc)
		if err != nil {
			t.Fatal(err)
		}
		got, err := AppendJSON(nil, doc, c.o)
		if err != nil || string(got) != c.want {
			t.Errorf("%v %+v:\n got %s (%v)\nwant %s", c.doc, c.o, got, err, c.want)
		}
	}
}

// TestAppendJSONISODatesMatchTime checks the ISO8601 rendering against the time package over a
// spread of instants.
func TestAppendJSONISODatesMatchTime(t *testing.T) {
	for ms := int64(-5e12); ms < 5e13; ms += 7777777777 {
		doc, _ := bson.Marshal(bson.D{{Key: "d", Value: bson.DateTime(ms)}})
		got, err := AppendJSON(nil, doc, Options{ISODates: true})
		want := `{"d":"` + time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00") + `"}`
		if err != nil || string(got) != want {
			t.Fatalf("%d: got %s want %s", ms, got, want)
		}
	}
}

func TestParseFormat(t *testing.T) {
	for _, f := range []Format{RelaxedJSON, CanonicalJSON, BasicJSON} {
		g, err := ParseFormat(f.String())
		if err != nil || g != f {
			t.Errorf("%s: %v %v", f, g, err)
		}
	}
	if _, err := ParseFormat("json"); err == nil || !strings.Contains(err.Error(), `not "json"`) {
		t.Errorf("got %v", err)
	}
}

func TestAppendJSONMalformed(t *testing.T) {
	doc, _ := bson.Marshal(bson.D{{Key: "a", Value: "xyz"}, {Key: "b", Value: bson.D{{Key: "c", Value: int64(1)}}}})
	for i := 0; i < len(doc); i++ {
		bad := append([]byte(nil), doc[:i]...)
		if out, err := AppendJSON([]byte("k"), bad, Options{}); err == nil || string(out) != "k" {
			t.Errorf("truncated at %d: %s %v", i, out, err)
		}
	}
}

// FuzzAppendJSON writes every document AppendBSON accepts in each format: relaxed and
// canonical equal the driver's MarshalExtJSON, and the canonical text reads back to the same
// BSON (to the same text where a NaN payload other than the canonical one is involved, since
// every NaN is written "NaN").
func FuzzAppendJSON(f *testing.F) {
	for _, s := range seedDocs {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := AppendBSON(nil, data)
		if err != nil {
			return
		}
		checkAgainstDriver(t, doc)
		for _, fm := range []Format{RelaxedJSON, CanonicalJSON, BasicJSON} {
			if _, err := AppendJSON(nil, doc, Options{Format: fm}); err != nil {
				t.Fatalf("%s: %v", fm, err)
			}
		}
		out, _ := AppendJSON(nil, doc, Options{Format: CanonicalJSON})
		back, err := AppendBSON(nil, out)
		if err != nil {
			t.Fatalf("canonical text %s does not read back: %v", out, err)
		}
		if !bytes.Equal(back, doc) {
			again, _ := AppendJSON(nil, back, Options{Format: CanonicalJSON})
			if !bytes.Equal(again, out) {
				t.Fatalf("canonical round trip of %s changed the document:\n%v\n%v", out, bson.Raw(doc), bson.Raw(back))
			}
		}
	})
}

// rawNamespace reports a DBPointer whose namespace JSON must escape, at any depth.
func rawNamespace(doc bsoncore.Document) bool {
	elems, err := doc.Elements()
	if err != nil {
		return false
	}
	for _, e := range elems {
		v := e.Value()
		switch v.Type {
		case bsoncore.TypeEmbeddedDocument, bsoncore.TypeArray:
			if rawNamespace(bsoncore.Document(v.Data)) {
				return true
			}
		case bsoncore.TypeCodeWithScope:
			if _, scope, ok := v.CodeWithScopeOK(); ok && rawNamespace(scope) {
				return true
			}
		case bsoncore.TypeDBPointer:
			ns, _, _ := v.DBPointerOK()
			if string(appendString(nil, []byte(ns))) != `"`+ns+`"` {
				return true
			}
		}
	}
	return false
}

// TestDBPointerNamespaceEscaped: the one place AppendJSON departs from the driver on purpose.
func TestDBPointerNamespaceEscaped(t *testing.T) {
	oid, _ := bson.ObjectIDFromHex("5f1d7a3b9c1e4b2a3c4d5e6f")
	doc, _ := bson.Marshal(bson.D{{Key: "p", Value: bson.DBPointer{DB: `a"b`, Pointer: oid}}})
	got, err := AppendJSON(nil, doc, Options{})
	want := `{"p":{"$dbPointer":{"$ref":"a\"b","$id":{"$oid":"5f1d7a3b9c1e4b2a3c4d5e6f"}}}}`
	if err != nil || string(got) != want {
		t.Fatalf("got %s %v", got, err)
	}
	if back, err := AppendBSON(nil, got); err != nil || !bytes.Equal(back, doc) {
		t.Fatalf("does not read back: %v", err)
	}
}

// civil and appendISODate agree with the time package across the whole int64 range of
// milliseconds the writer formats, and around every era, century and leap-day boundary.
func TestCivil(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	check := func(ms int64) {
		t.Helper()
		tm := time.UnixMilli(ms).UTC()
		y, m, d := civil(floorDiv(ms, msPerDay))
		if y != tm.Year() || m != int(tm.Month()) || d != tm.Day() {
			t.Fatalf("civil(%d ms) = %d-%d-%d, time says %s", ms, y, m, d, tm)
		}
		if tm.Year() >= 0 && tm.Year() <= 9999 {
			want := tm.Format("2006-01-02T15:04:05.000Z")
			if got := string(appendISODate(nil, ms, true)); got != want {
				t.Fatalf("appendISODate(%d) = %s, want %s", ms, got, want)
			}
		}
	}
	for _, ms := range []int64{0, -1, 1, 86_399_999, 86_400_000, -86_400_000, -86_400_001, year10000, year10000 - 1,
		951_782_400_000, 951_868_800_000, 4_107_542_400_000, -62_135_596_800_000, -62_167_219_200_000, -62_167_219_200_001} {
		check(ms)
	}
	for range 200_000 {
		check(r.Int64N(2*year10000) - year10000)
	}
	for range 20_000 {
		check(r.Int64() / 1000) // years far outside 0..9999: civil only
	}
}

// refDouble is appendDouble without its fast path: strconv's shortest 'G' form, with ".0"
// added to integers.
func refDouble(f float64) string {
	s := strconv.FormatFloat(f, 'G', -1, 64)
	if !strings.ContainsAny(s, ".E") {
		s += ".0"
	}
	return s
}

// TestShortDouble holds appendShortDouble to strconv on short decimals of every magnitude
// around its range, on the edges of the range, and on random bit patterns.
func TestShortDouble(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	check := func(f float64) {
		t.Helper()
		got, ok := appendShortDouble([]byte("x"), f)
		if !ok {
			if string(got) != "x" {
				t.Fatalf("%v: declined but wrote %q", f, got)
			}
			return
		}
		if want := refDouble(f); string(got[1:]) != want {
			t.Fatalf("%v (%#x): got %s, strconv %s", f, math.Float64bits(f), got[1:], want)
		}
	}
	edges := []float64{1e-4, 1e6, 0.1, 0.2, 0.3, 1.0 / 3, 2.0 / 3, 25.3, 0.29, 123456.789, 999999.9999999999, 1e-3, 5e-4, 100, 1, 0, 0.5, 4503599627370496.0 / 1e10}
	for _, e := range edges {
		for _, f := range []float64{e, -e, math.Nextafter(e, 0), math.Nextafter(e, 2e6), -math.Nextafter(e, 0)} {
			check(f)
		}
	}
	hits := 0
	for range 500_000 {
		k := r.IntN(16)
		u := r.Uint64N(uint64(math.Pow10(1 + r.IntN(15))))
		f := float64(u) / math.Pow10(k)
		if r.IntN(2) == 0 {
			f = -f
		}
		if _, ok := appendShortDouble(nil, f); ok {
			hits++
		}
		check(f)
		check(math.Float64frombits(r.Uint64()))
		check(math.Nextafter(f, math.Inf(1)))
	}
	// The fast path must take the common case, or it is only cost.
	if hits < 125_000 {
		t.Fatalf("the fast path took only %d of 500,000 short decimals", hits)
	}
}

// TestKeyEnd holds keyEnd to a byte-at-a-time reading of keys of every length up to 40, with a
// byte that needs escaping at every position, and without the ending NUL.
func TestKeyEnd(t *testing.T) {
	for n := 0; n <= 40; n++ {
		for pos := -1; pos < n; pos++ {
			for _, c := range []byte{'"', '\\', 0x01, 0x1f, 0x80, 0xff, 'a'} {
				key := bytes.Repeat([]byte{'k'}, n)
				if pos >= 0 {
					key[pos] = c
				}
				body := append(append([]byte{0x10}, key...), 0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
				k, esc := keyEnd(body)
				wantEsc := false
				for _, b := range key {
					wantEsc = wantEsc || !plain[b]
				}
				if k != 1+n || esc != wantEsc {
					t.Fatalf("key %q: got end %d escape %v, want %d %v", key, k, esc, 1+n, wantEsc)
				}
				if k, _ := keyEnd(append([]byte{0x10}, key...)); k != -1 {
					t.Fatalf("key %q without its NUL: got end %d", key, k)
				}
			}
		}
	}
}

// TestRelaxedDatesMatchDriver holds relaxed dates (the fixed-buffer path) to the driver over
// years 1970 to 9999, with every number of fraction digits.
func TestRelaxedDatesMatchDriver(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for range 20_000 {
		ms := r.Int64N(year10000)
		for _, m := range []int64{ms, ms - ms%10, ms - ms%100, ms - ms%1000} {
			doc, _ := bson.Marshal(bson.D{{Key: "d", Value: bson.DateTime(m)}})
			checkAgainstDriver(t, doc)
		}
	}
}

// TestShortKeys: keys of every length up to 12, first, last and alone in their document
// (where fewer than 8 bytes follow them), are written as the driver writes them.
func TestShortKeys(t *testing.T) {
	for n := 0; n <= 12; n++ {
		k := strings.Repeat("k", n)
		for _, d := range []bson.D{
			{{Key: k, Value: int32(1)}},
			{{Key: k, Value: true}},
			{{Key: "a", Value: 1.5}, {Key: k, Value: "x"}},
			{{Key: k, Value: bson.D{{Key: k, Value: false}}}, {Key: "z", Value: nil}},
		} {
			doc, err := bson.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			checkAgainstDriver(t, doc)
		}
	}
}

// TestISODatesDayCache: consecutive instants across day boundaries, before and after 1970 and
// going back and forth, render as the time package renders them (dayCache keeps the last day).
func TestISODatesDayCache(t *testing.T) {
	for _, start := range []int64{-3 * msPerDay, 0, 1_767_225_600_000 - 2*msPerDay, year10000 - 5*msPerDay} {
		for ms := start; ms < start+4*msPerDay; ms += 3_599_999 {
			for _, m := range []int64{ms, start, ms} {
				doc, _ := bson.Marshal(bson.D{{Key: "d", Value: bson.DateTime(m)}})
				got, err := AppendJSON(nil, doc, Options{ISODates: true})
				want := `{"d":"` + time.UnixMilli(m).UTC().Format("2006-01-02T15:04:05.000Z07:00") + `"}`
				if err != nil || string(got) != want {
					t.Fatalf("%d: got %s want %s", m, got, want)
				}
			}
		}
	}
}
