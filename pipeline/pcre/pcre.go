// Package pcre compiles MongoDB regular expressions (PCRE2 syntax with the options i, m, s, x
// and u, as mongod compiles them) for the query and expression languages, which share it.
//
// The engine is github.com/dlclark/regexp2, a backtracking engine with lookaround,
// backreferences, atomic groups, possessive quantifiers, \Q...\E, conditionals and \Z. Its
// syntax is .NET's; Compile translates the PCRE2 constructs where the two differ, so that a
// pattern means what it means to mongod:
//   - \d, \w, \s (outside a character class and inside one) and [[:alpha:]]-style classes
//     are ASCII, as in PCRE2 without UCP; \h, \H, \v, \V are PCRE2's horizontal and vertical
//     white space; \x{hhhh} is a code point; an escaped non-alphanumeric character and "\_"
//     are literals; (?P<name>...), (?P=name) and \g{n} are rewritten to .NET syntax.
//   - ^ in multiline mode does not match after a newline that ends the subject (PCRE2), while
//     .NET's does.
//   - $ (without m) matches at the end and before a final newline in both.
//
// A backtracking engine can take exponential time on some patterns (ReDoS). Every match is
// bounded by MatchTimeout and by a backtracking stack limit; a match that hits either returns
// an error wrapping ErrLimit, which the callers turn into a per-document error. mongod bounds
// PCRE2 the same way with its match limit.
package pcre

import (
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dlclark/regexp2/v2"
)

// MaxLen is mongod's limit on a pattern's length.
const MaxLen = 32761

// MatchTimeout bounds the time of one match. regexp2 checks it with a clock goroutine of its
// own that stops by itself shortly after the last bounded match.
const MatchTimeout = 500 * time.Millisecond

// maxStack bounds the backtracking stack of one match (integer slots).
const maxStack = 1 << 20

// StopClock ends regexp2's clock goroutine, which bounded matches start and which otherwise
// ends by itself about a second after the last one; it returns once the goroutine is gone.
// For owners that must leave no goroutine behind (tests with goleak, a shutdown).
func StopClock() { regexp2.StopTimeoutClock() }

// ErrLimit is the error of a match that exceeded MatchTimeout or the backtracking limit.
var ErrLimit = errors.New("regular expression exceeded its match limit (the pattern backtracks too much on this input)")

// Regexp is a compiled MongoDB regular expression. It is safe for concurrent use.
type Regexp struct {
	re *regexp2.Regexp
	// literal is set when the pattern is plain text with no option: matching is then a
	// substring search.
	literal    string
	isLiteral  bool
	numCapture int
}

// Compile translates pattern with MongoDB regex options. Errors are worded for users,
// without an operator name.
func Compile(pattern, options string) (*Regexp, error) {
	if len(pattern) > MaxLen {
		return nil, errors.New("regular expression is too long")
	}
	if strings.IndexByte(pattern, 0) >= 0 {
		return nil, errors.New("regular expression cannot contain an embedded null byte")
	}
	if !utf8.ValidString(pattern) {
		return nil, errors.New("regular expression is not valid UTF-8")
	}
	var opts regexp2.RegexOptions
	multiline := false
	for i := 0; i < len(options); i++ {
		switch f := options[i]; f {
		case 'i':
			opts |= regexp2.IgnoreCase
		case 'm':
			opts |= regexp2.Multiline
			multiline = true
		case 's':
			opts |= regexp2.Singleline
		case 'x':
			pattern = StripExtended(pattern)
		case 'u':
			// Patterns and subjects are always UTF-8.
		default:
			return nil, errors.New("invalid flag in regex options: " + string(rune(f)))
		}
	}
	if opts == 0 && isPlain(pattern) {
		return &Regexp{literal: pattern, isLiteral: true}, nil
	}
	translated, err := translate(pattern, multiline || inlineMultiline(pattern))
	if err != nil {
		return nil, errors.New("invalid regular expression: " + err.Error())
	}
	re, err := regexp2.Compile(translated, opts, regexp2.OptionMaintainCaptureOrder(),
		regexp2.OptionMaxBacktrackingStackSize(maxStack))
	if err != nil {
		msg := err.Error()
		msg = strings.TrimPrefix(msg, "error parsing regexp: ")
		return nil, errors.New("invalid regular expression: " + msg)
	}
	re.MatchTimeout = MatchTimeout
	return &Regexp{re: re, numCapture: len(re.GetGroupNumbers()) - 1}, nil
}

// isPlain reports whether p has no metacharacter, so it matches as a substring.
func isPlain(p string) bool {
	return !strings.ContainsAny(p, `\^$.|?*+()[]{}#`) && !strings.ContainsAny(p, " \t\n\r\f\v")
}

