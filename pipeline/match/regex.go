package match

import (
	"regexp"
	"strings"
)

// maxRegexLen is mongod's limit on a pattern's length.
const maxRegexLen = 32761

// compileRegex translates a PCRE pattern with MongoDB options (i, m, s, x, u) to Go's RE2.
// RE2 runs in linear time, so no pattern can hang a stream; PCRE-only constructs (lookaround,
// backreferences, possessive quantifiers, atomic groups) are rejected with a clear message.
func compileRegex(pattern, flags string) (*regexp.Regexp, string) {
	if len(pattern) > maxRegexLen {
		return nil, "regular expression is too long"
	}
	if strings.IndexByte(pattern, 0) >= 0 {
		return nil, "regular expression cannot contain an embedded null byte"
	}
	var prefix []byte
	extended := false
	for i := 0; i < len(flags); i++ {
		switch f := flags[i]; f {
		case 'i', 'm', 's':
			if !containsByte(prefix, f) {
				prefix = append(prefix, f)
			}
		case 'x':
			extended = true
		case 'u':
			// Go's regexp is always UTF-8 aware.
		default:
			return nil, "invalid flag in regex options: " + string(rune(f))
		}
	}
	if extended {
		pattern = stripExtended(pattern)
	}
	if len(prefix) > 0 {
		pattern = "(?" + string(prefix) + ")" + pattern
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		msg := "invalid regular expression: " + err.Error()
		if pcreOnly(pattern, err.Error()) {
			msg += " (lookaround, backreferences, atomic groups and possessive quantifiers are not supported)"
		}
		return nil, msg
	}
	return re, ""
}

func containsByte(b []byte, c byte) bool {
	for _, x := range b {
		if x == c {
			return true
		}
	}
	return false
}

// stripExtended applies PCRE's x option: whitespace and #-comments outside character classes
// are not part of the pattern.
func stripExtended(p string) string {
	var b strings.Builder
	inClass := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\' && i+1 < len(p):
			b.WriteByte(c)
			b.WriteByte(p[i+1])
			i++
			continue
		case inClass:
			if c == ']' {
				inClass = false
			}
		case c == '[':
			inClass = true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			continue
		case c == '#':
			for i < len(p) && p[i] != '\n' {
				i++
			}
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// pcreOnly reports whether a compile failure comes from PCRE syntax RE2 lacks.
func pcreOnly(pattern, err string) bool {
	for _, s := range []string{"invalid or unsupported Perl syntax", "invalid escape sequence", "invalid named capture", "invalid nested repetition operator"} {
		if strings.Contains(err, s) {
			return true
		}
	}
	for _, s := range []string{"(?=", "(?!", "(?<=", "(?<!", "(?>"} {
		if strings.Contains(pattern, s) {
			return true
		}
	}
	return false
}
