package ejson

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"sync/atomic"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Format is an `$emit` output format (Atlas Stream Processing `$emit`, `config.outputFormat`).
type Format int

const (
	// RelaxedJSON is Relaxed Extended JSON v2 ("relaxedJson", the default), byte for byte what
	// bson.MarshalExtJSON(doc, false, false) writes.
	RelaxedJSON Format = iota
	// CanonicalJSON is Canonical Extended JSON v2 ("canonicalJson"), byte for byte what
	// bson.MarshalExtJSON(doc, true, false) writes.
	CanonicalJSON
	// BasicJSON is plain JSON without type wrappers ("basicJson"): Binary as a base64 string,
	// a UUID (binary subtype 4 of 16 bytes) as its 8-4-4-4-12 hex string, Date as epoch
	// milliseconds, Decimal128 as a string, Timestamp as t*1000 milliseconds, ObjectId as its
	// hex string, ±Infinity and NaN as the strings "Infinity", "-Infinity" and "NaN", Regex as
	// {"pattern": ..., "options": ...}. The specification names no rendering for the
	// deprecated types, so: Symbol and JavaScript as their string, code with scope as
	// {"$code": ..., "$scope": {...}}, DBPointer as {"$ref": ns, "$id": hex}, Undefined as
	// null, MinKey and MaxKey as {"$minKey": 1} and {"$maxKey": 1}.
	BasicJSON
)

// String returns the format's name in `config.outputFormat`.
func (f Format) String() string {
	switch f {
	case RelaxedJSON:
		return "relaxedJson"
	case CanonicalJSON:
		return "canonicalJson"
	case BasicJSON:
		return "basicJson"
	}
	return "Format(" + strconv.Itoa(int(f)) + ")"
}

// ParseFormat maps a `config.outputFormat` value ("relaxedJson", "canonicalJson",
// "basicJson"; case-sensitive, as Atlas has them) to its Format.
func ParseFormat(s string) (Format, error) {
	switch s {
	case "relaxedJson":
		return RelaxedJSON, nil
	case "canonicalJson":
		return CanonicalJSON, nil
	case "basicJson":
		return BasicJSON, nil
	}
	return 0, errors.New(`outputFormat must be "relaxedJson", "canonicalJson" or "basicJson", not ` + strconv.Quote(s))
}

// Options says how AppendJSON writes.
type Options struct {
	// Format is the output format.
	Format Format
	// ISODates renders every Date as a plain string YYYY-MM-DDTHH:mm:ss.sssZ (UTC, always three
	// fraction digits; `$emit` `config.dateFormat: "ISO8601"`), whatever the Format. Years
	// outside 0000-9999 are written with a sign and six digits, as ECMAScript does.
	ISODates bool
}

// maxWriteDepth bounds AppendJSON's recursion on documents that did not come through a depth
// check.
const maxWriteDepth = 1000

var errMalformed = errors.New("ejson: malformed BSON document")

// AppendJSON appends the JSON text of the BSON document doc in the format o gives. doc is
// assumed valid (checked at the edge, as every document in the engine is); a malformed one
// yields an error rather than a panic, with dst's bytes as they were.
//
// For RelaxedJSON and CanonicalJSON without ISODates the text equals
// bson.MarshalExtJSON(doc, canonical, false), with one exception: a DBPointer's namespace is
// escaped like every other string (the driver writes it raw, which can make invalid JSON).
func AppendJSON(dst []byte, doc bson.Raw, o Options) ([]byte, error) {
	// JSON is mostly a little longer than its BSON: room for that up front, so that
	// appends rarely grow dst.
	w := writer{dst: slices.Grow(dst, len(doc)+len(doc)/4+64), o: o}
	base := len(dst)
	n, err := w.document(doc, false, 0)
	if err != nil || n != len(doc) {
		return dst[:base], errMalformed
	}
	return w.dst, nil
}

type writer struct {
	dst []byte
	o   Options
}

func (w *writer) relaxedOrBasic() bool { return w.o.Format != CanonicalJSON }