func limitErr(err error) error {
	if err == nil {
		return nil
	}
	return ErrLimit
}

// MatchString reports whether s contains a match. The error wraps ErrLimit.
func (r *Regexp) MatchString(s string) (bool, error) {
	if r.isLiteral {
		return strings.Contains(s, r.literal), nil
	}
	ok, err := r.re.MatchString(s)
	return ok, limitErr(err)
}

// NumSubexp is the number of capture groups.
func (r *Regexp) NumSubexp() int { return r.numCapture }

// FindStringSubmatchIndex returns the byte offsets of the first match and of each capture
// group (-1, -1 for a group that did not take part), as regexp.FindStringSubmatchIndex does;
// nil when there is no match.
func (r *Regexp) FindStringSubmatchIndex(s string) ([]int, error) {
	all, err := r.FindAllStringSubmatchIndex(s, 1)
	if err != nil || len(all) == 0 {
		return nil, err
	}
	return all[0], nil
}

// FindAllStringSubmatchIndex returns up to n matches (all when n < 0), each as
// FindStringSubmatchIndex does. After an empty match the search resumes one character on.
func (r *Regexp) FindAllStringSubmatchIndex(s string, n int) ([][]int, error) {
	var out [][]int
	if r.isLiteral {
		from := 0
		for n < 0 || len(out) < n {
			i := strings.Index(s[from:], r.literal)
			if i < 0 {
				break
			}
			out = append(out, []int{from + i, from + i + len(r.literal)})
			from += i + len(r.literal)
			if len(r.literal) == 0 {
				if from >= len(s) {
					break
				}
				_, w := utf8.DecodeRuneInString(s[from:])
				from += w
			}
		}
		return out, nil
	}
	m, err := r.re.FindStringMatch(s)
	for err == nil && m != nil && (n < 0 || len(out) < n) {
		groups := m.Groups()
		loc := make([]int, 0, 2*len(groups))
		for _, g := range groups {
			if len(g.Captures) == 0 {
				loc = append(loc, -1, -1)
				continue
			}
			start, length := g.ByteRange()
			loc = append(loc, start, start+length)
		}
		out = append(out, loc)
		m, err = r.re.FindNextMatch(m)
	}
	return out, limitErr(err)
}

// inlineMultiline reports whether the pattern may turn on m itself, as in (?m) or (?im:...).
func inlineMultiline(p string) bool {
	for rest := p; ; {
		i := strings.Index(rest, "(?")
		if i < 0 {
			return false
		}
		rest = rest[i+2:]
		for j := 0; j < len(rest) && (rest[j] >= 'a' && rest[j] <= 'z' || rest[j] >= 'A' && rest[j] <= 'Z'); j++ {
			if rest[j] == 'm' {
				return true
			}
		}
	}
}

// ASCII classes of PCRE2 without UCP.
const (
	digitSet = `0-9`
	wordSet  = `A-Za-z0-9_`
	spaceSet = `\t\n\x0B\f\r `
	hspace   = `\t \xA0\u1680\u180E\u2000-\u200A\u202F\u205F\u3000`
	vspace   = `\n\x0B\f\r\x85\u2028\u2029`
)

var posixClasses = map[string]string{
	"alnum": `A-Za-z0-9`, "alpha": `A-Za-z`, "ascii": `\x00-\x7F`, "blank": ` \t`,
	"cntrl": `\x00-\x1F\x7F`, "digit": `0-9`, "graph": `!-~`, "lower": `a-z`,
	"print": ` -~`, "punct": `!-/:-@\[-` + "`" + `{-~`, "space": spaceSet, "upper": `A-Z`,
	"word": wordSet, "xdigit": `0-9A-Fa-f`,
}

