package pcre

import (
	"errors"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestCompile(t *testing.T) {
	cases := []struct {
		pattern, opts, subject string
		match                  bool
	}{
		{"^abc", "", "abcd", true},
		{"ABC", "i", "xabcx", true},
		{"^b", "", "a\nb", false},
		{"^b", "m", "a\nb", true},
		{"a.b", "", "a\nb", false},
		{"a.b", "s", "a\nb", true},
		{"a b # comment\n c", "x", "abc", true},
		{`a\ b`, "x", "a b", true},
		{"[ ]x", "x", " x", true},
		{"é+", "u", "éé", true},
		// PCRE2: $ matches at the end and before a final newline only.
		{"abc$", "", "abc\n", true},
		{"abc$", "", "abc\n\n", false},
		{`abc\Z`, "", "abc\n", true},
		{`abc\z`, "", "abc\n", false},
		{"abc$", "m", "abc\nx", true},
		// Lookaround, backreferences, atomic groups, possessive quantifiers, \Q...\E.
		{"a(?=b)", "", "ab", true},
		{"a(?!b)", "", "ab", false},
		{"(?<=x)a", "", "xa", true},
		{"(?<!x)a", "", "xa", false},
		{`(a)\1`, "", "aa", true},
		{`(?<n>a)\k<n>`, "", "aa", true},
		{`(?P<n>a)(?P=n)`, "", "aa", true},
		{`(a)\g{1}`, "", "aa", true},
		{"(?>a+)b", "", "aaab", true},
		{"a++b", "", "aaab", true},
		{`\Q.*\E`, "", "x.*y", true},
		{`\Q.*\E`, "", "xy", false},
		// ASCII classes, as PCRE2 without UCP.
		{`^\d$`, "", "٣", false},
		{`^\w$`, "", "é", false},
		{`^[\d]$`, "", "7", true},
		{`^[[:alpha:]]+$`, "", "abc", true},
		{`^[[:digit:]]+$`, "", "abc", false},
		{`^\h$`, "", "\t", true},
		{`^\x{e9}$`, "", "é", true},
		{`a\_b`, "", "a_b", true},
		{`a\-b`, "", "a-b", true},
		{"(?m)^b", "", "a\nb", true},
		{"^[]a]+$", "", "]a]", true},
		{"^[^]a]$", "", "b", true},
		{`a\Nb`, "", "a\nb", false},
		{`a\Nb`, "", "axb", true},
	}
	for _, c := range cases {
		re, err := Compile(c.pattern, c.opts)
		if err != nil {
			t.Fatalf("%q/%s: %v", c.pattern, c.opts, err)
		}
		got, err := re.MatchString(c.subject)
		if err != nil || got != c.match {
			t.Errorf("%q/%s on %q: %v, %v", c.pattern, c.opts, c.subject, got, err)
		}
	}
	for pattern, want := range map[string]string{
		"a(":                          "invalid regular expression",
		"a\x00b":                      "embedded null byte",
		strings.Repeat("a", MaxLen+1): "too long",
		`a\`:                          "invalid regular expression",
	} {
		if _, err := Compile(pattern, ""); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", pattern, err, want)
		}
	}
	if _, err := Compile("a", "q"); err == nil || !strings.Contains(err.Error(), "invalid flag") {
		t.Errorf("flag q: %v", err)
	}
}

// TestFindAll checks match positions and PCRE2's line starts: no ^ after a final newline.
func TestFindAll(t *testing.T) {
	cases := []struct {
		pattern, opts, subject string
		want                   int
	}{
		{"^", "m", "a\n", 1},
		{"^", "m", "a\nb", 2},
		{"^", "m", "\n\n", 2},
		{"", "", "ab", 3},
		{"a", "", "banana", 3},
		{"a|", "", "ba", 3},
		{"$", "m", "a\nb\n", 3},
	}
	for _, c := range cases {
		re, err := Compile(c.pattern, c.opts)
		if err != nil {
			t.Fatal(err)
		}
		locs, err := re.FindAllStringSubmatchIndex(c.subject, -1)
		if err != nil || len(locs) != c.want {
			t.Errorf("%q/%s on %q: %v matches %v, want %d", c.pattern, c.opts, c.subject, len(locs), locs, c.want)
		}
	}
	re, _ := Compile(`(é)(x)?(b)`, "")
	loc, err := re.FindStringSubmatchIndex("aébc")
	if err != nil || len(loc) != 8 || loc[0] != 1 || loc[1] != 4 || loc[4] != -1 || loc[6] != 3 {
		t.Errorf("byte offsets: %v %v", loc, err)
	}
}

// TestLimit checks that catastrophic backtracking ends with ErrLimit instead of hanging.
func TestLimit(t *testing.T) {
	re, err := Compile(`^(a+)+$`, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = re.MatchString(strings.Repeat("a", 40) + "b")
	if !errors.Is(err, ErrLimit) {
		t.Fatalf("got %v, want ErrLimit", err)
	}
}

// TestStopClock checks that bounded matches leave no goroutine once StopClock returns.
func TestStopClock(t *testing.T) {
	re, err := Compile(`(?<=a)b`, "")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := re.MatchString("ab"); !ok || err != nil {
		t.Fatalf("%v %v", ok, err)
	}
	StopClock()
	goleak.VerifyNone(t)
}
