package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// MaxBSONDepth is the deepest nesting of documents and arrays a request may carry; mongod uses
// the same default.
const MaxBSONDepth = 200

var errBSONTooDeep = errors.New("BSON nesting exceeds the maximum depth of 200")

// ValidateBSON checks that b is exactly one well-formed BSON document: every length agrees with
// its content, every element type is known, strings and keys are terminated, and nested
// documents and arrays are valid too. The driver's bsoncore validation is shallow (it checks an
// embedded document's length, not its elements), so untrusted bytes are checked here once, at
// the edge, and later code may read the document without re-checking.
func ValidateBSON(b []byte) error {
	n, err := validateDocument(b, 0)
	if err != nil {
		return err
	}
	if n != len(b) {
		return fmt.Errorf("document length %d does not match the %d bytes given", n, len(b))
	}
	return nil
}

// validateDocument validates the document at the start of b and returns its length.
func validateDocument(b []byte, depth int) (int, error) {
	if depth > MaxBSONDepth {
		return 0, errBSONTooDeep
	}
	if len(b) < 5 {
		return 0, fmt.Errorf("document needs at least 5 bytes, have %d", len(b))
	}
	n := int(int32(binary.LittleEndian.Uint32(b)))
	if n < 5 || n > len(b) {
		return 0, fmt.Errorf("document length %d is outside 5..%d", n, len(b))
	}
	if b[n-1] != 0 {
		return 0, errors.New("document does not end with a null byte")
	}
	pos := 4
	end := n - 1
	for pos < end {
		t := b[pos]
		pos++
		k := cstringEnd(b[pos:end])
		if k < 0 {
			return 0, errors.New("element name is not null-terminated")
		}
		pos += k + 1
		size, err := validateValue(t, b[pos:end], depth)
		if err != nil {
			return 0, err
		}
		pos += size
	}
	if pos != end {
		return 0, errors.New("element extends past the end of its document")
	}
	return n, nil
}

// validateValue validates one value of type t at the start of b and returns its size.
func validateValue(t byte, b []byte, depth int) (int, error) {
	fixed := func(n int) (int, error) {
		if len(b) < n {
			return 0, fmt.Errorf("value of type 0x%02x needs %d bytes, have %d", t, n, len(b))
		}
		return n, nil
	}
	switch t {
	case 0x01, 0x09, 0x11, 0x12: // double, datetime, timestamp, int64
		return fixed(8)
	case 0x10: // int32
		return fixed(4)
	case 0x13: // decimal128
		return fixed(16)
	case 0x07: // ObjectId
		return fixed(12)
	case 0x06, 0x0A, 0xFF, 0x7F: // undefined, null, minKey, maxKey
		return 0, nil
	case 0x08: // bool
		if len(b) < 1 || b[0] > 1 {
			return 0, errors.New("boolean value must be 0 or 1")
		}
		return 1, nil
	case 0x02, 0x0D, 0x0E: // string, JavaScript code, symbol
		return validateString(b)
	case 0x03, 0x04: // document, array
		return validateDocument(b, depth+1)
	case 0x05: // binary
		if len(b) < 5 {
			return 0, errors.New("binary value is truncated")
		}
		n := int(int32(binary.LittleEndian.Uint32(b)))
		if n < 0 || n > len(b)-5 {
			return 0, fmt.Errorf("binary length %d is outside 0..%d", n, len(b)-5)
		}
		if b[4] == 0x02 { // the old binary subtype nests a second length
			if n < 4 || int(int32(binary.LittleEndian.Uint32(b[5:]))) != n-4 {
				return 0, errors.New("binary subtype 2 has an inconsistent inner length")
			}
		}
		return 5 + n, nil
	case 0x0B: // regular expression: pattern and options, both C strings
		p := cstringEnd(b)
		if p < 0 {
			return 0, errors.New("regex pattern is not null-terminated")
		}
		o := cstringEnd(b[p+1:])
		if o < 0 {
			return 0, errors.New("regex options are not null-terminated")
		}
		return p + 1 + o + 1, nil
	case 0x0C: // DBPointer: string then ObjectId
		n, err := validateString(b)
		if err != nil {
			return 0, err
		}
		if len(b)-n < 12 {
			return 0, errors.New("DBPointer is truncated")
		}
		return n + 12, nil
	case 0x0F: // code with scope: total length, string, document
		if len(b) < 4 {
			return 0, errors.New("code with scope is truncated")
		}
		total := int(int32(binary.LittleEndian.Uint32(b)))
		if total < 14 || total > len(b) {
			return 0, fmt.Errorf("code with scope length %d is outside 14..%d", total, len(b))
		}
		s, err := validateString(b[4:total])
		if err != nil {
			return 0, err
		}
		d, err := validateDocument(b[4+s:total], depth+1)
		if err != nil {
			return 0, err
		}
		if 4+s+d != total {
			return 0, errors.New("code with scope length does not match its content")
		}
		return total, nil
	default:
		return 0, fmt.Errorf("unknown BSON element type 0x%02x", t)
	}
}

func validateString(b []byte) (int, error) {
	if len(b) < 4 {
		return 0, errors.New("string is truncated")
	}
	n := int(int32(binary.LittleEndian.Uint32(b)))
	if n < 1 || n > len(b)-4 {
		return 0, fmt.Errorf("string length %d is outside 1..%d", n, len(b)-4)
	}
	if b[4+n-1] != 0 {
		return 0, errors.New("string is not null-terminated")
	}
	return 4 + n, nil
}

func cstringEnd(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return -1
}
