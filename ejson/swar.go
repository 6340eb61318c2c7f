package ejson

import (
	"bytes"
	"encoding/binary"
)

// SWAR ("SIMD within a register") constants: a byte value repeated in all eight lanes.
const (
	lanes01 = 0x0101010101010101
	lanes80 = 0x8080808080808080
)

// skipPlain returns the index of the first byte at or after i that a JSON string cannot hold
// as is: a control character (< 0x20), '"', '\\', or a byte of a multi-byte UTF-8 sequence
// (>= 0x80). Strings are most of a JSON payload's bytes, so it looks at the first 16 bytes a
// word at a time (special), which is all a short string needs; past them it finds the next '"'
// and '\\' with bytes.IndexByte (vectorised in the standard library's assembly) and checks the
// bytes before them for the rest with asciiRun.
func skipPlain(s []byte, i int) int {
	for n := 0; n < 2; n++ {
		if i+8 > len(s) {
			return skipBytes(s, i)
		}
		if special(binary.LittleEndian.Uint64(s[i:])) != 0 {
			return skipBytes(s, i)
		}
		i += 8
	}
	run := s[i:]
	if q := bytes.IndexByte(run, '"'); q >= 0 {
		run = run[:q]
	}
	if b := bytes.IndexByte(run, '\\'); b >= 0 {
		run = run[:b]
	}
	return i + asciiRun(run)
}

// skipBytes is skipPlain a byte at a time, for the last bytes of a run.
func skipBytes(s []byte, i int) int {
	for i < len(s) && plain[s[i]] {
		i++
	}
	return i
}

// special is non-zero when some byte of w is below 0x20, '"', '\\' or at least 0x80.
//
// For a word w, (w - 0x01…01*n) & ^w & 0x80…80 is non-zero exactly when some byte of w is
// below n (n <= 0x80), and a byte equal to v is a zero byte of w ^ (0x01…01*v): the classic
// bit tricks of "Bit Twiddling Hacks" (Sean Eron Anderson, Stanford). Or-ing w itself in
// catches the bytes >= 0x80 and makes the & ^w of the first test unnecessary.
func special(w uint64) uint64 {
	q := w ^ (lanes01 * '"')
	b := w ^ (lanes01 * '\\')
	return ((w - lanes01*0x20) | w | (q-lanes01)&^q | (b-lanes01)&^b) & lanes80
}

// asciiRun returns the length of the longest prefix of s whose bytes are all in 0x20..0x7f,
// 32 bytes at a time: (w - 0x20…20) | w has a lane's top bit set exactly when some lane is
// below 0x20 or at least 0x80 (a borrow only leaves a lane that is itself below 0x20).
func asciiRun(s []byte) int {
	i := 0
	for ; i+32 <= len(s); i += 32 {
		b := s[i : i+32 : i+32]
		w0, w1 := binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:])
		w2, w3 := binary.LittleEndian.Uint64(b[16:]), binary.LittleEndian.Uint64(b[24:])
		if ((w0-lanes01*0x20)|w0|(w1-lanes01*0x20)|w1|(w2-lanes01*0x20)|w2|(w3-lanes01*0x20)|w3)&lanes80 != 0 {
			break
		}
	}
	for ; i+8 <= len(s); i += 8 {
		w := binary.LittleEndian.Uint64(s[i:])
		if ((w-lanes01*0x20)|w)&lanes80 != 0 {
			break
		}
	}
	for i < len(s) && s[i] >= 0x20 && s[i] < 0x80 {
		i++
	}
	return i
}
