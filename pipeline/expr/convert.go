package expr

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/value"
)

// typeCodes maps $type names to BSON type numbers for $convert's 'to'.
var typeCodes = map[string]bson.Type{
	"double": bson.TypeDouble, "string": bson.TypeString, "object": bson.TypeEmbeddedDocument,
	"array": bson.TypeArray, "binData": bson.TypeBinary, "undefined": bson.TypeUndefined,
	"objectId": bson.TypeObjectID, "bool": bson.TypeBoolean, "date": bson.TypeDateTime,
	"null": bson.TypeNull, "regex": bson.TypeRegex, "dbPointer": bson.TypeDBPointer,
	"javascript": bson.TypeJavaScript, "symbol": bson.TypeSymbol, "javascriptWithScope": bson.TypeCodeWithScope,
	"int": bson.TypeInt32, "timestamp": bson.TypeTimestamp, "long": bson.TypeInt64,
	"decimal": bson.TypeDecimal128, "minKey": bson.TypeMinKey, "maxKey": bson.TypeMaxKey,
}

// convOpts are the options of one conversion.
type convOpts struct {
	op        string
	to        bson.Type
	subtype   byte   // binData subtype of the result
	format    string // binData <-> string encoding
	bigEndian bool
}

// convFail is a conversion failure; $convert replaces it with onError when given.
type convFail struct{ msg string }

func (c *convFail) Error() string { return c.msg }

func (o *convOpts) fail(msg string) error {
	return &convFail{msg: msg + " in $convert with no onError value"}
}

func (o *convOpts) raw(msg string) error { return &convFail{msg: msg} }

func (o *convOpts) unsupported(v bson.RawValue) error {
	return o.fail("Unsupported conversion from " + typeName(v) + " to " + value.TypeName(bson.RawValue{Type: o.to}))
}

// convert converts v (not nullish) to o.to.
func convert(v bson.RawValue, o *convOpts) (bson.RawValue, error) {
	switch o.to {
	case bson.TypeDouble:
		return convDouble(v, o)
	case bson.TypeString:
		if v.Type == bson.TypeBinary {
			return binToString(v, o)
		}
		s, err := toStringValue(o.op, v)
		if err != nil {
			return value.Missing, o.unsupported(v)
		}
		return stringValue(s), nil
	case bson.TypeBoolean:
		if v.Type == bson.TypeBoolean {
			return v, nil
		}
		return boolValue(value.Truthy(v)), nil
	case bson.TypeInt32, bson.TypeInt64:
		return convInt(v, o)
	case bson.TypeDecimal128:
		return convDecimal(v, o)
	case bson.TypeDateTime:
		return convDate(v, o)
	case bson.TypeObjectID:
		switch v.Type {
		case bson.TypeObjectID:
			return v, nil
		case bson.TypeString:
			s := v.StringValue()
			if len(s) != 24 {
				return value.Missing, o.raw("Failed to parse objectId '" + s + "' in $convert with no onError value: Invalid string length for parsing to OID, expected 24 but found " + itoa(len(s)))
			}
			oid, err := bson.ObjectIDFromHex(s)
			if err != nil {
				return value.Missing, o.fail("Failed to parse objectId '" + s + "': Invalid character found in hex string")
			}
			return bson.RawValue{Type: bson.TypeObjectID, Value: oid[:]}, nil
		}
	case bson.TypeBinary:
		return convBinary(v, o)
	}
	return value.Missing, o.unsupported(v)
}

func convDouble(v bson.RawValue, o *convOpts) (bson.RawValue, error) {
	switch v.Type {
	case bson.TypeDouble:
		return v, nil
	case bson.TypeInt32, bson.TypeInt64:
		return doubleValue(asFloat(v)), nil
	case bson.TypeDecimal128:
		d := toDec(v)
		f := d.float()
		if !d.special() && math.IsInf(f, 0) {
			return value.Missing, o.fail("Conversion would overflow target type")
		}
		return doubleValue(f), nil
	case bson.TypeBoolean:
		if v.Boolean() {
			return doubleValue(1), nil
		}
		return doubleValue(0), nil
	case bson.TypeDateTime:
		return doubleValue(float64(v.DateTime())), nil
	case bson.TypeString:
		s := v.StringValue()
		f, err := parseFloatStrict(s)
		if err != nil {
			return value.Missing, o.raw("Failed to parse number '" + s + "' in $convert with no onError value: " + err.Error())
		}
		return doubleValue(f), nil
	case bson.TypeBinary:
		_, b := v.Binary()
		switch len(b) {
		case 4:
			return doubleValue(float64(math.Float32frombits(uint32(readUint(b, o.bigEndian))))), nil
		case 8:
			return doubleValue(math.Float64frombits(readUint(b, o.bigEndian))), nil
		}
		return value.Missing, o.fail("Failed to convert binData of length " + itoa(len(b)) + " to double: expected 4 or 8 bytes")
	}
	return value.Missing, o.unsupported(v)
}