// document writes the document or array at the start of b and returns its length.
func (w *writer) document(b []byte, array bool, depth int) (int, error) {
	if depth > maxWriteDepth || len(b) < 5 {
		return 0, errMalformed
	}
	n := int(int32(binary.LittleEndian.Uint32(b)))
	if n < 5 || n > len(b) || b[n-1] != 0 {
		return 0, errMalformed
	}
	body := b[4 : n-1]
	if array {
		w.dst = append(w.dst, '[')
	} else {
		w.dst = append(w.dst, '{')
	}
	first := true
	for len(body) > 0 {
		t := body[0]
		k, esc := keyEnd(body)
		if k < 0 {
			return 0, errMalformed
		}
		if !first {
			w.dst = append(w.dst, ',')
		}
		first = false
		if !array {
			switch n := len(w.dst); {
			case esc:
				w.dst = append(appendString(w.dst, body[1:k]), ':')
			case k <= 9 && len(body) >= 9 && cap(w.dst)-n >= 12:
				// A key of up to 8 bytes: the 8 bytes from its start in one store (the
				// bytes after the key are overwritten by what follows), then '":'.
				d := w.dst[n : n+12]
				d[0] = '"'
				binary.LittleEndian.PutUint64(d[1:], binary.LittleEndian.Uint64(body[1:]))
				d[k], d[k+1] = '"', ':'
				w.dst = w.dst[:n+k+2]
			default:
				w.dst = append(append(append(w.dst, '"'), body[1:k]...), '"', ':')
			}
		}
		body = body[k+1:]
		m, err := w.value(t, body, depth)
		if err != nil {
			return 0, err
		}
		body = body[m:]
	}
	if array {
		w.dst = append(w.dst, ']')
	} else {
		w.dst = append(w.dst, '}')
	}
	return n, nil
}

// keyEnd finds the NUL that ends the key of the element at the start of body (after its type
// byte) and reports whether the key needs escaping in JSON (skipPlain's bytes), in one pass a
// word at a time; -1 when there is no NUL.
func keyEnd(body []byte) (int, bool) {
	k := 1
	for ; k+8 <= len(body); k += 8 {
		w := binary.LittleEndian.Uint64(body[k:])
		// Bytes equal to 0 (the classic "has zero byte" test; only the lowest flagged lane
		// is exact, and it is the one used).
		if z := (w - lanes01) &^ w & lanes80; z != 0 {
			n := bits.TrailingZeros64(z) / 8
			// The lanes before the NUL: all but the low n bytes masked off.
			mask := uint64(1)<<(8*n) - 1
			return k + n, special(w)&mask != 0
		}
		if special(w) != 0 {
			return keySlow(body, k)
		}
	}
	return keySlow(body, k)
}

// keySlow is keyEnd a byte at a time from k, for keys that need escaping and the last bytes.
func keySlow(body []byte, k int) (int, bool) {
	esc := false
	for ; k < len(body); k++ {
		c := body[k]
		if c == 0 {
			return k, esc
		}
		esc = esc || !plain[c]
	}
	return -1, esc
}

// bstring reads a BSON string (int32 length with the NUL, bytes, NUL) at the start of b.
func bstring(b []byte) ([]byte, int, error) {
	if len(b) < 5 {
		return nil, 0, errMalformed
	}
	n := int(int32(binary.LittleEndian.Uint32(b)))
	if n < 1 || n > len(b)-4 || b[4+n-1] != 0 {
		return nil, 0, errMalformed
	}
	return b[4 : 4+n-1], 4 + n, nil
}

func need(b []byte, n int) error {
	if len(b) < n {
		return errMalformed
	}
	return nil
}

