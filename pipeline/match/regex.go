package match

import (
	"unsafe"

	"github.com/spi-streams/spi/pipeline/pcre"
)

// compileRegex compiles a MongoDB regex; the message is empty on success.
func compileRegex(pattern, flags string) (*pcre.Regexp, string) {
	re, err := pcre.Compile(pattern, flags)
	if err != nil {
		return nil, err.Error()
	}
	return re, ""
}

// limitPanic carries a regex match that hit pcre's limit out of a predicate, which has no
// error result, to matcher.Match, which returns it as the document's error.
type limitPanic struct{ err error }

// reMatch runs re on s; a match over the limit panics with limitPanic.
func reMatch(re *pcre.Regexp, s string) bool {
	ok, err := re.MatchString(s)
	if err != nil {
		panic(limitPanic{err})
	}
	return ok
}

// reMatchBytes is reMatch on the bytes of a BSON string, without copying them: the engine
// reads the subject during the call only.
func reMatchBytes(re *pcre.Regexp, b []byte) bool {
	if len(b) == 0 {
		return reMatch(re, "")
	}
	return reMatch(re, unsafe.String(&b[0], len(b)))
}
