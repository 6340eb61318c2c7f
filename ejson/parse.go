package ejson

import (
	"encoding/binary"
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

const (
	// MaxDepth is the deepest nesting of documents and arrays AppendBSON accepts, the
	// top-level document included (MongoDB manual, "MongoDB Limits and Thresholds": no more
	// than 100 levels of nesting for BSON documents). Type wrappers such as {"$date": ...}
	// become scalars and do not count.
	MaxDepth = 100
	// MaxSize is the largest BSON document AppendBSON produces, in bytes (16 MiB, the BSON
	// document size limit of the same manual page).
	MaxSize = 16 * 1024 * 1024
)

// BSON element types (bsonspec.org).
const (
	tDouble     = 0x01
	tString     = 0x02
	tDocument   = 0x03
	tArray      = 0x04
	tBinary     = 0x05
	tUndefined  = 0x06
	tObjectID   = 0x07
	tBoolean    = 0x08
	tDateTime   = 0x09
	tNull       = 0x0A
	tRegex      = 0x0B
	tDBPointer  = 0x0C
	tJavaScript = 0x0D
	tSymbol     = 0x0E
	tCodeScope  = 0x0F
	tInt32      = 0x10
	tTimestamp  = 0x11
	tInt64      = 0x12
	tDecimal    = 0x13
	tMinKey     = 0xFF
	tMaxKey     = 0x7F
)

// Error is a rejected payload: Offset is the byte offset in the input where the problem was
// found, Path the dotted field path of the value being read ("a.b.2"; empty at the top level),
// Msg the reason. Error() reads, for malformed JSON,
//
//	invalid JSON at offset 17 (field "a.b"): expected ',' or '}'
//
// and, for a well-formed value that breaks an Extended JSON rule,
//
//	field "ts": $date must be a string, an integer or {"$numberLong": "<int64>"}
type Error struct {
	Offset int
	Path   string
	Msg    string
	// ext marks an Extended JSON rule (a type wrapper's shape) rather than JSON syntax.
	ext bool
}

// Error formats the reason with its path (and offset, for syntax errors).
func (e *Error) Error() string {
	var b strings.Builder
	if e.ext {
		if e.Path != "" {
			b.WriteString("field ")
			b.WriteString(strconv.Quote(e.Path))
			b.WriteString(": ")
		}
		b.WriteString(e.Msg)
		return b.String()
	}
	b.WriteString("invalid JSON at offset ")
	b.WriteString(strconv.Itoa(e.Offset))
	if e.Path != "" {
		b.WriteString(" (field ")
		b.WriteString(strconv.Quote(e.Path))
		b.WriteString(")")
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// StripConfluentHeader returns the payload after Confluent's wire-format header (the magic
// byte 0x00 then a 4-byte big-endian schema id; Confluent Schema Registry documentation,
// "Wire format") when b carries one, with ok=true; otherwise b unchanged, 0 and false. A JSON
// text never begins with 0x00, so the check cannot mistake one for the other.
func StripConfluentHeader(b []byte) (payload []byte, schemaID uint32, ok bool) {
	if len(b) < 5 || b[0] != 0 {
		return b, 0, false
	}
	return b[5:], binary.BigEndian.Uint32(b[1:5]), true
}

// frame is one open document or array, for the error path: the offset in dst of the key of
// the element being read (documents) or its index (arrays, index >= 0).
type frame struct {
	keyOff int32
	index  int32
}

type parser struct {
	src    []byte
	pos    int
	dst    []byte
	base   int
	depth  int
	frames [MaxDepth]frame
}

// AppendBSON parses one JSON, relaxed or canonical Extended JSON v2 document from src (the
// top-level value must be an object; only whitespace may follow it) and appends its BSON
// encoding to dst. On error it returns dst with its original length and an *Error.
//
// JSON numbers follow the specification's "Special rules for parsing JSON numbers" as the Go
// driver applies them: an integer literal becomes an int32 if it fits, else an int64, else a
// double; a literal with a fraction or an exponent becomes a double; a double literal out of
// range is an error. Strings must be valid UTF-8 without raw control characters (RFC 8259
// section 7); a lone surrogate escape becomes U+FFFD, as in the driver. Field names and regular
// expressions may not contain NUL (BSON cstrings).
//
// Type wrappers (the specification's "Conversion table") are recognized in any object but the
// top-level one when the object's first key is a wrapper key ($oid, $date (ISO-8601 string,
// {"$numberLong": ...} or an integer), $numberInt, $numberLong, $numberDouble (with
// "Infinity", "-Infinity", "NaN"), $numberDecimal, $binary (canonical, and legacy with
// $type), $uuid, $regularExpression, $timestamp, $minKey, $maxKey, $undefined, $symbol,
// $code, $code with $scope in either order, $dbPointer); the wrapper must then have exactly
// its keys, with values of the right types, or the payload is rejected with the field and the
// reason. A wrapper key that is not first is rejected too (the specification's "any missing
// or extra keys constitute an error"); other $-prefixed keys ($ref, $id, $regex, $type, ...)
// are ordinary field names, as the specification and the driver have them. The top-level
// object's keys are always field names (the specification and the driver agree).
//
// The output is limited to MaxSize bytes and the nesting to MaxDepth levels.
func AppendBSON(dst []byte, src []byte) ([]byte, error) {
	p := parser{src: src, dst: dst, base: len(dst)}
	p.skipWS()
	if p.pos >= len(src) {
		return dst[:p.base], p.syntaxErr("empty input; expected a JSON object")
	}
	if src[p.pos] != '{' {
		return dst[:p.base], p.syntaxErr("the top-level value must be an object")
	}
	p.pos++
	if err := p.object(-1, true); err != nil {
		return p.dst[:p.base], err
	}
	p.skipWS()
	if p.pos != len(src) {
		return p.dst[:p.base], p.syntaxErr("unexpected data after the top-level object")
	}
	return p.dst, nil
}

// path renders the field path of the value being read.
func (p *parser) path() string {
	var b []byte
	for i := 0; i < p.depth; i++ {
		f := p.frames[i]
		var seg []byte
		switch {
		case f.index >= 0:
			seg = strconv.AppendInt(nil, int64(f.index), 10)
		case f.keyOff >= 0 && int(f.keyOff) <= len(p.dst):
			k := p.dst[f.keyOff:]
			if n := indexByte(k, 0); n >= 0 {
				k = k[:n]
			}
			seg = k
		default:
			continue
		}
		if len(b) > 0 {
			b = append(b, '.')
		}
		b = append(b, seg...)
	}
	return string(b)
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func (p *parser) syntaxErr(msg string) *Error {
	return &Error{Offset: p.pos, Path: p.path(), Msg: msg}
}

func (p *parser) syntaxErrAt(off int, msg string) *Error {
	return &Error{Offset: off, Path: p.path(), Msg: msg}
}

func (p *parser) extErr(off int, msg string) *Error {
	return &Error{Offset: off, Path: p.path(), Msg: msg, ext: true}
}

func (p *parser) skipWS() {
	for p.pos < len(p.src) {
		switch p.src[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// expect skips whitespace and consumes c.
func (p *parser) expect(c byte, what string) error {
	p.skipWS()
	if p.pos >= len(p.src) || p.src[p.pos] != c {
		return p.syntaxErr("expected " + what)
	}
	p.pos++
	return nil
}

func (p *parser) tooBig() bool { return len(p.dst)-p.base > MaxSize }

func (p *parser) sizeErr() *Error {
	return &Error{Offset: p.pos, Path: p.path(), Msg: "the document exceeds the BSON size limit of 16 MiB", ext: true}
}

// object reads an object whose '{' was consumed. typeOff is the offset of the element's type
// byte in dst (-1 for the top level). In a non-top-level object whose first key is a wrapper
// key the wrapper is read instead and the element's type set accordingly.
func (p *parser) object(typeOff int, top bool) error {
	if p.depth >= MaxDepth {
		return p.syntaxErrAt(p.pos-1, "nesting exceeds the maximum depth of "+strconv.Itoa(MaxDepth))
	}
	start := len(p.dst)
	p.dst = append(p.dst, 0, 0, 0, 0)
	fr := &p.frames[p.depth]
	fr.keyOff, fr.index = -1, -1
	p.depth++
	p.skipWS()
	if p.pos < len(p.src) && p.src[p.pos] == '}' {
		p.pos++
		return p.endContainer(start, typeOff, tDocument)
	}
	first := true
	for {
		if p.pos >= len(p.src) || p.src[p.pos] != '"' {
			return p.syntaxErr("expected a field name in double quotes")
		}
		keyPos := p.pos
		elemOff := len(p.dst)
		p.dst = append(p.dst, 0)
		keyOff := len(p.dst)
		p.frames[p.depth-1].keyOff = -1
		p.pos++
		nul, err := p.str()
		if err != nil {
			return err
		}
		keyEnd := len(p.dst)
		if nul {
			return p.syntaxErrAt(keyPos, "field names cannot contain a NUL character")
		}
		p.frames[p.depth-1].keyOff = int32(keyOff)
		p.dst = append(p.dst, 0)
		if !top && keyEnd > keyOff && p.dst[keyOff] == '$' {
			if w := wrapperOf(p.dst[keyOff:keyEnd]); w != wNone {
				name := wrapperNames[w]
				p.depth--
				if first {
					p.dst = p.dst[:start]
					return p.wrapper(w, typeOff, keyPos)
				}
				return p.extErr(keyPos, name+" must be the only key of its object (it is a type wrapper)")
			}
		}
		first = false
		if err := p.expect(':', "':' after the field name"); err != nil {
			return err
		}
		p.skipWS()
		if err := p.value(elemOff); err != nil {
			return err
		}
		more, err := p.separator('}')
		if err != nil {
			return err
		}
		if !more {
			return p.endContainer(start, typeOff, tDocument)
		}
		p.frames[p.depth-1].keyOff = -1
	}
}

// separator reads what follows a member or an element: ',' (more follow: true) or close (the
// object or array ends: false). Anything else is a syntax error.
func (p *parser) separator(close byte) (bool, error) {
	p.skipWS()
	if p.pos < len(p.src) {
		switch p.src[p.pos] {
		case ',':
			p.pos++
			p.skipWS()
			return true, nil
		case close:
			p.pos++
			return false, nil
		}
	}
	return false, p.syntaxErr("expected ',' or '" + string(close) + "'")
}

// endContainer closes the document or array begun at start.
func (p *parser) endContainer(start, typeOff int, t byte) error {
	p.dst = append(p.dst, 0)
	if p.tooBig() {
		return p.sizeErr()
	}
	binary.LittleEndian.PutUint32(p.dst[start:], uint32(len(p.dst)-start))
	if typeOff >= 0 {
		p.dst[typeOff] = t
	}
	p.depth--
	return nil
}

func (p *parser) array(typeOff int) error {
	if p.depth >= MaxDepth {
		return p.syntaxErrAt(p.pos-1, "nesting exceeds the maximum depth of "+strconv.Itoa(MaxDepth))
	}
	start := len(p.dst)
	p.dst = append(p.dst, 0, 0, 0, 0)
	fr := &p.frames[p.depth]
	fr.keyOff, fr.index = -1, 0
	p.depth++
	p.skipWS()
	if p.pos < len(p.src) && p.src[p.pos] == ']' {
		p.pos++
		return p.endContainer(start, typeOff, tArray)
	}
	for i := 0; ; i++ {
		p.frames[p.depth-1].index = int32(i)
		elemOff := len(p.dst)
		p.dst = append(p.dst, 0)
		if i < 10 {
			p.dst = append(p.dst, byte('0'+i), 0)
		} else {
			p.dst = append(strconv.AppendInt(p.dst, int64(i), 10), 0)
		}
		if err := p.value(elemOff); err != nil {
			return err
		}
		more, err := p.separator(']')
		if err != nil {
			return err
		}
		if !more {
			return p.endContainer(start, typeOff, tArray)
		}
	}
}

// value reads one value at p.pos (whitespace skipped) and appends its BSON encoding, setting
// dst[typeOff].
func (p *parser) value(typeOff int) error {
	if p.pos >= len(p.src) {
		return p.syntaxErr("unexpected end of input; expected a value")
	}
	switch c := p.src[p.pos]; c {
	case '"':
		p.pos++
		p.dst[typeOff] = tString
		return p.bsonString()
	case '{':
		p.pos++
		return p.object(typeOff, false)
	case '[':
		p.pos++
		return p.array(typeOff)
	case 't':
		if !p.literal("true") {
			return p.syntaxErr("invalid literal; expected true")
		}
		p.dst[typeOff] = tBoolean
		p.dst = append(p.dst, 1)
	case 'f':
		if !p.literal("false") {
			return p.syntaxErr("invalid literal; expected false")
		}
		p.dst[typeOff] = tBoolean
		p.dst = append(p.dst, 0)
	case 'n':
		if !p.literal("null") {
			return p.syntaxErr("invalid literal; expected null")
		}
		p.dst[typeOff] = tNull
	default:
		if c == '-' || (c >= '0' && c <= '9') {
			return p.number(typeOff)
		}
		return p.syntaxErr("expected a value")
	}
	return nil
}

func (p *parser) literal(lit string) bool {
	if len(p.src)-p.pos < len(lit) || string(p.src[p.pos:p.pos+len(lit)]) != lit {
		return false
	}
	p.pos += len(lit)
	return true
}

// bsonString reads a JSON string whose opening quote was consumed and appends it as a BSON
// string (int32 length, bytes, NUL).
func (p *parser) bsonString() error {
	lenOff := len(p.dst)
	p.dst = append(p.dst, 0, 0, 0, 0)
	if _, err := p.str(); err != nil {
		return err
	}
	p.dst = append(p.dst, 0)
	binary.LittleEndian.PutUint32(p.dst[lenOff:], uint32(len(p.dst)-lenOff-4))
	if p.tooBig() {
		return p.sizeErr()
	}
	return nil
}

// plain marks the bytes a JSON string carries through unchanged (printable ASCII but '"' and
// '\\').
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str decodes the JSON string at p.pos (after its opening quote) onto dst, through its closing
// quote. It reports whether the decoded bytes contain NUL.
func (p *parser) str() (nul bool, err error) {
	src := p.src
	i := p.pos
	start := i
	for {
		i = skipPlain(src, i)
		if i >= len(src) {
			p.pos = i
			return nul, p.syntaxErr("unexpected end of input in a string")
		}
		c := src[i]
		switch {
		case c == '"':
			p.dst = append(p.dst, src[start:i]...)
			p.pos = i + 1
			return nul, nil
		case c == '\\':
			p.dst = append(p.dst, src[start:i]...)
			n, z, err := p.escape(i)
			if err != nil {
				return nul, err
			}
			nul = nul || z
			i = n
			start = i
		case c < 0x20:
			p.pos = i
			if c == 0 {
				return nul, p.syntaxErr("a raw NUL byte in a string; write it as \\u0000")
			}
			return nul, p.syntaxErr("a raw control character in a string; escape it (RFC 8259 section 7)")
		default: // c >= 0x80
			r, size := utf8.DecodeRune(src[i:])
			if r == utf8.RuneError && size <= 1 {
				p.pos = i
				return nul, p.syntaxErr("invalid UTF-8 in a string")
			}
			i += size
		}
	}
}

func hex4(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// escape decodes the escape sequence at src[i] == '\\' onto dst and returns the offset after
// it. Lone surrogates follow the driver's scanner: a surrogate \u escape not followed by a
// second \u escape writes U+FFFD and goes on with what follows; with one, a valid pair writes
// the pair's code point, anything else U+FFFD then the second escape's rune (U+FFFD again if
// it is a surrogate).
func (p *parser) escape(i int) (next int, nul bool, err error) {
	src := p.src
	if i+1 >= len(src) {
		p.pos = len(src)
		return 0, false, p.syntaxErr("unexpected end of input in a string")
	}
	switch c := src[i+1]; c {
	case '"', '\\', '/':
		p.dst = append(p.dst, c)
	case 'b':
		p.dst = append(p.dst, '\b')
	case 'f':
		p.dst = append(p.dst, '\f')
	case 'n':
		p.dst = append(p.dst, '\n')
	case 'r':
		p.dst = append(p.dst, '\r')
	case 't':
		p.dst = append(p.dst, '\t')
	case 'u':
		r := hex4(src[i+2:])
		if r < 0 {
			p.pos = i
			return 0, false, p.syntaxErr("invalid \\u escape; expected 4 hexadecimal digits")
		}
		i += 6
		if !utf16.IsSurrogate(r) {
			p.dst = utf8.AppendRune(p.dst, r)
			return i, r == 0, nil
		}
		if i+1 < len(src) && src[i] == '\\' && src[i+1] == 'u' {
			r2 := hex4(src[i+2:])
			if r2 < 0 {
				p.pos = i
				return 0, false, p.syntaxErr("invalid \\u escape; expected 4 hexadecimal digits")
			}
			i += 6
			if pair := utf16.DecodeRune(r, r2); pair != utf8.RuneError {
				p.dst = utf8.AppendRune(p.dst, pair)
				return i, false, nil
			}
			p.dst = utf8.AppendRune(p.dst, utf8.RuneError)
			p.dst = utf8.AppendRune(p.dst, r2) // a surrogate r2 encodes as U+FFFD
			return i, r2 == 0, nil
		}
		p.dst = utf8.AppendRune(p.dst, utf8.RuneError)
		return i, false, nil
	default:
		p.pos = i
		return 0, false, p.syntaxErr("invalid escape sequence in a string")
	}
	return i + 2, false, nil
}

// numKind is what a JSON number literal became.
type numKind uint8

const (
	numInt32 numKind = iota + 1
	numInt64
	numDouble
)

// scanNumber reads the JSON number at p.pos (RFC 8259 section 6) and converts it as the
// driver's scanner does: an integer literal to int32 if it fits, else int64, else double; a
// fraction or an exponent to double; a double out of range is an error.
func (p *parser) scanNumber() (numKind, int64, float64, error) {
	src := p.src
	start := p.pos
	i := start
	neg := false
	if src[i] == '-' {
		neg = true
		i++
	}
	if i >= len(src) || src[i] < '0' || src[i] > '9' {
		p.pos = start
		return 0, 0, 0, p.syntaxErr("invalid number")
	}
	var u uint64
	digits := 0
	if src[i] == '0' {
		i++
		digits = 1
	} else {
		for i < len(src) && src[i] >= '0' && src[i] <= '9' {
			u = u*10 + uint64(src[i]-'0')
			digits++
			i++
		}
	}
	isFloat, exp := false, false
	mant, frac := u, 0 // the digits with the fraction's, while they fit Clinger's fast path
	if i < len(src) && src[i] == '.' {
		i++
		if i >= len(src) || src[i] < '0' || src[i] > '9' {
			p.pos = start
			return 0, 0, 0, p.syntaxErr("invalid number: expected a digit after '.'")
		}
		for i < len(src) && src[i] >= '0' && src[i] <= '9' {
			if mant < 1<<53/10 {
				mant = mant*10 + uint64(src[i]-'0')
			} else {
				frac = -1 << 20 // too many digits: strconv decides
			}
			frac++
			i++
		}
		isFloat = true
	}
	if i < len(src) && (src[i] == 'e' || src[i] == 'E') {
		exp = true
		i++
		if i < len(src) && (src[i] == '+' || src[i] == '-') {
			i++
		}
		if i >= len(src) || src[i] < '0' || src[i] > '9' {
			p.pos = start
			return 0, 0, 0, p.syntaxErr("invalid number: expected a digit in the exponent")
		}
		for i < len(src) && src[i] >= '0' && src[i] <= '9' {
			i++
		}
		isFloat = true
	}
	p.pos = i
	lit := src[start:i]
	if isFloat && !exp && digits <= 15 && frac >= 0 && frac < len(pow10) {
		// Clinger's fast path ("How to Read Floating Point Numbers Accurately", 1990): a
		// mantissa below 2^53 and a power of ten up to 10^22 are both exact doubles, so their
		// quotient, one IEEE division, is the correctly rounded value strconv would give.
		f := float64(mant) / pow10[frac]
		if neg {
			f = -f
		}
		return numDouble, 0, f, nil
	}
	if !isFloat {
		var v int64
		ok := false
		if digits <= 19 && (u <= math.MaxInt64 || (neg && u == 1<<63)) {
			// Nineteen digits cannot overflow a uint64.
			v, ok = int64(u), true
			if neg {
				v = -v
			}
		} else if x, err := strconv.ParseInt(string(lit), 10, 64); err == nil {
			v, ok = x, true
		}
		if ok {
			if v >= -1<<31 && v < 1<<31 {
				return numInt32, v, 0, nil
			}
			return numInt64, v, 0, nil
		}
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil {
		p.pos = start
		return 0, 0, 0, p.syntaxErr("number out of the range of a double")
	}
	return numDouble, 0, f, nil
}

func (p *parser) number(typeOff int) error {
	k, v, f, err := p.scanNumber()
	if err != nil {
		return err
	}
	switch k {
	case numInt32:
		p.dst[typeOff] = tInt32
		p.dst = binary.LittleEndian.AppendUint32(p.dst, uint32(int32(v)))
	case numInt64:
		p.dst[typeOff] = tInt64
		p.dst = binary.LittleEndian.AppendUint64(p.dst, uint64(v))
	default:
		p.dst[typeOff] = tDouble
		p.dst = binary.LittleEndian.AppendUint64(p.dst, math.Float64bits(f))
	}
	return nil
}
