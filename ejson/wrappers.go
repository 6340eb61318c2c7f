package ejson

import (
	"encoding/base64"
	"encoding/binary"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// wrapper is an Extended JSON v2 type wrapper key (the specification's "Conversion table").
type wrapper uint8

const (
	wNone wrapper = iota
	wOID
	wDate
	wInt
	wLong
	wDouble
	wDecimal
	wBinary
	wUUID
	wRegex
	wTimestamp
	wMinKey
	wMaxKey
	wUndefined
	wSymbol
	wCode
	wScope
	wDBPointer
)

var wrapperNames = [...]string{
	wNone: "", wOID: "$oid", wDate: "$date", wInt: "$numberInt", wLong: "$numberLong",
	wDouble: "$numberDouble", wDecimal: "$numberDecimal", wBinary: "$binary", wUUID: "$uuid",
	wRegex: "$regularExpression", wTimestamp: "$timestamp", wMinKey: "$minKey", wMaxKey: "$maxKey",
	wUndefined: "$undefined", wSymbol: "$symbol", wCode: "$code", wScope: "$scope",
	wDBPointer: "$dbPointer",
}

func wrapperOf(k []byte) wrapper {
	switch string(k) {
	case "$oid":
		return wOID
	case "$date":
		return wDate
	case "$numberInt":
		return wInt
	case "$numberLong":
		return wLong
	case "$numberDouble":
		return wDouble
	case "$numberDecimal":
		return wDecimal
	case "$binary":
		return wBinary
	case "$uuid":
		return wUUID
	case "$regularExpression":
		return wRegex
	case "$timestamp":
		return wTimestamp
	case "$minKey":
		return wMinKey
	case "$maxKey":
		return wMaxKey
	case "$undefined":
		return wUndefined
	case "$symbol":
		return wSymbol
	case "$code":
		return wCode
	case "$scope":
		return wScope
	case "$dbPointer":
		return wDBPointer
	}
	return wNone
}

// Reasons for a wrapper with a value of the wrong type or shape; each gives the shape expected.
const (
	msgOID       = `$oid must be a string of 24 hexadecimal digits`
	msgDate      = `$date must be a string, an integer or {"$numberLong": "<int64>"}`
	msgDateStr   = `$date string must be an ISO-8601 date-time such as "2024-01-31T12:00:00.000Z" (YYYY-MM-DDTHH:MM:SS[.fff] then Z or ±HH:MM)`
	msgInt       = `$numberInt must be a string holding a 32-bit integer`
	msgLong      = `$numberLong must be a string holding a 64-bit integer`
	msgDouble    = `$numberDouble must be a string holding a double, "Infinity", "-Infinity" or "NaN"`
	msgDecimal   = `$numberDecimal must be a string holding a decimal128`
	msgBinary    = `$binary must be {"base64": <string>, "subType": <hex string>} or the legacy "$binary": <base64 string>, "$type": <hex string>`
	msgBase64    = `$binary base64 must be a string of padded standard base64`
	msgSubType   = `$binary subType must be a string of one or two hexadecimal digits`
	msgUUID      = `$uuid must be a string of the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (32 hexadecimal digits)`
	msgRegex     = `$regularExpression must be {"pattern": <string>, "options": <string>}`
	msgRegexNUL  = `$regularExpression pattern and options cannot contain a NUL character`
	msgTimestamp = `$timestamp must be {"t": <uint32>, "i": <uint32>}`
	msgUndefined = `$undefined must be true`
	msgSymbol    = `$symbol must be a string`
	msgCode      = `$code must be a string`
	msgScope     = `$scope must be an object`
	msgScopeOnly = `$code may only be followed by "$scope"`
	msgScopeCode = `$scope must come with "$code"`
	msgDBPointer = `$dbPointer must be {"$ref": <string>, "$id": {"$oid": <24 hex digits>}}`
)

// wrapper reads the value of wrapper key w (p.pos just after the key) through the wrapper's
// closing '}' and appends it, setting dst[typeOff]. keyPos is the offset of the key.
func (p *parser) wrapper(w wrapper, typeOff, keyPos int) error {
	if err := p.expect(':', "':' after the field name"); err != nil {
		return err
	}
	p.skipWS()
	if p.pos >= len(p.src) {
		return p.syntaxErr("unexpected end of input; expected a value")
	}
	at := p.pos
	var t byte
	switch w {
	case wOID:
		b, mark, err := p.strArgOr(msgOID)
		if err != nil {
			return err
		}
		if len(b) != 24 {
			return p.extErr(at, msgOID)
		}
		var oid [12]byte
		if !hexDecode(oid[:], b) {
			return p.extErr(at, msgOID)
		}
		p.dst = append(p.dst[:mark], oid[:]...)
		t = tObjectID
	case wDate:
		ms, err := p.dateValue()
		if err != nil {
			return err
		}
		p.dst = binary.LittleEndian.AppendUint64(p.dst, uint64(ms))
		t = tDateTime
	case wInt, wLong:
		msg := msgLong
		if w == wInt {
			msg = msgInt
		}
		b, mark, err := p.strArgOr(msg)
		if err != nil {
			return err
		}
		v, perr := strconv.ParseInt(string(b), 10, 64)
		p.dst = p.dst[:mark]
		if perr != nil || (w == wInt && (v < math.MinInt32 || v > math.MaxInt32)) {
			return p.extErr(at, msg)
		}
		if w == wInt {
			p.dst = binary.LittleEndian.AppendUint32(p.dst, uint32(int32(v)))
			t = tInt32
		} else {
			p.dst = binary.LittleEndian.AppendUint64(p.dst, uint64(v))
			t = tInt64
		}
	case wDouble:
		b, mark, err := p.strArgOr(msgDouble)
		if err != nil {
			return err
		}
		var f float64
		switch string(b) {
		case "Infinity":
			f = math.Inf(1)
		case "-Infinity":
			f = math.Inf(-1)
		case "NaN":
			f = math.NaN()
		default:
			var perr error
			if f, perr = strconv.ParseFloat(string(b), 64); perr != nil {
				return p.extErr(at, msgDouble)
			}
		}
		p.dst = binary.LittleEndian.AppendUint64(p.dst[:mark], math.Float64bits(f))
		t = tDouble
	case wDecimal:
		b, mark, err := p.strArgOr(msgDecimal)
		if err != nil {
			return err
		}
		d, perr := bson.ParseDecimal128(string(b))
		if perr != nil {
			return p.extErr(at, msgDecimal)
		}
		h, l := d.GetBytes()
		p.dst = bsoncore.AppendDecimal128(p.dst[:mark], h, l)
		t = tDecimal
	case wBinary:
		if err := p.binaryValue(); err != nil {
			return err
		}
		t = tBinary
		// The legacy form carries its $type as the second key and closes itself.
		if p.src[at] == '"' {
			p.dst[typeOff] = t
			return nil
		}
	case wUUID:
		b, mark, err := p.strArgOr(msgUUID)
		if err != nil {
			return err
		}
		var u [16]byte
		if !parseUUID(u[:], b) {
			return p.extErr(at, msgUUID)
		}
		p.dst = append(binary.LittleEndian.AppendUint32(p.dst[:mark], 16), 4)
		p.dst = append(p.dst, u[:]...)
		t = tBinary
	case wRegex:
		if err := p.regexValue(); err != nil {
			return err
		}
		t = tRegex
	case wTimestamp:
		if err := p.timestampValue(); err != nil {
			return err
		}
		t = tTimestamp
	case wMinKey, wMaxKey:
		c := p.src[p.pos]
		if c != '-' && (c < '0' || c > '9') {
			return p.extErr(at, wrapperNames[w]+" must be 1")
		}
		k, v, _, err := p.scanNumber()
		if err != nil {
			return err
		}
		if k != numInt32 || v != 1 {
			return p.extErr(at, wrapperNames[w]+" must be 1")
		}
		t = tMaxKey
		if w == wMinKey {
			t = tMinKey
		}
	case wUndefined:
		if !p.literal("true") {
			return p.extErr(at, msgUndefined)
		}
		t = tUndefined
	case wSymbol:
		if p.src[p.pos] != '"' {
			return p.extErr(at, msgSymbol)
		}
		p.pos++
		if err := p.bsonString(); err != nil {
			return err
		}
		t = tSymbol
	case wCode:
		var err error
		if t, err = p.codeValue(); err != nil {
			return err
		}
		p.dst[typeOff] = t
		return nil
	case wScope:
		if err := p.scopeFirstValue(); err != nil {
			return err
		}
		p.dst[typeOff] = tCodeScope
		return nil
	case wDBPointer:
		if err := p.dbPointerValue(); err != nil {
			return err
		}
		t = tDBPointer
	}
	p.dst[typeOff] = t
	return p.closeWrapper(w)
}

// closeWrapper consumes the '}' that ends a wrapper object.
func (p *parser) closeWrapper(w wrapper) error {
	p.skipWS()
	if p.pos < len(p.src) {
		switch p.src[p.pos] {
		case '}':
			p.pos++
			return nil
		case ',':
			return p.extErr(p.pos, wrapperNames[w]+" must be the only key of its object (it is a type wrapper)")
		}
	}
	return p.syntaxErr("expected '}'")
}

// strArg reads the JSON string at p.pos (its quote not consumed) that a wrapper takes as an
// argument. Without escapes it returns a slice of src; otherwise the decoded bytes sit at the
// tail of dst from mark on. Either way the caller truncates dst to mark when done with them.
func (p *parser) strArg() (b []byte, mark int, err error) {
	mark = len(p.dst)
	p.pos++
	i := p.pos
	for i < len(p.src) {
		c := p.src[i]
		if plain[c] {
			i++
			continue
		}
		if c == '"' {
			b = p.src[p.pos:i]
			p.pos = i + 1
			return b, mark, nil
		}
		if c >= 0x80 {
			if r, size := utf8.DecodeRune(p.src[i:]); r != utf8.RuneError || size > 1 {
				i += size
				continue
			}
		}
		break
	}
	if _, err := p.str(); err != nil {
		return nil, mark, err
	}
	return p.dst[mark:], mark, nil
}

// strArgOr is strArg for a value that must be a string; msg is the reason otherwise.
func (p *parser) strArgOr(msg string) ([]byte, int, error) {
	if p.pos >= len(p.src) || p.src[p.pos] != '"' {
		return nil, len(p.dst), p.extErr(p.pos, msg)
	}
	return p.strArg()
}

// Keys of the objects inside type wrappers.
const (
	kOther = iota
	kBase64
	kSubType
	kPattern
	kOptions
	kT
	kI
	kRef
	kID
	kOID
	kNumberLong
)

func memberKey(b []byte) int {
	switch string(b) {
	case "base64":
		return kBase64
	case "subType":
		return kSubType
	case "pattern":
		return kPattern
	case "options":
		return kOptions
	case "t":
		return kT
	case "i":
		return kI
	case "$ref":
		return kRef
	case "$id":
		return kID
	case "$oid":
		return kOID
	case "$numberLong":
		return kNumberLong
	}
	return kOther
}

// secondKey reads the key after the ',' of a two-key wrapper ({"$binary": ..., "$type": ...},
// {"$code": ..., "$scope": ...}): it must be want, else the error is msg at the key. p.pos is
// left at the key's value.
func (p *parser) secondKey(want, msg string) error {
	p.skipWS()
	if p.pos >= len(p.src) || p.src[p.pos] != '"' {
		return p.syntaxErr("expected a field name in double quotes")
	}
	keyPos := p.pos
	key, mark, err := p.strArg()
	if err != nil {
		return err
	}
	ok := string(key) == want
	p.dst = p.dst[:mark]
	if !ok {
		return p.extErr(keyPos, msg)
	}
	if err := p.expect(':', "':' after the field name"); err != nil {
		return err
	}
	p.skipWS()
	return nil
}

// members reads an object at p.pos ('{' not consumed; msg is the reason when the value is not
// an object), calling fn for each member with its key (one of the k constants) and p.pos at
// the member's value.
func (p *parser) members(msg string, fn func(key int) error) error {
	if p.pos >= len(p.src) || p.src[p.pos] != '{' {
		return p.extErr(p.pos, msg)
	}
	p.pos++
	p.skipWS()
	if p.pos < len(p.src) && p.src[p.pos] == '}' {
		p.pos++
		return nil
	}
	for {
		if p.pos >= len(p.src) || p.src[p.pos] != '"' {
			return p.syntaxErr("expected a field name in double quotes")
		}
		b, mark, err := p.strArg()
		if err != nil {
			return err
		}
		key := memberKey(b)
		p.dst = p.dst[:mark]
		if err := p.expect(':', "':' after the field name"); err != nil {
			return err
		}
		p.skipWS()
		if p.pos >= len(p.src) {
			return p.syntaxErr("unexpected end of input; expected a value")
		}
		if err := fn(key); err != nil {
			return err
		}
		if more, err := p.separator('}'); err != nil || !more {
			return err
		}
	}
}

// dateValue reads the value of $date: an ISO-8601 string (relaxed), {"$numberLong": "<int64>"}
// (canonical) or an integer (the driver accepts one too), as milliseconds since the epoch.
func (p *parser) dateValue() (int64, error) {
	at := p.pos
	switch c := p.src[p.pos]; {
	case c == '"':
		b, mark, err := p.strArg()
		if err != nil {
			return 0, err
		}
		ms, ok := parseISODate(b)
		p.dst = p.dst[:mark]
		if !ok {
			return 0, p.extErr(at, msgDateStr)
		}
		return ms, nil
	case c == '-' || (c >= '0' && c <= '9'):
		k, v, _, err := p.scanNumber()
		if err != nil {
			return 0, err
		}
		if k == numDouble {
			return 0, p.extErr(at, msgDate)
		}
		return v, nil
	case c == '{':
		var ms int64
		found := false
		err := p.members(msgDate, func(key int) error {
			if key != kNumberLong || found {
				return p.extErr(at, msgDate)
			}
			found = true
			b, mark, err := p.strArgOr(msgDate)
			if err != nil {
				return err
			}
			v, perr := strconv.ParseInt(string(b), 10, 64)
			p.dst = p.dst[:mark]
			if perr != nil {
				return p.extErr(at, msgDate)
			}
			ms = v
			return nil
		})
		if err != nil {
			return 0, err
		}
		if !found {
			return 0, p.extErr(at, msgDate)
		}
		return ms, nil
	}
	return 0, p.extErr(at, msgDate)
}

// binaryValue reads the value of $binary: {"base64": ..., "subType": ...} in any order, or the
// legacy string followed by "$type". It appends the BSON binary value (int32 length, subtype,
// bytes; subtype 2 carries its old inner length as bsoncore writes it).
func (p *parser) binaryValue() error {
	at := p.pos
	vStart := len(p.dst)
	p.dst = append(p.dst, 0, 0, 0, 0, 0)
	var sub byte
	if p.src[p.pos] == '"' {
		if err := p.base64Arg(); err != nil {
			return err
		}
		p.skipWS()
		if p.pos >= len(p.src) || p.src[p.pos] != ',' {
			if p.pos < len(p.src) && p.src[p.pos] == '}' {
				return p.extErr(at, msgBinary)
			}
			return p.syntaxErr("expected ','")
		}
		p.pos++
		if err := p.secondKey("$type", msgBinary); err != nil {
			return err
		}
		var err error
		if sub, err = p.subTypeArg(); err != nil {
			return err
		}
		if err := p.closeWrapper(wBinary); err != nil {
			return err
		}
	} else {
		haveB, haveS := false, false
		err := p.members(msgBinary, func(key int) error {
			switch {
			case key == kBase64 && !haveB:
				haveB = true
				return p.base64Arg()
			case key == kSubType && !haveS:
				haveS = true
				var err error
				sub, err = p.subTypeArg()
				return err
			}
			return p.extErr(at, msgBinary)
		})
		if err != nil {
			return err
		}
		if !haveB || !haveS {
			return p.extErr(at, msgBinary)
		}
	}
	n := len(p.dst) - vStart - 5
	p.dst[vStart+4] = sub
	if sub == 2 {
		p.dst = append(p.dst, 0, 0, 0, 0)
		copy(p.dst[vStart+9:], p.dst[vStart+5:len(p.dst)-4])
		binary.LittleEndian.PutUint32(p.dst[vStart+5:], uint32(n))
		n += 4
	}
	binary.LittleEndian.PutUint32(p.dst[vStart:], uint32(n))
	if p.tooBig() {
		return p.sizeErr()
	}
	return nil
}

// base64Arg decodes a base64 string argument onto dst (standard alphabet with padding, as
// base64.StdEncoding decodes it, which ignores CR and LF like the driver).
func (p *parser) base64Arg() error {
	at := p.pos
	b, mark, err := p.strArgOr(msgBase64)
	if err != nil {
		return err
	}
	before := len(p.dst)
	out, derr := base64.StdEncoding.AppendDecode(p.dst, b)
	if derr != nil {
		p.dst = p.dst[:mark]
		return p.extErr(at, msgBase64)
	}
	p.dst = out
	if before > mark { // the argument was decoded into dst's tail: move the bytes down over it
		n := copy(p.dst[mark:], p.dst[before:])
		p.dst = p.dst[:mark+n]
	}
	return nil
}

func (p *parser) subTypeArg() (byte, error) {
	at := p.pos
	b, mark, err := p.strArgOr(msgSubType)
	if err != nil {
		return 0, err
	}
	v, perr := strconv.ParseUint(string(b), 16, 8)
	p.dst = p.dst[:mark]
	if perr != nil {
		return 0, p.extErr(at, msgSubType)
	}
	return byte(v), nil
}

// regexValue reads {"pattern": ..., "options": ...} in any order and appends the two cstrings,
// the options sorted by code point (as the driver's BSON writer and mongod store them).
func (p *parser) regexValue() error {
	at := p.pos
	vStart := len(p.dst)
	patLen, optLen := -1, -1
	patFirst := false
	err := p.members(msgRegex, func(key int) error {
		isPat := key == kPattern
		if !isPat && key != kOptions || isPat && patLen >= 0 || !isPat && optLen >= 0 {
			return p.extErr(at, msgRegex)
		}
		if p.src[p.pos] != '"' {
			return p.extErr(p.pos, msgRegex)
		}
		s := len(p.dst)
		p.pos++
		nul, err := p.str()
		if err != nil {
			return err
		}
		if nul {
			return p.extErr(at, msgRegexNUL)
		}
		if isPat {
			patLen = len(p.dst) - s
			patFirst = optLen < 0
		} else {
			optLen = len(p.dst) - s
		}
		p.dst = append(p.dst, 0)
		return nil
	})
	if err != nil {
		return err
	}
	if patLen < 0 || optLen < 0 {
		return p.extErr(at, msgRegex)
	}
	v := p.dst[vStart:]
	if !patFirst {
		rotateLeft(v, optLen+1)
	}
	sortRunes(v[patLen+1 : patLen+1+optLen])
	return nil
}

// rotateLeft rotates b left by k bytes in place.
func rotateLeft(b []byte, k int) {
	slices.Reverse(b[:k])
	slices.Reverse(b[k:])
	slices.Reverse(b)
}

// sortRunes sorts the UTF-8 text b by code point in place.
func sortRunes(b []byte) {
	ascii := true
	for _, c := range b {
		if c >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		for i := 1; i < len(b); i++ {
			for j := i; j > 0 && b[j] < b[j-1]; j-- {
				b[j], b[j-1] = b[j-1], b[j]
			}
		}
		return
	}
	rs := []rune(string(b))
	slices.Sort(rs)
	i := 0
	for _, r := range rs {
		i += utf8.EncodeRune(b[i:], r)
	}
}

// timestampValue reads {"t": <uint32>, "i": <uint32>} in any order and appends the BSON
// timestamp (increment then seconds, little-endian).
func (p *parser) timestampValue() error {
	at := p.pos
	var t, i uint32
	haveT, haveI := false, false
	err := p.members(msgTimestamp, func(key int) error {
		isT := key == kT
		if !isT && key != kI || isT && haveT || !isT && haveI {
			return p.extErr(at, msgTimestamp)
		}
		c := p.src[p.pos]
		if c != '-' && (c < '0' || c > '9') {
			return p.extErr(p.pos, msgTimestamp)
		}
		k, v, _, err := p.scanNumber()
		if err != nil {
			return err
		}
		if k == numDouble || v < 0 || v > math.MaxUint32 {
			return p.extErr(at, msgTimestamp)
		}
		if isT {
			t, haveT = uint32(v), true
		} else {
			i, haveI = uint32(v), true
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !haveT || !haveI {
		return p.extErr(at, msgTimestamp)
	}
	p.dst = binary.LittleEndian.AppendUint32(p.dst, i)
	p.dst = binary.LittleEndian.AppendUint32(p.dst, t)
	return nil
}

// codeValue reads the value of $code and, when "$scope" follows, the scope document; it
// returns the BSON type it appended (JavaScript or code with scope).
func (p *parser) codeValue() (byte, error) {
	at := p.pos
	if p.src[p.pos] != '"' {
		return 0, p.extErr(at, msgCode)
	}
	vStart := len(p.dst)
	p.pos++
	if err := p.bsonString(); err != nil {
		return 0, err
	}
	p.skipWS()
	if p.pos < len(p.src) && p.src[p.pos] == '}' {
		p.pos++
		return tJavaScript, nil
	}
	if p.pos >= len(p.src) || p.src[p.pos] != ',' {
		return 0, p.syntaxErr("expected ',' or '}'")
	}
	p.pos++
	if err := p.secondKey("$scope", msgScopeOnly); err != nil {
		return 0, err
	}
	if p.pos >= len(p.src) || p.src[p.pos] != '{' {
		return 0, p.extErr(p.pos, msgScope)
	}
	p.pos++
	// Room for the total length in front of the code string.
	p.dst = append(p.dst, 0, 0, 0, 0)
	copy(p.dst[vStart+4:], p.dst[vStart:len(p.dst)-4])
	// The scope is read like a top-level document: its own keys are field names, as the
	// driver reads it.
	if err := p.object(-1, true); err != nil {
		return 0, err
	}
	binary.LittleEndian.PutUint32(p.dst[vStart:], uint32(len(p.dst)-vStart))
	if err := p.closeWrapper(wCode); err != nil {
		return 0, err
	}
	return tCodeScope, nil
}

// scopeFirstValue reads {"$scope": {...}, "$code": "..."}, the order the specification allows
// beside the usual one ("Parsers MUST NOT consider key order as having significance"; the
// driver refuses it), and appends the code with scope with its code string first.
func (p *parser) scopeFirstValue() error {
	if p.src[p.pos] != '{' {
		return p.extErr(p.pos, msgScope)
	}
	p.pos++
	vStart := len(p.dst)
	p.dst = append(p.dst, 0, 0, 0, 0)
	if err := p.object(-1, true); err != nil {
		return err
	}
	scopeLen := len(p.dst) - vStart - 4
	p.skipWS()
	if p.pos >= len(p.src) || p.src[p.pos] != ',' {
		if p.pos < len(p.src) && p.src[p.pos] == '}' {
			return p.extErr(p.pos, msgScopeCode)
		}
		return p.syntaxErr("expected ',' or '}'")
	}
	p.pos++
	if err := p.secondKey("$code", msgScopeCode); err != nil {
		return err
	}
	if p.pos >= len(p.src) || p.src[p.pos] != '"' {
		return p.extErr(p.pos, msgCode)
	}
	p.pos++
	if err := p.bsonString(); err != nil {
		return err
	}
	rotateLeft(p.dst[vStart+4:], scopeLen)
	binary.LittleEndian.PutUint32(p.dst[vStart:], uint32(len(p.dst)-vStart))
	return p.closeWrapper(wScope)
}

// dbPointerValue reads {"$ref": <string>, "$id": {"$oid": <hex>}} in any order and appends the
// BSON DBPointer (namespace string, 12-byte ObjectId).
func (p *parser) dbPointerValue() error {
	at := p.pos
	var oid [12]byte
	haveRef, haveID := false, false
	err := p.members(msgDBPointer, func(key int) error {
		switch {
		case key == kRef && !haveRef:
			haveRef = true
			if p.src[p.pos] != '"' {
				return p.extErr(p.pos, msgDBPointer)
			}
			p.pos++
			return p.bsonString()
		case key == kID && !haveID:
			haveID = true
			ok := false
			err := p.members(msgDBPointer, func(k int) error {
				if k != kOID || ok {
					return p.extErr(at, msgDBPointer)
				}
				b, mark, err := p.strArgOr(msgDBPointer)
				if err != nil {
					return err
				}
				ok = len(b) == 24 && hexDecode(oid[:], b)
				p.dst = p.dst[:mark]
				if !ok {
					return p.extErr(at, msgDBPointer)
				}
				return nil
			})
			if err != nil {
				return err
			}
			if !ok {
				return p.extErr(at, msgDBPointer)
			}
			return nil
		}
		return p.extErr(at, msgDBPointer)
	})
	if err != nil {
		return err
	}
	if !haveRef || !haveID {
		return p.extErr(at, msgDBPointer)
	}
	p.dst = append(p.dst, oid[:]...)
	return nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// hexDecode decodes len(dst)*2 hex digits of src into dst.
func hexDecode(dst, src []byte) bool {
	if len(src) != 2*len(dst) {
		return false
	}
	for i := range dst {
		h, ok1 := unhex(src[2*i])
		l, ok2 := unhex(src[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = h<<4 | l
	}
	return true
}

// parseUUID decodes the 8-4-4-4-12 hex form of RFC 4122 section 3.
func parseUUID(dst []byte, s []byte) bool {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return false
	}
	var h [32]byte
	n := 0
	for i, c := range s {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			continue
		}
		h[n] = c
		n++
	}
	return hexDecode(dst, h[:])
}

// The layouts the driver tries for a relaxed $date string.
var dateLayouts = [...]string{"2006-01-02T15:04:05.999Z07:00", "2006-01-02T15:04:05.999Z0700"}

// parseISODate parses a relaxed $date string as the driver does (time.Parse with its two
// layouts: RFC 3339 with optional fraction, and a ±HHMM offset), in milliseconds since the
// epoch, floored. The usual shape is parsed by hand; anything else goes to time.Parse.
func parseISODate(b []byte) (int64, bool) {
	if ms, ok := fastISODate(b); ok {
		return ms, true
	}
	s := string(b)
	for _, layout := range dateLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.Unix()*1e3 + int64(t.Nanosecond())/1e6, true
		}
	}
	return 0, false
}

func digits2(b []byte) (int, bool) {
	if b[0] < '0' || b[0] > '9' || b[1] < '0' || b[1] > '9' {
		return 0, false
	}
	return int(b[0]-'0')*10 + int(b[1]-'0'), true
}

// fastISODate parses exactly YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|±HH:MM|±HHMM) with the ranges
// time.Parse allows; ok=false sends the input to time.Parse, which decides.
func fastISODate(b []byte) (int64, bool) {
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return 0, false
	}
	y1, ok1 := digits2(b[0:])
	y2, ok2 := digits2(b[2:])
	mo, ok3 := digits2(b[5:])
	d, ok4 := digits2(b[8:])
	h, ok5 := digits2(b[11:])
	mi, ok6 := digits2(b[14:])
	s, ok7 := digits2(b[17:])
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 || !ok7 {
		return 0, false
	}
	year := y1*100 + y2
	if mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 59 {
		return 0, false
	}
	if d > daysIn(mo, year) {
		return 0, false
	}
	i := 19
	nsec := 0
	if b[i] == '.' {
		i++
		n := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			if n == 9 {
				return 0, false
			}
			nsec = nsec*10 + int(b[i]-'0')
			n++
			i++
		}
		if n == 0 {
			return 0, false
		}
		for ; n < 9; n++ {
			nsec *= 10
		}
	}
	off := 0
	rest := b[i:]
	switch {
	case len(rest) == 1 && rest[0] == 'Z':
	case (len(rest) == 6 && rest[3] == ':' || len(rest) == 5) && (rest[0] == '+' || rest[0] == '-'):
		oh, okh := digits2(rest[1:])
		om, okm := digits2(rest[len(rest)-2:])
		if !okh || !okm || oh > 24 || om > 60 {
			return 0, false
		}
		off = (oh*60 + om) * 60
		if rest[0] == '-' {
			off = -off
		}
	default:
		return 0, false
	}
	secs := time.Date(year, time.Month(mo), d, h, mi, s, 0, time.UTC).Unix() - int64(off)
	return secs*1e3 + int64(nsec)/1e6, true
}

func daysIn(m, year int) int {
	switch m {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