// value writes the value of type t at the start of b and returns its length.
func (w *writer) value(t byte, b []byte, depth int) (int, error) {
	basic := w.o.Format == BasicJSON
	switch t {
	case tDouble:
		if err := need(b, 8); err != nil {
			return 0, err
		}
		w.double(math.Float64frombits(binary.LittleEndian.Uint64(b)))
		return 8, nil
	case tString, tJavaScript, tSymbol:
		s, n, err := bstring(b)
		if err != nil {
			return 0, err
		}
		switch {
		case t == tString || basic:
			w.dst = appendString(w.dst, s)
		case t == tJavaScript:
			w.dst = append(w.dst, `{"$code":`...)
			w.dst = append(appendString(w.dst, s), '}')
		default:
			w.dst = append(w.dst, `{"$symbol":`...)
			w.dst = append(appendString(w.dst, s), '}')
		}
		return n, nil
	case tDocument, tArray:
		return w.document(b, t == tArray, depth+1)
	case tBinary:
		return w.binary(b)
	case tUndefined:
		if basic {
			w.dst = append(w.dst, "null"...)
		} else {
			w.dst = append(w.dst, `{"$undefined":true}`...)
		}
		return 0, nil
	case tObjectID:
		if err := need(b, 12); err != nil {
			return 0, err
		}
		if basic {
			w.dst = append(appendHex(append(w.dst, '"'), b[:12]), '"')
		} else {
			w.dst = append(appendHex(append(w.dst, `{"$oid":"`...), b[:12]), `"}`...)
		}
		return 12, nil
	case tBoolean:
		if err := need(b, 1); err != nil {
			return 0, err
		}
		if b[0] != 0 {
			w.dst = append(w.dst, "true"...)
		} else {
			w.dst = append(w.dst, "false"...)
		}
		return 1, nil
	case tDateTime:
		if err := need(b, 8); err != nil {
			return 0, err
		}
		w.date(int64(binary.LittleEndian.Uint64(b)))
		return 8, nil
	case tNull:
		w.dst = append(w.dst, "null"...)
		return 0, nil
	case tRegex:
		p := indexByte(b, 0)
		if p < 0 {
			return 0, errMalformed
		}
		q := indexByte(b[p+1:], 0)
		if q < 0 {
			return 0, errMalformed
		}
		pattern, options := b[:p], b[p+1:p+1+q]
		if basic {
			w.dst = append(w.dst, `{"pattern":`...)
		} else {
			w.dst = append(w.dst, `{"$regularExpression":{"pattern":`...)
		}
		w.dst = appendString(w.dst, pattern)
		w.dst = append(w.dst, `,"options":`...)
		w.dst = appendSortedOptions(w.dst, options)
		if basic {
			w.dst = append(w.dst, '}')
		} else {
			w.dst = append(w.dst, "}}"...)
		}
		return p + 1 + q + 1, nil
	case tDBPointer:
		ns, n, err := bstring(b)
		if err != nil {
			return 0, err
		}
		if err := need(b, n+12); err != nil {
			return 0, err
		}
		if basic {
			w.dst = append(w.dst, `{"$ref":`...)
			w.dst = appendString(w.dst, ns)
			w.dst = append(appendHex(append(w.dst, `,"$id":"`...), b[n:n+12]), `"}`...)
		} else {
			w.dst = append(w.dst, `{"$dbPointer":{"$ref":`...)
			w.dst = appendString(w.dst, ns)
			w.dst = append(appendHex(append(w.dst, `,"$id":{"$oid":"`...), b[n:n+12]), `"}}}`...)
		}
		return n + 12, nil
	case tCodeScope:
		if err := need(b, 4); err != nil {
			return 0, err
		}
		total := int(int32(binary.LittleEndian.Uint32(b)))
		if total < 14 || total > len(b) {
			return 0, errMalformed
		}
		code, n, err := bstring(b[4:total])
		if err != nil {
			return 0, err
		}
		w.dst = append(w.dst, `{"$code":`...)
		w.dst = appendString(w.dst, code)
		w.dst = append(w.dst, `,"$scope":`...)
		m, err := w.document(b[4+n:total], false, depth+1)
		if err != nil {
			return 0, err
		}
		if 4+n+m != total {
			return 0, errMalformed
		}
		w.dst = append(w.dst, '}')
		return total, nil
	case tInt32:
		if err := need(b, 4); err != nil {
			return 0, err
		}
		v := int64(int32(binary.LittleEndian.Uint32(b)))
		if w.relaxedOrBasic() {
			w.dst = strconv.AppendInt(w.dst, v, 10)
		} else {
			w.dst = append(strconv.AppendInt(append(w.dst, `{"$numberInt":"`...), v, 10), `"}`...)
		}
		return 4, nil
	case tTimestamp:
		if err := need(b, 8); err != nil {
			return 0, err
		}
		inc, sec := binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:])
		if basic {
			w.dst = strconv.AppendUint(w.dst, uint64(sec)*1000, 10)
		} else {
			w.dst = append(w.dst, `{"$timestamp":{"t":`...)
			w.dst = strconv.AppendUint(w.dst, uint64(sec), 10)
			w.dst = append(w.dst, `,"i":`...)
			w.dst = strconv.AppendUint(w.dst, uint64(inc), 10)
			w.dst = append(w.dst, "}}"...)
		}
		return 8, nil
	case tInt64:
		if err := need(b, 8); err != nil {
			return 0, err
		}
		v := int64(binary.LittleEndian.Uint64(b))
		if w.relaxedOrBasic() {
			w.dst = strconv.AppendInt(w.dst, v, 10)
		} else {
			w.dst = append(strconv.AppendInt(append(w.dst, `{"$numberLong":"`...), v, 10), `"}`...)
		}
		return 8, nil
	case tDecimal:
		if err := need(b, 16); err != nil {
			return 0, err
		}
		d := bson.NewDecimal128(binary.LittleEndian.Uint64(b[8:]), binary.LittleEndian.Uint64(b))
		if basic {
			w.dst = append(append(append(w.dst, '"'), d.String()...), '"')
		} else {
			w.dst = append(append(append(w.dst, `{"$numberDecimal":"`...), d.String()...), `"}`...)
		}
		return 16, nil
	case tMinKey:
		w.dst = append(w.dst, `{"$minKey":1}`...)
		return 0, nil
	case tMaxKey:
		w.dst = append(w.dst, `{"$maxKey":1}`...)
		return 0, nil
	}
	return 0, errMalformed
}

