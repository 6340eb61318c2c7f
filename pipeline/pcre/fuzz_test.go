package pcre

import (
	"errors"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzRegex compiles an arbitrary pattern with arbitrary options and runs it on an arbitrary
// subject: compiling and matching must not panic, a match must end (the limit bounds it),
// and every reported position must be a valid span of the subject.
func FuzzRegex(f *testing.F) {
	for _, s := range [][3]string{
		{"abc$", "", "abc\n"},
		{"^", "m", "a\n"},
		{`(?<=x)a(?=b)`, "i", "xab"},
		{`(a)\1+`, "", "aaa"},
		{`^(a+)+$`, "", "aaaaaaaaaaaaaaaaaaaaaaab"},
		{`\Q.*\E[[:alpha:]]\d\w\s\h\v`, "x", ".*a1_ \t\n"},
		{`(?P<n>é)(?P=n)\g{1}\x{e9}`, "u", "ééé"},
		{`a++b|(?>c*)d`, "s", "aab ccd"},
		{"a # comment\n b", "x", "ab"},
		{"", "", ""},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, pattern, options, subject string) {
		re, err := Compile(pattern, options)
		if err != nil {
			return
		}
		start := time.Now()
		if _, err := re.MatchString(subject); err != nil && !errors.Is(err, ErrLimit) {
			t.Fatalf("MatchString: %v", err)
		}
		locs, err := re.FindAllStringSubmatchIndex(subject, 50)
		if err != nil && !errors.Is(err, ErrLimit) {
			t.Fatalf("FindAll: %v", err)
		}
		for _, loc := range locs {
			if len(loc) != 2*(re.NumSubexp()+1) {
				t.Fatalf("%d positions for %d groups", len(loc), re.NumSubexp())
			}
			for i := 0; i < len(loc); i += 2 {
				if loc[i] == -1 && loc[i+1] == -1 {
					continue
				}
				if loc[i] < 0 || loc[i] > loc[i+1] || loc[i+1] > len(subject) {
					t.Fatalf("span %v of %q", loc[i:i+2], subject)
				}
				for _, at := range loc[i : i+2] {
					if utf8.ValidString(subject) && at < len(subject) && !utf8.RuneStart(subject[at]) {
						t.Fatalf("span %v splits a character of %q", loc[i:i+2], subject)
					}
				}
			}
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Fatalf("matching took %v", d)
		}
	})
}