func parseFloatStrict(s string) (float64, error) {
	switch s {
	case "Infinity", "inf", "infinity":
		return math.Inf(1), nil
	case "-Infinity", "-inf", "-infinity":
		return math.Inf(-1), nil
	case "NaN", "nan":
		return math.NaN(), nil
	}
	if s == "" || strings.ContainsAny(s, "_xXpPiInN \t") {
		return 0, &convFail{"Did not consume whole string."}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		var ne *strconv.NumError
		if asNumErr(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
			return 0, &convFail{"Out of range"}
		}
		return 0, &convFail{"Did not consume whole string."}
	}
	return f, nil
}

func asNumErr(err error, out **strconv.NumError) bool {
	ne, ok := err.(*strconv.NumError)
	*out = ne
	return ok
}

func readUint(b []byte, big bool) uint64 {
	var u uint64
	for i := range b {
		j := i
		if !big {
			j = len(b) - 1 - i
		}
		u = u<<8 | uint64(b[j])
	}
	return u
}

func writeUint(u uint64, n int, big bool) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i++ {
		j := i
		if big {
			j = n - 1 - i
		}
		b[j] = byte(u >> (8 * i))
	}
	return b
}

func convInt(v bson.RawValue, o *convOpts) (bson.RawValue, error) {
	long := o.to == bson.TypeInt64
	lo, hi := int64(math.MinInt32), int64(math.MaxInt32)
	if long {
		lo, hi = math.MinInt64, math.MaxInt64
	}
	mk := func(i int64) (bson.RawValue, error) {
		if i < lo || i > hi {
			return value.Missing, o.fail("Conversion would overflow target type")
		}
		if long {
			return int64Value(i), nil
		}
		return int32Value(int32(i)), nil
	}
	switch v.Type {
	case bson.TypeInt32, bson.TypeInt64:
		return mk(asInt64(v))
	case bson.TypeBoolean:
		if v.Boolean() {
			return mk(1)
		}
		return mk(0)
	case bson.TypeDouble:
		f := v.Double()
		if math.IsNaN(f) {
			return value.Missing, o.fail("Attempt to convert NaN value to integer type")
		}
		f = math.Trunc(f)
		if f < float64(lo) || f >= -float64(lo) {
			return value.Missing, o.fail("Conversion would overflow target type")
		}
		return mk(int64(f))
	case bson.TypeDecimal128:
		d := toDec(v)
		if d.nan {
			return value.Missing, o.fail("Attempt to convert NaN value to integer type")
		}
		if d.inf != 0 {
			return value.Missing, o.fail("Conversion would overflow target type")
		}
		t := decQuantize(d, 0, roundTrunc)
		c := new(bigInt).Set(t.coef)
		if t.exp > 0 {
			if t.exp > 40 && c.Sign() != 0 {
				return value.Missing, o.fail("Conversion would overflow target type")
			}
			c.Mul(c, pow10(t.exp))
		}
		if !c.IsInt64() {
			return value.Missing, o.fail("Conversion would overflow target type")
		}
		return mk(c.Int64())
	case bson.TypeDateTime:
		if long {
			return int64Value(v.DateTime()), nil
		}
	case bson.TypeString:
		s := v.StringValue()
		if s == "" || strings.ContainsAny(s, "_ \t") {
			return value.Missing, o.raw("Failed to parse number '" + s + "' in $convert with no onError value: Did not consume whole string.")
		}
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			var ne *strconv.NumError
			if asNumErr(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
				return value.Missing, o.raw("Failed to parse number '" + s + "' in $convert with no onError value: Overflow")
			}
			return value.Missing, o.raw("Failed to parse number '" + s + "' in $convert with no onError value: Did not consume whole string.")
		}
		if i < lo || i > hi {
			return value.Missing, o.raw("Failed to parse number '" + s + "' in $convert with no onError value: Overflow")
		}
		return mk(i)
	case bson.TypeBinary:
		_, b := v.Binary()
		n := len(b)
		if n != 1 && n != 2 && n != 4 && (!long || n != 8) {
			want := "1, 2 or 4"
			if long {
				want = "1, 2, 4 or 8"
			}
			return value.Missing, o.fail("Failed to convert binData of length " + itoa(n) + " to " + value.TypeName(bson.RawValue{Type: o.to}) + ": expected " + want + " bytes")
		}
		u := readUint(b, o.bigEndian)
		shift := uint(64 - 8*n)
		return mk(int64(u<<shift) >> shift) // sign-extend
	}
	return value.Missing, o.unsupported(v)
}

