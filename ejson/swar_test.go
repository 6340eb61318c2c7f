package ejson

import (
	"math/rand/v2"
	"testing"
)

// skipPlain stops where a byte-by-byte scan stops, for every byte value at every position of a
// word.
func TestSkipPlain(t *testing.T) {
	naive := func(s []byte, i int) int {
		for i < len(s) && plain[s[i]] {
			i++
		}
		return i
	}
	r := rand.New(rand.NewPCG(1, 2))
	for c := range 256 {
		for n := 1; n <= 80; n++ {
			for at := range n {
				s := make([]byte, n)
				for j := range s {
					s[j] = byte('a' + r.IntN(26))
				}
				s[at] = byte(c)
				for start := range min(n, 18) {
					if got, want := skipPlain(s, start), naive(s, start); got != want {
						t.Fatalf("byte %#x at %d of %d from %d: %d, want %d", c, at, n, start, got, want)
					}
				}
			}
		}
	}
}