// double writes f: the shortest 'G' form with ".0" added to integers, as the driver does;
// canonical always in {"$numberDouble": "..."}, relaxed only for ±Infinity and NaN, basic as
// a string for those.
func (w *writer) double(f float64) {
	var special string
	switch {
	case math.IsInf(f, 1):
		special = "Infinity"
	case math.IsInf(f, -1):
		special = "-Infinity"
	case math.IsNaN(f):
		special = "NaN"
	}
	switch {
	case special != "" && w.o.Format == BasicJSON:
		w.dst = append(append(append(w.dst, '"'), special...), '"')
	case special != "":
		w.dst = append(append(append(w.dst, `{"$numberDouble":"`...), special...), `"}`...)
	case w.o.Format == CanonicalJSON:
		w.dst = append(appendDouble(append(w.dst, `{"$numberDouble":"`...), f), `"}`...)
	default:
		w.dst = appendDouble(w.dst, f)
	}
}

func appendDouble(dst []byte, f float64) []byte {
	if out, ok := appendShortDouble(dst, f); ok {
		return out
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, 'G', -1, 64)
	for _, c := range dst[start:] {
		if c == '.' || c == 'E' {
			return dst
		}
	}
	return append(dst, ".0"...)
}

// pow10 holds the powers of ten that float64 represents exactly (10^22 is the last).
var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
	1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// appendShortDouble writes what strconv's shortest 'G' form (plus ".0" for integers) writes
// for the common doubles of payloads, decimals of few digits between 1e-4 and 1e6 (where 'G'
// uses no exponent), without strconv's general algorithm; ok is false for every other f.
//
// For k = 0, 1, … it looks for an integer u = f·10^k with u / 10^k == f exactly (both
// operands are exact, so the division is correctly rounded, and the decimal u·10^-k parses to
// f). With u < 2^51, the gap between f and its neighbours is below 10^-k, so no other
// decimal of k or fewer fractional digits rounds to f: it is f's shortest form, the one
// strconv writes (TestShortDouble checks 1.5 million values against it).
func appendShortDouble(dst []byte, f float64) ([]byte, bool) {
	a := math.Abs(f)
	if !(a >= 1e-4 && a < 1e6) {
		return dst, false
	}
	for k := 0; k < len(pow10); k++ {
		m := a * pow10[k]
		if m >= 1<<51 {
			return dst, false
		}
		if math.Trunc(m) != m {
			continue
		}
		if m/pow10[k] != a {
			return dst, false
		}
		u := uint64(m)
		for k > 0 && u%10 == 0 {
			u /= 10
			k--
		}
		if f < 0 {
			dst = append(dst, '-')
		}
		var b [24]byte
		i := len(b)
		for n := 0; u > 0 || n <= k; n++ {
			if n == k && k > 0 {
				i--
				b[i] = '.'
			}
			i--
			b[i] = byte('0' + u%10)
			u /= 10
		}
		dst = append(dst, b[i:]...)
		if k == 0 {
			dst = append(dst, ".0"...)
		}
		return dst, true
	}
	return dst, false
}

