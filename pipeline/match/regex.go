package match

import (
	"regexp"

	"github.com/spi-streams/spi/pipeline/pcre"
)

// compileRegex compiles a MongoDB regex; the message is empty on success.
func compileRegex(pattern, flags string) (*regexp.Regexp, string) {
	re, err := pcre.Compile(pattern, flags)
	if err != nil {
		return nil, err.Error()
	}
	return re, ""
}
