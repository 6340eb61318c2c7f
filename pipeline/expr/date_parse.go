package expr

import (
	"strconv"
	"strings"
	"time"
)

// Date strings for $dateFromString, $toDate and $convert to date, parsed as mongod parses
// them with timelib (src/mongo/db/query/datetime/date_time_support.cpp, fromString):
//
//   - without a format, a free-form string: ISO 8601 dates, times and week dates; "7/4/17";
//     "04-07-2017"; "2017-Jul-04"; "July 4th, 2017"; "Jan 2024"; a leading day name, which
//     moves the date forward to that weekday; 12-hour times ("11am", "10:30 p.m."), "noon"
//     and "midnight"; and a zone: "Z", an offset ("+05", "+0530", "+05:30"), "GMT+02:00",
//     an abbreviation (UTC, EST, CEST, ...) or a military letter (A-I, K-Z);
//   - with a format, the % directives of the format (%z reads any zone the free form reads;
//     %Z an offset in minutes, "+285").
//
// As in mongod, a missing time of day is midnight, any other missing element ("July 4th",
// "12:50:53", format "%Y") is an error, and a zone in the string together with a timezone
// argument other than UTC is an error. A zone name such as "Europe/Paris" is refused inside
// the string.

const unset = -1 << 31

// dtParts collects what a date string sets.
type dtParts struct {
	y, m, d, h, i, s int
	ms               int
	zone             bool
	zoneOff          int    // seconds east of UTC
	zoneAbbr         string // set for an abbreviation, empty for an offset
	weekday          int    // a day name: 0 = Sunday; unset when absent
	isoY, isoW, isoD int
	twoDigitYear     bool
}

func newParts() *dtParts {
	return &dtParts{y: unset, m: unset, d: unset, h: unset, i: unset, s: unset, weekday: unset, isoY: unset, isoW: unset, isoD: unset}
}

// dateErr is a parse failure: the message mongod gives, "Error parsing date string '<s>';
// <position>: <reason> '<character>'", or one of its whole-string messages.
func dateErr(s string, pos int, reason string) error {
	c := "\\0"
	if pos < len(s) {
		c = string(s[pos])
	}
	return &convFail{"Error parsing date string '" + s + "'; " + strconv.Itoa(pos) + ": " + reason + " '" + c + "'"}
}

func incompleteErr(s string) error {
	return &convFail{"an incomplete date/time string has been found, with elements missing: \"" + s + "\""}
}

// parseDate parses s with a format (free form when format is ""); loc is the timezone
// argument (nil when absent). The result is milliseconds since the epoch.
func parseDate(s, format string, loc *time.Location) (int64, error) {
	var p *dtParts
	var err error
	if format == "" {
		p, err = parseFree(s)
	} else {
		p, err = parseWithFormat(s, format)
	}
	if err != nil {
		return 0, err
	}
	return p.resolve(s, loc)
}