func convDecimal(v bson.RawValue, o *convOpts) (bson.RawValue, error) {
	switch v.Type {
	case bson.TypeDecimal128:
		return v, nil
	case bson.TypeInt32, bson.TypeInt64, bson.TypeDouble:
		return toDec(v).value(), nil
	case bson.TypeBoolean:
		if v.Boolean() {
			return toDec(int32Value(1)).value(), nil
		}
		return toDec(int32Value(0)).value(), nil
	case bson.TypeDateTime:
		return toDec(int64Value(v.DateTime())).value(), nil
	case bson.TypeString:
		s := v.StringValue()
		d, err := bson.ParseDecimal128(s)
		if err != nil {
			return value.Missing, o.raw("Failed to parse number '" + s + "' in $convert with no onError value: Failed to parse string to decimal")
		}
		return decimalValue(d), nil
	}
	return value.Missing, o.unsupported(v)
}

func convDate(v bson.RawValue, o *convOpts) (bson.RawValue, error) {
	switch v.Type {
	case bson.TypeDateTime:
		return v, nil
	case bson.TypeInt64:
		return dateValue(v.Int64()), nil
	case bson.TypeDouble, bson.TypeDecimal128:
		f := asFloat(v)
		if math.IsNaN(f) || math.IsInf(f, 0) || f >= 9.2e18 || f <= -9.2e18 {
			return value.Missing, o.fail("Conversion would overflow target type")
		}
		return dateValue(int64(f)), nil
	case bson.TypeObjectID:
		oid := v.ObjectID()
		return dateValue(int64(binary.BigEndian.Uint32(oid[:4])) * 1000), nil
	case bson.TypeTimestamp:
		t, _ := v.Timestamp()
		return dateValue(int64(t) * 1000), nil
	case bson.TypeString:
		s := v.StringValue()
		ms, err := parseDate(s, "", nil)
		if err != nil {
			return value.Missing, o.fail(err.Error())
		}
		return dateValue(ms), nil
	}
	return value.Missing, o.unsupported(v)
}

// convBinary implements Atlas Stream Processing's conversions to binData.
func convBinary(v bson.RawValue, o *convOpts) (bson.RawValue, error) {
	switch v.Type {
	case bson.TypeBinary:
		_, b := v.Binary()
		return binaryValue(o.subtype, b), nil
	case bson.TypeInt32:
		return binaryValue(o.subtype, writeUint(uint64(uint32(v.Int32())), 4, o.bigEndian)), nil
	case bson.TypeInt64:
		return binaryValue(o.subtype, writeUint(uint64(v.Int64()), 8, o.bigEndian)), nil
	case bson.TypeDouble:
		return binaryValue(o.subtype, writeUint(math.Float64bits(v.Double()), 8, o.bigEndian)), nil
	case bson.TypeBoolean:
		b := byte(0)
		if v.Boolean() {
			b = 1
		}
		return binaryValue(o.subtype, []byte{b}), nil
	case bson.TypeString:
		s := v.StringValue()
		var (
			b   []byte
			err error
			sub = o.subtype
		)
		switch o.format {
		case "base64":
			b, err = base64.StdEncoding.DecodeString(s)
		case "base64url":
			b, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
		case "hex":
			b, err = hex.DecodeString(s)
		case "uuid":
			h := strings.ReplaceAll(s, "-", "")
			if len(s) != 36 || len(h) != 32 {
				err = errBadUUID
			} else {
				b, err = hex.DecodeString(h)
			}
			sub = bson.TypeBinaryUUID
		case "utf8":
			b = []byte(s)
		case "":
			return value.Missing, o.fail("Format must be specified when converting from 'string' to 'binData'")
		}
		if err != nil {
			return value.Missing, o.raw("Failed to parse BinData '" + s + "' in $convert with '" + o.format + "' format")
		}
		return binaryValue(sub, b), nil
	}
	return value.Missing, o.unsupported(v)
}

