// Package bsoncheck checks untrusted bytes are well-formed BSON, completely: the wire layer
// checks every request document with it, and the pipeline engine every input document, so
// that the code after them (and the driver's accessors, which panic on malformed values) can
// read documents without re-checking.
package bsoncheck

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// MaxDepth is the deepest nesting of documents and arrays a request may carry; mongod uses
// the same default.
const MaxDepth = 200

var errTooDeep = errors.New("BSON nesting exceeds the maximum depth of 200")

// Validate checks that b is exactly one well-formed BSON document: every length agrees with
// its content, every element type is known, strings and keys are terminated, and nested
// documents and arrays are valid too. The driver's bsoncore validation is shallow (it checks an
// embedded document's length, not its elements), so untrusted bytes are checked here once, at
// the edge, and later code may read the document without re-checking.
func Validate(b []byte) error {
	_, err := ValidateHas(b, "")
	return err
}

// ValidateHas is Validate that also reports whether the document has the top-level field
// key (never for ""), so a caller about to set a field learns it in the same pass.
func ValidateHas(b []byte, key string) (bool, error) {
	n, found, err := validateDocument(b, 0, key)
	if err != nil {
		return false, err
	}
	if n != len(b) {
		return false, fmt.Errorf("document length %d does not match the %d bytes given", n, len(b))
	}
	return found, nil
}

// fixedSize is the size of each fixed-size value type, 0 for the others.
var fixedSize = [256]int{
	0x01: 8, 0x09: 8, 0x11: 8, 0x12: 8, // double, datetime, timestamp, int64
	0x10: 4,  // int32
	0x13: 16, // decimal128
	0x07: 12, // ObjectId
}

// validateDocument validates the document at the start of b and returns its length, and
// whether it has the field key at its top level.
func validateDocument(b []byte, depth int, key string) (int, bool, error) {
	if depth > MaxDepth {
		return 0, false, errTooDeep
	}
	if len(b) < 5 {
		return 0, false, fmt.Errorf("document needs at least 5 bytes, have %d", len(b))
	}
	n := int(int32(binary.LittleEndian.Uint32(b)))
	if n < 5 || n > len(b) {
		return 0, false, fmt.Errorf("document length %d is outside 5..%d", n, len(b))
	}
	if b[n-1] != 0 {
		return 0, false, errors.New("document does not end with a null byte")
	}
	found := false
	pos := 4
	end := n - 1
	for pos < end {
		t := b[pos]
		pos++
		k := pos
		for k < end && b[k] != 0 {
			k++
		}
		if k == end {
			return 0, false, errors.New("element name is not null-terminated")
		}
		if key != "" && !found && string(b[pos:k]) == key {
			found = true
		}
		pos = k + 1
		if size := fixedSize[t]; size > 0 {
			if end-pos < size {
				return 0, false, fmt.Errorf("value of type 0x%02x needs %d bytes, have %d", t, size, end-pos)
			}
			pos += size
			continue
		}
		size, err := validateValue(t, b[pos:end], depth)
		if err != nil {
			return 0, false, err
		}
		pos += size
	}
	if pos != end {
		return 0, false, errors.New("element extends past the end of its document")
	}
	return n, found, nil
}

// validateValue validates one value of type t at the start of b and returns its size.
func validateValue(t byte, b []byte, depth int) (int, error) {
	if size := fixedSize[t]; size > 0 {
		if len(b) < size {
			return 0, fmt.Errorf("value of type 0x%02x needs %d bytes, have %d", t, size, len(b))
		}
		return size, nil
	}
	switch t {
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
		n, _, err := validateDocument(b, depth+1, "")
		return n, err
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
		d, _, err := validateDocument(b[4+s:total], depth+1, "")
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