// translate rewrites PCRE2 syntax into regexp2's where the meaning differs (see the package
// comment). multiline says ^ may be in multiline mode.
func translate(p string, multiline bool) (string, error) {
	var b strings.Builder
	b.Grow(len(p) + 16)
	inClass := false
	classStart := 0 // index in p just after '[' or '[^'
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\':
			if i+1 >= len(p) {
				return "", errors.New("\\ at end of pattern")
			}
			n, err := escape(&b, p, i, inClass)
			if err != nil {
				return "", err
			}
			i += n - 1
		case inClass:
			switch {
			case c == ']' && i > classStart:
				inClass = false
				b.WriteByte(c)
			case c == ']':
				// First in the class, as in []a]: a literal in PCRE2.
				b.WriteString(`\]`)
			case c == '[' && i+1 < len(p) && p[i+1] == ':':
				end := strings.Index(p[i+2:], ":]")
				name := ""
				if end >= 0 {
					name = p[i+2 : i+2+end]
				}
				if set, ok := posixClasses[name]; ok {
					b.WriteString(set)
					i += 2 + end + 1
					continue
				}
				if end >= 0 && strings.HasPrefix(name, "^") {
					return "", errors.New("negated POSIX class [:" + name + ":] is not supported")
				}
				b.WriteString(`\[`)
			case c == '[':
				b.WriteString(`\[`)
			default:
				b.WriteByte(c)
			}
		case c == '[':
			inClass = true
			b.WriteByte(c)
			classStart = i + 1
			if classStart < len(p) && p[classStart] == '^' {
				b.WriteByte('^')
				i++
				classStart++
			}
		case c == '^' && multiline:
			// PCRE2: no line start after a newline that ends the subject.
			b.WriteString(`(?:^(?!(?<=\n)\z))`)
		case c == '(' && strings.HasPrefix(p[i:], "(?P<"):
			b.WriteString("(?<")
			i += 3
		case c == '(' && strings.HasPrefix(p[i:], "(?P="):
			end := strings.IndexByte(p[i:], ')')
			if end < 0 {
				return "", errors.New("missing ) after (?P=")
			}
			b.WriteString(`\k<` + p[i+4:i+end] + `>`)
			i += end
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// escape translates the escape sequence at p[i] ('\\') and returns how many bytes it used.
func escape(b *strings.Builder, p string, i int, inClass bool) (int, error) {
	c := p[i+1]
	class := func(set string, negate bool) {
		switch {
		case inClass && !negate:
			b.WriteString(set)
		case inClass:
			// A negated class inside a class: keep regexp2's own (Unicode) meaning.
			b.WriteString(p[i : i+2])
		case negate:
			b.WriteString("[^" + set + "]")
		default:
			b.WriteString("[" + set + "]")
		}
	}
	switch c {
	case 'd', 'D':
		class(digitSet, c == 'D')
	case 'w', 'W':
		class(wordSet, c == 'W')
	case 's', 'S':
		class(spaceSet, c == 'S')
	case 'h', 'H':
		class(hspace, c == 'H')
	case 'v', 'V':
		class(vspace, c == 'V')
	case 'Q':
		end := strings.Index(p[i+2:], `\E`)
		lit := p[i+2:]
		used := len(p) - i
		if end >= 0 {
			lit = p[i+2 : i+2+end]
			used = 2 + end + 2
		}
		for _, r := range lit {
			writeLiteral(b, r)
		}
		return used, nil
	case 'E':
		// A stray \E is ignored by PCRE2.
	case 'x':
		if i+2 < len(p) && p[i+2] == '{' {
			end := strings.IndexByte(p[i+3:], '}')
			if end < 0 {
				return 0, errors.New("missing } in \\x{...}")
			}
			n, err := strconv.ParseUint(p[i+3:i+3+end], 16, 32)
			if err != nil || n > utf8.MaxRune {
				return 0, errors.New("invalid code point in \\x{" + p[i+3:i+3+end] + "}")
			}
			writeLiteral(b, rune(n))
			return 3 + end + 1, nil
		}
		b.WriteString(p[i : i+2])
	case 'g':
		// \g{n}, \gn: a backreference by number.
		rest := p[i+2:]
		if strings.HasPrefix(rest, "{") {
			end := strings.IndexByte(rest, '}')
			if end > 1 {
				if _, err := strconv.Atoi(rest[1:end]); err == nil && rest[1] != '-' {
					b.WriteString(`\` + rest[1:end])
					return 2 + end + 1, nil
				}
				b.WriteString(`\k<` + rest[1:end] + `>`)
				return 2 + end + 1, nil
			}
		}
		j := 0
		for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
			j++
		}
		if j > 0 {
			b.WriteString(`\` + rest[:j])
			return 2 + j, nil
		}
		return 0, errors.New("a numbered reference must not be zero or negative (\\g)")
	case '_':
		b.WriteByte('_')
	case 'N':
		if inClass {
			return 0, errors.New("\\N is not supported in a class")
		}
		b.WriteString(`[^\n]`)
	default:
		if c >= utf8.RuneSelf {
			r, w := utf8.DecodeRuneInString(p[i+1:])
			writeLiteral(b, r)
			return 1 + w, nil
		}
		b.WriteString(p[i : i+2])
	}
	return 2, nil
}

// writeLiteral writes r so that it matches itself, inside or outside a class.
func writeLiteral(b *strings.Builder, r rune) {
	switch {
	case r < utf8.RuneSelf && strings.ContainsRune(`\^$.|?*+()[]{}#- `, r):
		b.WriteByte('\\')
		b.WriteRune(r)
	case r < 0x20:
		b.WriteString(`\x`)
		if r < 0x10 {
			b.WriteByte('0')
		}
		b.WriteString(strconv.FormatInt(int64(r), 16))
	default:
		b.WriteRune(r)
	}
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