// date writes a Date (ms since the epoch): an ISO string with ISODates; else basic as the
// number; canonical as {"$date": {"$numberLong": "..."}}; relaxed as {"$date": "<RFC 3339>"}
// for years 1970-9999 (fraction without trailing zeros, as the driver formats it) and the
// canonical form otherwise.
func (w *writer) date(ms int64) {
	switch {
	case w.o.ISODates:
		w.dst = appendISODate(append(w.dst, '"'), ms, true)
		w.dst = append(w.dst, '"')
	case w.o.Format == BasicJSON:
		w.dst = strconv.AppendInt(w.dst, ms, 10)
	default:
		if w.o.Format == RelaxedJSON {
			if ms >= 0 && ms < year10000 { // years 1970 to 9999
				w.dst = append(appendISODate(append(w.dst, `{"$date":"`...), ms, false), `"}`...)
				return
			}
		}
		w.dst = append(strconv.AppendInt(append(w.dst, `{"$date":{"$numberLong":"`...), ms, 10), `"}}`...)
	}
}

// appendISODate writes YYYY-MM-DDTHH:mm:ss then, with fixed, .sss, else the milliseconds
// without trailing zeros (none when zero), then Z.
func appendISODate(dst []byte, ms int64, fixed bool) []byte {
	days := floorDiv(ms, msPerDay)
	tod := int(ms - days*msPerDay)
	y, mo, d := lastDay.civil(days)
	h, mi, s, frac := tod/3_600_000, tod/60_000%60, tod/1000%60, tod%1000
	if y >= 0 && y <= 9999 {
		// The common case in one fixed buffer: YYYY-MM-DDTHH:mm:ss.sssZ.
		b := [24]byte{4: '-', 7: '-', 10: 'T', 13: ':', 16: ':', 19: '.'}
		put2(b[0:], y/100)
		put2(b[2:], y%100)
		put2(b[5:], mo)
		put2(b[8:], d)
		put2(b[11:], h)
		put2(b[14:], mi)
		put2(b[17:], s)
		b[20], b[21], b[22] = byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10)
		n := 23
		switch {
		case fixed:
		case frac == 0:
			n = 19
		case frac%100 == 0:
			n = 21
		case frac%10 == 0:
			n = 22
		}
		b[n] = 'Z'
		return append(dst, b[:n+1]...)
	}
	// Years outside 0-9999: a sign and six digits (ISO 8601's expanded years).
	if y < 0 {
		dst = append(dst, '-')
		y = -y
	} else {
		dst = append(dst, '+')
	}
	dst = appendPad(dst, y, 6)
	dst = append(dst, '-')
	dst = appendPad(dst, mo, 2)
	dst = append(dst, '-')
	dst = appendPad(dst, d, 2)
	dst = append(dst, 'T')
	dst = appendPad(dst, h, 2)
	dst = append(dst, ':')
	dst = appendPad(dst, mi, 2)
	dst = append(dst, ':')
	dst = appendPad(dst, s, 2)
	switch {
	case fixed:
		dst = appendPad(append(dst, '.'), frac, 3)
	case frac != 0:
		dst = append(dst, '.', byte('0'+frac/100))
		if frac%100 != 0 {
			dst = append(dst, byte('0'+frac/10%10))
			if frac%10 != 0 {
				dst = append(dst, byte('0'+frac%10))
			}
		}
	}
	return append(dst, 'Z')
}

const (
	msPerDay = 86_400_000
	// year10000 is 10000-01-01T00:00:00Z in milliseconds since the Unix epoch.
	year10000 = 253_402_300_800_000
)

// civil is the proleptic Gregorian date of a day counted from 1970-01-01 (day 0), by Howard
// Hinnant's days-to-civil algorithm ("chrono-Compatible Low-Level Date Algorithms"): eras of
// 400 years (146,097 days) counted from 0000-03-01, so that the leap day ends a year. It
// agrees with the time package for every int64 millisecond (TestCivil) without its
// per-call time zone work.
func civil(days int64) (year, month, day int) {
	z := days + 719_468 // days from 0000-03-01
	era := floorDiv(z, 146_097)
	doe := z - era*146_097                                   // [0, 146096]
	yoe := (doe - doe/1460 + doe/36_524 - doe/146_096) / 365 // [0, 399]
	doy := doe - (365*yoe + yoe/4 - yoe/100)                 // [0, 365]
	mp := (5*doy + 2) / 153                                  // [0, 11], March first
	day = int(doy - (153*mp+2)/5 + 1)
	month = int(mp + 3)
	if month > 12 {
		month -= 12
	}
	year = int(yoe + era*400)
	if month <= 2 {
		year++
	}
	return year, month, day
}