var errBadUUID = &convFail{"invalid UUID"}

func binToString(v bson.RawValue, o *convOpts) (bson.RawValue, error) {
	sub, b := v.Binary()
	f := o.format
	if f == "" {
		f = "base64"
		if sub == bson.TypeBinaryUUID && len(b) == 16 {
			f = "uuid"
		}
	}
	switch f {
	case "base64":
		return stringValue(base64.StdEncoding.EncodeToString(b)), nil
	case "base64url":
		return stringValue(base64.URLEncoding.EncodeToString(b)), nil
	case "hex":
		return stringValue(strings.ToUpper(hex.EncodeToString(b))), nil
	case "uuid":
		if len(b) != 16 {
			return value.Missing, o.fail("Failed to convert binData to a UUID string: expected 16 bytes, found " + itoa(len(b)))
		}
		h := hex.EncodeToString(b)
		return stringValue(h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]), nil
	case "utf8":
		if !utf8.Valid(b) {
			return value.Missing, o.fail("Failed to convert binData to a 'utf8' string: invalid UTF-8")
		}
		return stringValue(string(b)), nil
	}
	return value.Missing, o.unsupported(v)
}

// toStringValue is $toString of a scalar.
func toStringValue(op string, v bson.RawValue) (string, error) {
	switch v.Type {
	case bson.TypeString, bson.TypeSymbol:
		s, _ := str(v)
		return s, nil
	case bson.TypeInt32, bson.TypeInt64:
		return itoa64(asInt64(v)), nil
	case bson.TypeDouble:
		return formatDouble(v.Double()), nil
	case bson.TypeDecimal128:
		return v.Decimal128().String(), nil
	case bson.TypeBoolean:
		return strconv.FormatBool(v.Boolean()), nil
	case bson.TypeObjectID:
		return v.ObjectID().Hex(), nil
	case bson.TypeDateTime:
		return formatISODate(v.DateTime()), nil
	}
	return "", evalErr(op, "Unsupported conversion from "+typeName(v)+" to string")
}

// convertExpr is $convert and the $toX shorthands.
type convertExpr struct {
	op                string
	input             Expr
	to                Expr // nil when fixed
	fixed             convOpts
	onError, onNull   Expr
	format, byteOrder Expr
	hasError, hasNull bool
}

func (c *convertExpr) Eval(env *Env) (bson.RawValue, error) {
	in, err := c.input.Eval(env)
	if err != nil {
		return in, err
	}
	// mongod's order (ExpressionConvert::evaluate): a nullish input gives onNull even when
	// 'to' is nullish; a nullish 'to' gives null; a 'to' naming no type fails like a
	// conversion, so onError replaces it.
	o := c.fixed
	var toErr error
	toNull := false
	if c.to != nil {
		tv, err := c.to.Eval(env)
		if err != nil {
			return tv, err
		}
		if value.IsNullish(tv) {
			toNull = true
		} else {
			toErr = parseTo(c.op, tv, &o)
		}
	}
	for _, p := range []struct {
		e   Expr
		dst *string
	}{{c.format, &o.format}, {c.byteOrder, nil}} {
		if p.e == nil {
			continue
		}
		v, err := p.e.Eval(env)
		if err != nil {
			return v, err
		}
		s, ok := str(v)
		if !ok && !value.IsNullish(v) {
			return value.Missing, evalErr(c.op, c.op+" requires 'format' and 'byteOrder' to be strings, found: "+typeName(v))
		}
		if p.dst != nil {
			switch s {
			case "", "base64", "base64url", "hex", "uuid", "utf8":
			default:
				return value.Missing, evalErr(c.op, c.op+": invalid format '"+s+"'; expected one of base64, base64url, hex, uuid, utf8")
			}
			*p.dst = s
			continue
		}
		switch s {
		case "", "little":
		case "big":
			o.bigEndian = true
		default:
			return value.Missing, evalErr(c.op, c.op+": invalid byteOrder '"+s+"'; expected 'little' or 'big'")
		}
	}
	if value.IsNullish(in) {
		if c.hasNull {
			return c.onNull.Eval(env)
		}
		return nullValue, nil
	}
	if toNull {
		return nullValue, nil
	}
	if toErr != nil {
		if c.hasError {
			return c.onError.Eval(env)
		}
		return value.Missing, toErr
	}
	r, err := convert(in, &o)
	if err != nil {
		if c.hasError {
			return c.onError.Eval(env)
		}
		var cf *convFail
		if ce, ok := err.(*convFail); ok {
			cf = ce
			return value.Missing, evalErr(c.op, cf.msg)
		}
		return value.Missing, err
	}
	return r, nil
}

