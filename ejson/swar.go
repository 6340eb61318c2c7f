package ejson

import "encoding/binary"

// SWAR ("SIMD within a register") constants: a byte value repeated in all eight lanes.
const (
	lanes01 = 0x0101010101010101
	lanes80 = 0x8080808080808080
)

// skipPlain returns the index of the first byte at or after i that a JSON string cannot hold
// as is: a control character (< 0x20), '"', '\\', or a byte of a multi-byte UTF-8 sequence
// (>= 0x80). It tests eight bytes at a time; strings are most of a JSON payload's bytes.
//
// For a word w, (w - 0x01…01*n) & ^w & 0x80…80 is non-zero exactly when some byte of w is
// below n (n <= 0x80), and a byte equal to v is a zero byte of w ^ (0x01…01*v): the classic
// bit tricks of "Bit Twiddling Hacks" (Sean Eron Anderson, Stanford).
func skipPlain(s []byte, i int) int {
	for ; i+8 <= len(s); i += 8 {
		w := binary.LittleEndian.Uint64(s[i:])
		q := w ^ (lanes01 * '"')
		b := w ^ (lanes01 * '\\')
		below20 := (w - lanes01*0x20) &^ w
		quote := (q - lanes01) &^ q
		backslash := (b - lanes01) &^ b
		if (below20|quote|backslash|w)&lanes80 != 0 {
			break // a byte of these eight needs a look: the loop below finds it
		}
	}
	for i < len(s) && plain[s[i]] {
		i++
	}
	return i
}
