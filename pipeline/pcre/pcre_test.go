package pcre

import (
	"strings"
	"testing"
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
	}
	for _, c := range cases {
		re, err := Compile(c.pattern, c.opts)
		if err != nil {
			t.Fatalf("%q/%s: %v", c.pattern, c.opts, err)
		}
		if got := re.MatchString(c.subject); got != c.match {
			t.Errorf("%q/%s on %q: %v", c.pattern, c.opts, c.subject, got)
		}
	}
	for pattern, want := range map[string]string{
		"a(?=b)":                      "lookaround, backreferences",
		"(a)\\1":                      "lookaround, backreferences",
		"a\x00b":                      "embedded null byte",
		strings.Repeat("a", MaxLen+1): "too long",
	} {
		if _, err := Compile(pattern, ""); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", pattern, err, want)
		}
	}
	if _, err := Compile("a", "q"); err == nil || !strings.Contains(err.Error(), "invalid flag") {
		t.Errorf("flag q: %v", err)
	}
}
