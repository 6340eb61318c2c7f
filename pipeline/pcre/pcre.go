// Package pcre compiles MongoDB regular expressions (PCRE syntax with the options i, m, s, x
// and u) to Go's RE2, which runs in linear time so no pattern can hang a stream. PCRE-only
// constructs (lookaround, backreferences, atomic groups, possessive quantifiers) are refused
// with a message that says so. The query language and the expression language share it.
package pcre

import (
	"errors"
	"regexp"
	"strings"
)

// MaxLen is mongod's limit on a pattern's length.
const MaxLen = 32761

// Compile translates pattern with MongoDB regex options to a Go regexp. Errors are worded for
// users, without an operator name.
func Compile(pattern, options string) (*regexp.Regexp, error) {
	if len(pattern) > MaxLen {
		return nil, errors.New("regular expression is too long")
	}
	if strings.IndexByte(pattern, 0) >= 0 {
		return nil, errors.New("regular expression cannot contain an embedded null byte")
	}
	var prefix []byte
	extended := false
	for i := 0; i < len(options); i++ {
		switch f := options[i]; f {
		case 'i', 'm', 's':
			if !strings.ContainsRune(string(prefix), rune(f)) {
				prefix = append(prefix, f)
			}
		case 'x':
			extended = true
		case 'u':
			// Go's regexp is always UTF-8 aware.
		default:
			return nil, errors.New("invalid flag in regex options: " + string(rune(f)))
		}
	}
	if extended {
		pattern = StripExtended(pattern)
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
		return nil, errors.New(msg)
	}
	return re, nil
}

// StripExtended applies PCRE's x option: whitespace and #-comments outside character classes
// are not part of the pattern.
func StripExtended(p string) string {
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