// parseTo reads 'to': a type name, a type number, or {type, subtype}.
func parseTo(op string, v bson.RawValue, o *convOpts) error {
	if v.Type == bson.TypeEmbeddedDocument {
		t := value.Lookup(v.Value, "type")
		if t.Type == 0 {
			return evalErr(op, op+" requires 'to.type' to be specified")
		}
		if err := parseTo(op, t, o); err != nil {
			return err
		}
		if st := value.Lookup(v.Value, "subtype"); st.Type != 0 {
			n, ok := intArg(st)
			if !ok || n < 0 || n > 255 {
				return evalErr(op, op+": 'to.subtype' must be an integer between 0 and 255, found: "+st.String())
			}
			o.subtype = byte(n)
		}
		return nil
	}
	if s, ok := str(v); ok {
		t, ok := typeCodes[s]
		if !ok {
			return evalErr(op, "Unknown type name: "+s)
		}
		o.to = t
		return nil
	}
	if value.IsNumber(v) {
		n, ok := intArg(v)
		if ok {
			for _, t := range typeCodes {
				if int64(int8(t)) == n || (t == bson.TypeMaxKey && n == 127) {
					o.to = t
					return nil
				}
			}
		}
		return evalErr(op, "In "+op+", numeric value for 'to' does not correspond to a BSON type: "+formatNum(v))
	}
	return evalErr(op, op+"'s 'to' argument must be a string or number, but is "+typeName(v))
}

func compileConvert(op string, args bson.RawValue, sc *scope) (Expr, error) {
	m, err := objArgs(op, args, "input", "to", "onError", "onNull", "format", "byteOrder")
	if err != nil {
		return nil, err
	}
	c := &convertExpr{op: op, fixed: convOpts{op: op}}
	if _, ok := m["input"]; !ok {
		return nil, compileErr(op, "Missing 'input' parameter to $convert")
	}
	if _, ok := m["to"]; !ok {
		return nil, compileErr(op, "Missing 'to' parameter to $convert")
	}
	if c.input, err = compile(m["input"], sc); err != nil {
		return nil, err
	}
	if tv := m["to"]; tv.Type == bson.TypeString && !strings.HasPrefix(tv.StringValue(), "$") || value.IsNumber(tv) {
		if err := parseTo(op, tv, &c.fixed); err != nil {
			return nil, compileErr(op, err.(*EvalError).Msg)
		}
	} else if c.to, err = compile(tv, sc); err != nil {
		return nil, err
	}
	if c.onError, err = optExpr(m, "onError", sc); err != nil {
		return nil, err
	}
	if c.onNull, err = optExpr(m, "onNull", sc); err != nil {
		return nil, err
	}
	if c.format, err = optExpr(m, "format", sc); err != nil {
		return nil, err
	}
	if c.byteOrder, err = optExpr(m, "byteOrder", sc); err != nil {
		return nil, err
	}
	c.hasError, c.hasNull = c.onError != nil, c.onNull != nil
	return c, nil
}

// compileTo builds $toBool, $toInt, ... : $convert with a fixed 'to' and no onError.
func compileTo(to bson.Type) compileFunc {
	return func(op string, args bson.RawValue, sc *scope) (Expr, error) {
		es, err := countArgs(op, args, sc, 1, 1)
		if err != nil {
			return nil, err
		}
		return &convertExpr{op: op, input: es[0], fixed: convOpts{op: op, to: to}}, nil
	}
}