// resolve checks what was parsed and computes the instant.
func (p *dtParts) resolve(s string, loc *time.Location) (int64, error) {
	if p.isoY != unset || p.isoW != unset || p.isoD != unset {
		if p.isoY == unset {
			return 0, dateErr(s, len(s), "The parsed date was invalid")
		}
		w, d := p.isoW, p.isoD
		if w == unset {
			w = 1
		}
		if d == unset {
			d = 1
		}
		jan4 := time.Date(p.isoY, 1, 4, 0, 0, 0, 0, time.UTC)
		monday := jan4.AddDate(0, 0, -((int(jan4.Weekday()) + 6) % 7))
		t := monday.AddDate(0, 0, (w-1)*7+d-1)
		p.y, p.m, p.d = t.Year(), int(t.Month()), t.Day()
	}
	if p.h == unset && p.i == unset && p.s == unset {
		p.h, p.i, p.s, p.ms = 0, 0, 0, 0
	}
	if p.y == unset || p.m == unset || p.d == unset || p.h == unset || p.i == unset || p.s == unset {
		return 0, incompleteErr(s)
	}
	if p.twoDigitYear {
		if p.y < 70 {
			p.y += 2000
		} else {
			p.y += 1900
		}
	}
	if p.m < 1 || p.m > 12 || p.d < 1 || p.d > daysIn(p.y, p.m) {
		return 0, dateErr(s, len(s), "The parsed date was invalid")
	}
	if p.h > 23 || p.i > 59 || p.s > 59 {
		return 0, dateErr(s, len(s), "The parsed time was invalid")
	}
	if p.zone && loc != nil && !isUTCLoc(loc) {
		if p.zoneAbbr != "" {
			return 0, &convFail{"you cannot pass in a date/time string with time zone information ('" + p.zoneAbbr + "') together with a timezone argument"}
		}
		return 0, &convFail{"you cannot pass in a date/time string with GMT offset together with a timezone argument"}
	}
	if loc == nil || p.zone {
		loc = time.UTC
	}
	t := time.Date(p.y, time.Month(p.m), p.d, p.h, p.i, p.s, p.ms*1e6, loc)
	if p.weekday != unset {
		t = t.AddDate(0, 0, (p.weekday-int(t.Weekday())+7)%7)
	}
	return t.UnixMilli() - int64(p.zoneOff)*1000*boolInt(p.zone), nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// isUTCLoc reports whether a timezone argument is UTC (mongod's TimeZone::isUtcZone).
func isUTCLoc(loc *time.Location) bool {
	if loc == time.UTC {
		return true
	}
	name := loc.String()
	if name != "" && (name[0] == '+' || name[0] == '-') {
		_, off := time.Unix(0, 0).In(loc).Zone()
		return off == 0
	}
	return false
}

func daysIn(y, m int) int {
	return time.Date(y, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// scanner walks a date string.
type scanner struct {
	s string
	i int
}

func (sc *scanner) eof() bool { return sc.i >= len(sc.s) }

func (sc *scanner) peek(k int) byte {
	if sc.i+k < len(sc.s) {
		return sc.s[sc.i+k]
	}
	return 0
}

func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// digitsAt returns the run of digits at position j (at most max).
func digitsAt(s string, j, maxN int) string {
	k := j
	for k < len(s) && k-j < maxN && isDigit(s[k]) {
		k++
	}
	return s[j:k]
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// wordAt returns the run of letters at position j.
func wordAt(s string, j int) string {
	k := j
	for k < len(s) && isLetter(s[k]) {
		k++
	}
	return s[j:k]
}

var monthWords = map[string]int{
	"jan": 1, "january": 1, "feb": 2, "february": 2, "mar": 3, "march": 3, "apr": 4, "april": 4,
	"may": 5, "jun": 6, "june": 6, "jul": 7, "july": 7, "aug": 8, "august": 8, "sep": 9, "sept": 9,
	"september": 9, "oct": 10, "october": 10, "nov": 11, "november": 11, "dec": 12, "december": 12,
}

var dayWords = map[string]int{
	"sun": 0, "sunday": 0, "mon": 1, "monday": 1, "tue": 2, "tues": 2, "tuesday": 2, "wed": 3,
	"wednesday": 3, "thu": 4, "thur": 4, "thurs": 4, "thursday": 4, "fri": 5, "friday": 5,
	"sat": 6, "saturday": 6,
}

// zoneAbbrs are the abbreviations read as zones, in seconds east of UTC (timelib's table for
// the ones listed; others are refused as mongod refuses "SGT").
var zoneAbbrs = map[string]int{
	"utc": 0, "gmt": 0, "ut": 0, "wet": 0, "west": 3600, "bst": 3600, "cet": 3600, "cest": 7200,
	"met": 3600, "mest": 7200, "eet": 7200, "eest": 10800, "msk": 10800, "ist": 7200, "idt": 10800,
	"est": -5 * 3600, "edt": -4 * 3600, "cst": -6 * 3600, "cdt": -5 * 3600, "mst": -7 * 3600,
	"mdt": -6 * 3600, "pst": -8 * 3600, "pdt": -7 * 3600, "akst": -9 * 3600, "akdt": -8 * 3600,
	"hst": -10 * 3600, "jst": 9 * 3600, "kst": 9 * 3600, "hkt": 8 * 3600, "aest": 10 * 3600,
	"aedt": 11 * 3600, "acst": 34200, "acdt": 37800, "awst": 8 * 3600, "nzst": 12 * 3600,
	"nzdt": 13 * 3600, "sast": 7200,
}

// militaryZone is the offset of a military zone letter (A-I, K-M east, N-Y west, Z).
func militaryZone(c byte) (int, bool) {
	c |= 0x20
	switch {
	case c >= 'a' && c <= 'i':
		return int(c-'a'+1) * 3600, true
	case c >= 'k' && c <= 'm':
		return int(c-'k'+10) * 3600, true
	case c >= 'n' && c <= 'y':
		return -int(c-'n'+1) * 3600, true
	case c == 'z':
		return 0, true
	}
	return 0, false
}

// zoneAt reads a zone at s[j:]: an offset, "GMT"/"UTC" with or without an offset, an
// abbreviation or a military letter. n is the length read (0: none); a word that names no
// zone gives unknown.
func zoneAt(s string, j int) (off int, abbr string, n int, unknown bool) {
	k := j
	w := wordAt(s, k)
	lw := strings.ToLower(w)
	if (lw == "gmt" || lw == "utc") && k+len(w) < len(s) && (s[k+len(w)] == '+' || s[k+len(w)] == '-') {
		k += len(w)
		w = ""
	}
	if k < len(s) && (s[k] == '+' || s[k] == '-') {
		o, m, ok := offsetAt(s, k+1)
		if !ok {
			return 0, "", 0, false
		}
		if s[k] == '-' {
			o = -o
		}
		return o, "", k + 1 + m - j, false
	}
	if w == "" {
		return 0, "", 0, false
	}
	if k+len(w) < len(s) && s[k+len(w)] == '/' {
		return 0, "", 0, true
	}
	if o, ok := zoneAbbrs[lw]; ok {
		return o, strings.ToUpper(w), len(w), false
	}
	if len(w) == 1 {
		if o, ok := militaryZone(w[0]); ok {
			return o, strings.ToUpper(w), 1, false
		}
	}
	return 0, "", 0, true
}

// offsetAt reads the digits of an offset after its sign: "H", "HH", "HMM", "HHMM", "HH:MM".
func offsetAt(s string, j int) (int, int, bool) {
	d := digitsAt(s, j, 4)
	switch len(d) {
	case 1, 2:
		h := atoi(d)
		if j+len(d) < len(s) && s[j+len(d)] == ':' {
			mm := digitsAt(s, j+len(d)+1, 2)
			if len(mm) != 2 {
				return 0, 0, false
			}
			m := atoi(mm)
			if h > 23 || m > 59 {
				return 0, 0, false
			}
			return h*3600 + m*60, len(d) + 3, true
		}
		if h > 23 {
			return 0, 0, false
		}
		return h * 3600, len(d), true
	case 3:
		h, m := atoi(d[:1]), atoi(d[1:])
		if m > 59 {
			return 0, 0, false
		}
		return h*3600 + m*60, 3, true
	case 4:
		h, m := atoi(d[:2]), atoi(d[2:])
		if h > 23 || m > 59 {
			return 0, 0, false
		}
		return h*3600 + m*60, 4, true
	}
	return 0, 0, false
}

// parseFree parses a date string without a format.
func parseFree(s string) (*dtParts, error) {
	p := newParts()
	if strings.TrimSpace(s) == "" {
		return nil, dateErr(s, 0, "Empty string")
	}
	sc := &scanner{s: s}
	haveDate, haveTime := false, false
	for !sc.eof() {
		c := sc.peek(0)
		start := sc.i
		switch c {
		case ' ', '\t', ',', '(', ')':
			sc.i++
			continue
		}
		// A date.
		if n, ok := p.dateAt(s, sc.i); ok {
			if haveDate {
				return nil, dateErr(s, start, "Double date specification")
			}
			haveDate = true
			sc.i += n
			continue
		}
		// A time, with 'T' before it in ISO 8601.
		if n, ok, bad := p.timeAt(s, sc.i); ok || bad {
			if bad {
				return nil, dateErr(s, start, "Unexpected character")
			}
			if haveTime {
				return nil, dateErr(s, start, "Double time specification")
			}
			haveTime = true
			sc.i += n
			continue
		}
		// A year after a date without one and a time: "Tue Jan 1 10:00:00 2024".
		if y := digitsAt(s, sc.i, 5); len(y) == 4 && haveDate && haveTime && p.y == unset && p.m != unset {
			p.y = atoi(y)
			sc.i += 4
			continue
		}
		// Four digits alone are a time, HHMM ("2017, 12:50:53" has two times).
		if hm := digitsAt(s, sc.i, 5); len(hm) == 4 {
			if haveTime {
				return nil, dateErr(s, start, "Double time specification")
			}
			haveTime = true
			p.h, p.i, p.s, p.ms = atoi(hm[:2]), atoi(hm[2:]), 0, 0
			sc.i += 4
			continue
		}
		if isLetter(c) {
			w := strings.ToLower(wordAt(s, sc.i))
			if wd, ok := dayWords[w]; ok {
				if p.weekday != unset {
					return nil, dateErr(s, start, "Double day specification")
				}
				p.weekday = wd
				sc.i += len(w)
				if sc.peek(0) == '.' {
					sc.i++
				}
				continue
			}
			if w == "noon" || w == "midnight" {
				if haveTime {
					return nil, dateErr(s, start, "Double time specification")
				}
				haveTime = true
				p.h, p.i, p.s, p.ms = 0, 0, 0, 0
				if w == "noon" {
					p.h = 12
				}
				sc.i += len(w)
				continue
			}
		}
		if c == '+' || c == '-' || isLetter(c) {
			off, abbr, n, unknown := zoneAt(s, sc.i)
			if unknown && !p.zone {
				return nil, dateErr(s, start, "passing a time zone identifier as part of the string is not allowed")
			}
			if n > 0 || unknown {
				if p.zone {
					return nil, dateErr(s, start, "Double timezone specification")
				}
				p.zone, p.zoneOff, p.zoneAbbr = true, off, abbr
				sc.i += n
				continue
			}
		}
		return nil, dateErr(s, start, "Unexpected character")
	}
	return p, nil
}

// suffixAt skips an ordinal suffix (st, nd, rd, th) at j.
func suffixAt(s string, j int) int {
	w := strings.ToLower(wordAt(s, j))
	switch w {
	case "st", "nd", "rd", "th":
		return len(w)
	}
	return 0
}

// dateAt reads a date at s[j:] and returns its length.
func (p *dtParts) dateAt(s string, j int) (int, bool) {
	d1 := digitsAt(s, j, 5)
	if len(d1) == 4 {
		k := j + 4
		if k < len(s) && (s[k] == '-' || s[k] == '/') {
			sep := s[k]
			// YYYY-Www-D, YYYY-Www
			if sep == '-' && k+1 < len(s) && s[k+1] == 'W' {
				w := digitsAt(s, k+2, 2)
				if len(w) == 2 {
					p.isoY, p.isoW = atoi(d1), atoi(w)
					n := k + 4 - j
					if k+4 < len(s) && s[k+4] == '-' && len(digitsAt(s, k+5, 2)) == 1 {
						p.isoD = atoi(s[k+5 : k+6])
						n += 2
					}
					return n, true
				}
			}
			// YYYY-MM-DD, YYYY/MM/DD
			if m := digitsAt(s, k+1, 3); len(m) >= 1 && len(m) <= 2 && k+1+len(m) < len(s) && s[k+1+len(m)] == sep {
				if d := digitsAt(s, k+2+len(m), 3); len(d) >= 1 && len(d) <= 2 {
					p.y, p.m, p.d = atoi(d1), atoi(m), atoi(d)
					return 4 + 1 + len(m) + 1 + len(d), true
				}
			}
			// YYYY-Mon-DD
			if mw := strings.ToLower(wordAt(s, k+1)); monthWords[mw] != 0 && k+1+len(mw) < len(s) && s[k+1+len(mw)] == sep {
				if d := digitsAt(s, k+2+len(mw), 3); len(d) >= 1 && len(d) <= 2 {
					p.y, p.m, p.d = atoi(d1), monthWords[mw], atoi(d)
					return 4 + 1 + len(mw) + 1 + len(d), true
				}
			}
			// YYYY-MM
			if sep == '-' {
				if m := digitsAt(s, k+1, 3); len(m) == 2 && (k+3 >= len(s) || !isDigit(s[k+3]) && s[k+3] != ':') {
					p.y, p.m, p.d = atoi(d1), atoi(m), 1
					return 7, true
				}
			}
		}
		// YYYY Month ("2024 Jan")
		if k < len(s) && s[k] == ' ' {
			if mw := strings.ToLower(wordAt(s, k+1)); monthWords[mw] != 0 {
				p.y, p.m, p.d = atoi(d1), monthWords[mw], 1
				return 5 + len(mw), true
			}
		}
		return 0, false
	}
	if len(d1) == 1 || len(d1) == 2 {
		k := j + len(d1)
		if k < len(s) && (s[k] == '/' || s[k] == '-' || s[k] == '.') {
			sep := s[k]
			d2 := digitsAt(s, k+1, 3)
			if len(d2) >= 1 && len(d2) <= 2 {
				k2 := k + 1 + len(d2)
				if sep == '/' {
					// M/D/YYYY, M/D/YY, M/D
					p.m, p.d = atoi(d1), atoi(d2)
					if k2 < len(s) && s[k2] == '/' {
						if y := digitsAt(s, k2+1, 5); len(y) == 4 || len(y) == 2 {
							p.y = atoi(y)
							p.twoDigitYear = len(y) == 2
							return k2 + 1 + len(y) - j, true
						}
					}
					return k2 - j, true
				}
				// D-M-YYYY, D.M.YYYY, D.M.YY
				if k2 < len(s) && s[k2] == sep {
					if y := digitsAt(s, k2+1, 5); len(y) == 4 || (len(y) == 2 && sep == '.') {
						p.d, p.m, p.y = atoi(d1), atoi(d2), atoi(y)
						p.twoDigitYear = len(y) == 2
						return k2 + 1 + len(y) - j, true
					}
				}
				return 0, false
			}
			// DD-Mon-YYYY
			if mw := strings.ToLower(wordAt(s, k+1)); monthWords[mw] != 0 && k+1+len(mw) < len(s) && s[k+1+len(mw)] == sep {
				if y := digitsAt(s, k+2+len(mw), 5); len(y) == 4 {
					p.d, p.m, p.y = atoi(d1), monthWords[mw], atoi(y)
					return len(d1) + 2 + len(mw) + 4, true
				}
			}
			return 0, false
		}
		// D[suffix] Month[,] [YYYY] ("15 January 2024", "01 Jan 2024")
		k += suffixAt(s, k)
		sp := k
		for sp < len(s) && s[sp] == ' ' {
			sp++
		}
		if sp > k || sp < len(s) && isLetter(s[sp]) {
			if mw := strings.ToLower(wordAt(s, sp)); monthWords[mw] != 0 {
				p.d, p.m = atoi(d1), monthWords[mw]
				e := sp + len(mw)
				if e < len(s) && s[e] == '.' {
					e++
				}
				e2 := e
				if e2 < len(s) && s[e2] == ',' {
					e2++
				}
				for e2 < len(s) && s[e2] == ' ' {
					e2++
				}
				if y := digitsAt(s, e2, 5); len(y) == 4 && (e2+4 >= len(s) || s[e2+4] != ':') {
					p.y = atoi(y)
					return e2 + 4 - j, true
				}
				return e - j, true
			}
		}
		return 0, false
	}
	if len(d1) == 0 && isLetter(s[j]) {
		// Month D[suffix][,] [YYYY], Month YYYY, Month
		mw := strings.ToLower(wordAt(s, j))
		m := monthWords[mw]
		if m == 0 {
			return 0, false
		}
		e := j + len(mw)
		if e < len(s) && s[e] == '.' {
			e++
		}
		k := e
		for k < len(s) && (s[k] == ' ' || s[k] == '-') {
			k++
		}
		if k > e {
			n := digitsAt(s, k, 5)
			if len(n) == 4 && (k+4 >= len(s) || s[k+4] != ':') {
				p.y, p.m, p.d = atoi(n), m, 1
				return k + 4 - j, true
			}
			if len(n) == 1 || len(n) == 2 {
				if k+len(n) < len(s) && s[k+len(n)] == ':' {
					// "Jan 10:00": the month alone, then a time.
					p.m = m
					return e - j, true
				}
				p.m, p.d = m, atoi(n)
				k += len(n)
				k += suffixAt(s, k)
				e = k
				if k < len(s) && s[k] == ',' {
					k++
				}
				for k < len(s) && s[k] == ' ' {
					k++
				}
				if y := digitsAt(s, k, 5); len(y) == 4 && (k+4 >= len(s) || s[k+4] != ':') {
					p.y = atoi(y)
					return k + 4 - j, true
				}
				return e - j, true
			}
		}
		p.m = m
		return e - j, true
	}
	return 0, false
}

// timeAt reads a time at s[j:]: [T]HH:MM[:SS[.frac]], HH:MM.SS[.frac], or a 12-hour time
// with am/pm. bad reports a time that mongod refuses (an hour of 0 or above 12 with am/pm).
func (p *dtParts) timeAt(s string, j int) (n int, ok, bad bool) {
	k := j
	iso := false
	if k < len(s) && (s[k] == 'T' || s[k] == 't') && k+1 < len(s) && isDigit(s[k+1]) {
		k++
		iso = true
	}
	h := digitsAt(s, k, 3)
	if len(h) == 0 || len(h) > 2 {
		return 0, false, false
	}
	k += len(h)
	hour, minute, sec, ms := atoi(h), 0, 0, 0
	hasMin, hasFrac := false, false
	if k < len(s) && s[k] == ':' {
		mm := digitsAt(s, k+1, 3)
		if len(mm) != 2 {
			return 0, false, false
		}
		minute, hasMin = atoi(mm), true
		k += 3
		if k < len(s) && (s[k] == ':' || s[k] == '.') {
			ss := digitsAt(s, k+1, 3)
			if len(ss) == 2 {
				sec = atoi(ss)
				k += 3
				if k < len(s) && (s[k] == '.' || s[k] == ',') && k+1 < len(s) && isDigit(s[k+1]) {
					f := digitsAt(s, k+1, 9)
					ms = atoi((f + "00")[:3])
					hasFrac = true
					k += 1 + len(f)
				}
			}
		}
	}
	// am/pm, with or without a space and dots.
	if !iso {
		e := k
		for e < len(s) && s[e] == ' ' {
			e++
		}
		if mer, l := meridianAt(s, e); l > 0 {
			if hasFrac || hour < 1 || hour > 12 {
				return 0, false, true
			}
			hour %= 12
			if mer == 'p' {
				hour += 12
			}
			p.h, p.i, p.s, p.ms = hour, minute, sec, 0
			return e + l - j, true, false
		}
	}
	if !hasMin {
		return 0, false, false
	}
	p.h, p.i, p.s, p.ms = hour, minute, sec, ms
	return k - j, true, false
}

// meridianAt reads "am", "pm", "a.m." or "p.m." (any case) at j.
func meridianAt(s string, j int) (byte, int) {
	if j+1 >= len(s) {
		return 0, 0
	}
	c := s[j] | 0x20
	if c != 'a' && c != 'p' {
		return 0, 0
	}
	var l int
	switch {
	case s[j+1]|0x20 == 'm':
		l = 2
	case s[j+1] == '.' && j+3 < len(s) && s[j+2]|0x20 == 'm' && s[j+3] == '.':
		l = 4
	default:
		return 0, 0
	}
	if j+l < len(s) && isLetter(s[j+l]) {
		return 0, 0
	}
	return c, l
}

// parseWithFormat parses s with a format of % directives.
func parseWithFormat(s, format string) (*dtParts, error) {
	p := newParts()
	i := 0
	natural, iso := false, false
	for f := 0; f < len(format); f++ {
		c := format[f]
		if c != '%' {
			if i >= len(s) || s[i] != c {
				return nil, dateErr(s, i, "Format literal not found")
			}
			i++
			continue
		}
		f++
		if f >= len(format) {
			return nil, &convFail{"Unmatched '%' at end of format string"}
		}
		if i >= len(s) && format[f] != '%' {
			return nil, dateErr(s, i, "Not enough data available to satisfy format")
		}
		num := func(maxN int, what string) (int, error) {
			d := digitsAt(s, i, maxN)
			if d == "" {
				return 0, dateErr(s, i, what)
			}
			i += len(d)
			return atoi(d), nil
		}
		var err error
		switch format[f] {
		case 'Y':
			natural = true
			p.y, err = num(4, "A four digit year could not be found")
		case 'm':
			natural = true
			p.m, err = num(2, "A two digit month could not be found")
		case 'd':
			natural = true
			p.d, err = num(2, "A two digit day could not be found")
		case 'H':
			p.h, err = num(2, "A two digit hour could not be found")
		case 'M':
			p.i, err = num(2, "A two digit minute could not be found")
		case 'S':
			p.s, err = num(2, "A two digit second could not be found")
		case 'L':
			d := digitsAt(s, i, 9)
			if d == "" {
				return nil, dateErr(s, i, "A three digit millisecond could not be found")
			}
			i += len(d)
			p.ms = atoi((d + "00")[:3])
		case 'j':
			if p.y == unset {
				return nil, dateErr(s, i, "A 'day of year' can only come after a year has been found")
			}
			var yd int
			if yd, err = num(3, "A three digit day-of-year could not be found"); err == nil {
				t := time.Date(p.y, 1, yd, 0, 0, 0, 0, time.UTC)
				p.m, p.d = int(t.Month()), t.Day()
				p.y = t.Year()
			}
			natural = true
		case 'G':
			iso = true
			p.isoY, err = num(4, "A four digit ISO year could not be found")
		case 'V':
			iso = true
			p.isoW, err = num(2, "A two digit ISO week could not be found")
		case 'u':
			iso = true
			p.isoD, err = num(1, "A single digit day of week could not be found")
		case 'z':
			for i < len(s) && (s[i] == ' ' || s[i] == '(') {
				i++
			}
			off, abbr, n, unknown := zoneAt(s, i)
			if unknown {
				return nil, dateErr(s, i, "passing a time zone identifier as part of the string is not allowed")
			}
			if n == 0 {
				return nil, dateErr(s, i, "The timezone could not be found in the database")
			}
			p.zone, p.zoneOff, p.zoneAbbr = true, off, abbr
			i += n
		case 'Z':
			if i >= len(s) || (s[i] != '+' && s[i] != '-') {
				return nil, dateErr(s, i, "Invalid timezone offset in minutes")
			}
			d := digitsAt(s, i+1, 4)
			if d == "" {
				return nil, dateErr(s, i, "Invalid timezone offset in minutes")
			}
			off := atoi(d) * 60
			if s[i] == '-' {
				off = -off
			}
			p.zone, p.zoneOff = true, off
			i += 1 + len(d)
		case 'b', 'B':
			natural = true
			w := strings.ToLower(wordAt(s, i))
			m := monthWords[w]
			if m == 0 {
				for l := len(w); l >= 3 && m == 0; l-- {
					if m = monthWords[w[:l]]; m != 0 {
						w = w[:l]
					}
				}
			}
			if m == 0 {
				return nil, dateErr(s, i, "A textual month could not be found")
			}
			p.m = m
			i += len(w)
		case '%':
			if i >= len(s) || s[i] != '%' {
				return nil, dateErr(s, i, "Format literal not found")
			}
			i++
		default:
			return nil, &convFail{"Invalid format character '%" + string(format[f]) + "' in format string"}
		}
		if err != nil {
			return nil, err
		}
	}
	if i < len(s) {
		return nil, dateErr(s, i, "Trailing data")
	}
	// timelib completes a partial time of day with zeros ("%H:%M" has no seconds).
	if p.h != unset || p.i != unset || p.s != unset {
		for _, f := range []*int{&p.h, &p.i, &p.s} {
			if *f == unset {
				*f = 0
			}
		}
	}
	if iso && natural {
		return nil, dateErr(s, len(s), "Mixing of ISO dates with natural dates is not allowed")
	}
	return p, nil
}