// dayCache keeps the last day civil computed: the dates of a stream's documents mostly fall
// on the same day. It packs the day (32 bits), year (16), month and day of the month (8 each)
// into one word, read and written atomically, so that any goroutine may use it.
type dayCache struct{ v atomic.Uint64 }

var lastDay dayCache

// civil is the package's civil through the cache, for days whose year fits 16 bits.
func (c *dayCache) civil(days int64) (year, month, day int) {
	if v := c.v.Load(); v != 0 && int64(int32(v>>32)) == days {
		return int(v >> 16 & 0xffff), int(v >> 8 & 0xff), int(v & 0xff)
	}
	year, month, day = civil(days)
	if days == int64(int32(days)) && year >= 0 && year <= 0xffff {
		c.v.Store(uint64(uint32(days))<<32 | uint64(year)<<16 | uint64(month)<<8 | uint64(day))
	}
	return year, month, day
}

// floorDiv is a / b rounded toward negative infinity (b > 0).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// put2 writes v (0 to 99) as two digits at the start of b.
func put2(b []byte, v int) {
	b[0], b[1] = byte('0'+v/10), byte('0'+v%10)
}

func appendPad(dst []byte, v, width int) []byte {
	var buf [20]byte
	i := len(buf)
	for v > 0 || i > len(buf)-width {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
	}
	return append(dst, buf[i:]...)
}

// binary writes a Binary value; subtype 2 drops its old inner length as the driver's reader
// does when the value is longer than 4 bytes.
func (w *writer) binary(b []byte) (int, error) {
	if err := need(b, 5); err != nil {
		return 0, err
	}
	n := int(int32(binary.LittleEndian.Uint32(b)))
	if n < 0 || n > len(b)-5 {
		return 0, errMalformed
	}
	sub := b[4]
	data := b[5 : 5+n]
	if sub == 2 && n > 4 {
		m := int(int32(binary.LittleEndian.Uint32(data)))
		if m < 0 || m > n-4 {
			return 0, errMalformed
		}
		data = data[4 : 4+m]
	}
	if w.o.Format == BasicJSON {
		if sub == 4 && len(data) == 16 {
			w.dst = append(w.dst, '"')
			w.dst = appendHex(w.dst, data[0:4])
			w.dst = appendHex(append(w.dst, '-'), data[4:6])
			w.dst = appendHex(append(w.dst, '-'), data[6:8])
			w.dst = appendHex(append(w.dst, '-'), data[8:10])
			w.dst = appendHex(append(w.dst, '-'), data[10:16])
			w.dst = append(w.dst, '"')
		} else {
			w.dst = append(base64.StdEncoding.AppendEncode(append(w.dst, '"'), data), '"')
		}
		return 5 + n, nil
	}
	w.dst = append(w.dst, `{"$binary":{"base64":"`...)
	w.dst = base64.StdEncoding.AppendEncode(w.dst, data)
	w.dst = append(w.dst, `","subType":"`...)
	w.dst = append(w.dst, hexDigits[sub>>4], hexDigits[sub&15])
	w.dst = append(w.dst, `"}}`...)
	return 5 + n, nil
}

const hexDigits = "0123456789abcdef"

func appendHex(dst, b []byte) []byte {
	for _, c := range b {
		dst = append(dst, hexDigits[c>>4], hexDigits[c&15])
	}
	return dst
}

// appendSortedOptions writes regex options sorted by code point, as the driver does.
func appendSortedOptions(dst, opts []byte) []byte {
	var buf [16]byte
	ascii := len(opts) <= len(buf)
	for _, c := range opts {
		if c >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		s := buf[:copy(buf[:], opts)]
		slices.Sort(s)
		return appendString(dst, s)
	}
	rs := []rune(string(opts))
	slices.Sort(rs)
	return appendString(dst, []byte(string(rs)))
}

// safe marks the bytes written unescaped in a string: printable ASCII and DEL but '"' and
// '\\' (the driver's table, without HTML escaping).
var safe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendString writes s as a JSON string the way the driver does: \" \\ \n \r \t \b \f, other
// control characters as \u00XX, each invalid UTF-8 byte as \ufffd, U+2028 and U+2029 escaped.
func appendString(dst, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if i = skipPlain(s, i); i >= len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if safe[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '\\', '"':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&15])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
