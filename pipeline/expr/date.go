package expr

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/value"
)

const msPerDay = 86400000

var tzCache sync.Map // string -> *time.Location

// loadTZ resolves an Olson name or a "+hh:mm", "+hhmm", "+hh" offset.
func loadTZ(op, s string) (*time.Location, error) {
	if s == "" || s == "UTC" || s == "GMT" || s == "Z" {
		return time.UTC, nil
	}
	if l, ok := tzCache.Load(s); ok {
		return l.(*time.Location), nil
	}
	var loc *time.Location
	if s[0] == '+' || s[0] == '-' {
		if off, ok := parseOffset(s[1:]); ok {
			if s[0] == '-' {
				off = -off
			}
			loc = time.FixedZone(s, off)
		}
	} else if !strings.Contains(s, "..") && !strings.HasPrefix(s, "/") {
		if l, err := time.LoadLocation(s); err == nil {
			loc = l
		}
	}
	if loc == nil {
		return nil, evalErr(op, op+": unrecognized time zone identifier: \""+s+"\"")
	}
	tzCache.Store(s, loc)
	return loc, nil
}

// parseOffset parses "hh:mm", "hhmm" or "hh" as seconds.
func parseOffset(s string) (int, bool) {
	digits := strings.ReplaceAll(s, ":", "")
	if (len(s) == 5 && s[2] != ':') || len(digits) != 4 && len(digits) != 2 || strings.Count(s, ":") > 1 {
		return 0, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	h, _ := strconv.Atoi(digits[:2])
	m := 0
	if len(digits) == 4 {
		m, _ = strconv.Atoi(digits[2:])
	}
	if m >= 60 {
		return 0, false
	}
	return h*3600 + m*60, true
}

// tzArg evaluates an optional timezone expression.
func tzArg(op string, env *Env, e Expr) (*time.Location, bool, error) {
	if e == nil {
		return time.UTC, true, nil
	}
	v, err := e.Eval(env)
	if err != nil {
		return nil, false, err
	}
	if value.IsNullish(v) {
		return nil, false, nil
	}
	s, ok := str(v)
	if !ok {
		return nil, false, evalErr(op, op+": timezone must evaluate to a string, found "+typeName(v))
	}
	loc, err := loadTZ(op, s)
	return loc, err == nil, err
}

// dateMs reads a date argument: a date, a timestamp or an ObjectId.
func dateMs(op string, v bson.RawValue) (int64, error) {
	switch v.Type {
	case bson.TypeDateTime:
		return v.DateTime(), nil
	case bson.TypeTimestamp:
		t, _ := v.Timestamp()
		return int64(t) * 1000, nil
	case bson.TypeObjectID:
		oid := v.ObjectID()
		return int64(uint32(oid[0])<<24|uint32(oid[1])<<16|uint32(oid[2])<<8|uint32(oid[3])) * 1000, nil
	}
	return 0, evalErr(op, op+" can't convert from BSON type "+typeName(v)+" to Date")
}

func toTime(ms int64, loc *time.Location) time.Time { return time.UnixMilli(ms).In(loc) }

func formatISODate(ms int64) string {
	return toTime(ms, time.UTC).Format("2006-01-02T15:04:05.000Z")
}

// datePart is one of $year, $month, ...
type datePart func(t time.Time) int

var dateParts = map[string]datePart{
	"$year":        func(t time.Time) int { return t.Year() },
	"$month":       func(t time.Time) int { return int(t.Month()) },
	"$dayOfMonth":  func(t time.Time) int { return t.Day() },
	"$hour":        func(t time.Time) int { return t.Hour() },
	"$minute":      func(t time.Time) int { return t.Minute() },
	"$second":      func(t time.Time) int { return t.Second() },
	"$millisecond": func(t time.Time) int { return t.Nanosecond() / 1e6 },
	"$dayOfWeek":   func(t time.Time) int { return int(t.Weekday()) + 1 },
	"$dayOfYear":   func(t time.Time) int { return t.YearDay() },
	"$week":        weekU,
	"$isoWeek":     func(t time.Time) int { _, w := t.ISOWeek(); return w },
	"$isoWeekYear": func(t time.Time) int { y, _ := t.ISOWeek(); return y },
	"$isoDayOfWeek": func(t time.Time) int {
		return (int(t.Weekday())+6)%7 + 1
	},
}

// weekU is strftime's %U: the week of the year, weeks starting on Sunday, 0 before the first.
func weekU(t time.Time) int { return (t.YearDay() + 6 - int(t.Weekday())) / 7 }

func compileDatePart(op string, args bson.RawValue, sc *scope) (Expr, error) {
	part := dateParts[op]
	var dateE, tzE Expr
	var err error
	if args.Type == bson.TypeEmbeddedDocument && value.Lookup(args.Value, "date").Type != 0 {
		m, err := objArgs(op, args, "date", "timezone")
		if err != nil {
			return nil, err
		}
		if dateE, err = reqExpr(op, m, "date", sc); err != nil {
			return nil, err
		}
		if tzE, err = optExpr(m, "timezone", sc); err != nil {
			return nil, err
		}
	} else {
		if args.Type == bson.TypeEmbeddedDocument {
			if els, _ := elements(args.Value); len(els) > 0 && !strings.HasPrefix(els[0].key, "$") {
				return nil, compileErr(op, "unrecognized option to "+op+": \""+els[0].key+"\"")
			}
		}
		es, err := countArgs(op, args, sc, 1, 1)
		if err != nil {
			return nil, err
		}
		dateE = es[0]
	}
	_ = err
	return evalFunc(func(env *Env) (bson.RawValue, error) {
		v, err := dateE.Eval(env)
		if err != nil {
			return v, err
		}
		loc, ok, err := tzArg(op, env, tzE)
		if err != nil || !ok || value.IsNullish(v) {
			return nullValue, err
		}
		ms, err := dateMs(op, v)
		if err != nil {
			return value.Missing, err
		}
		n := part(toTime(ms, loc))
		if op == "$isoWeekYear" {
			// mongod's classic engine returns isoWeekYear as a long (TimeZone::isoYear).
			return int64Value(int64(n)), nil
		}
		return int32Value(int32(n)), nil
	}), nil
}

// evalFormat evaluates the format argument of $dateToString and $dateFromString: def when it
// is absent, null=true when it is null or missing, an error when it is not a valid format.
func evalFormat(op string, env *Env, formatE Expr, def string) (format string, null bool, err error) {
	if formatE == nil {
		return def, false, nil
	}
	f, err := formatE.Eval(env)
	if err != nil {
		return "", false, err
	}
	if value.IsNullish(f) {
		return "", true, nil
	}
	s, ok := str(f)
	if !ok {
		return "", false, evalErr(op, op+" requires that 'format' be a string, found: "+typeName(f)+" with value "+f.String())
	}
	if err := validateFormat(op, s); err != nil {
		return "", false, err
	}
	return s, false, nil
}

// ---- $dateToString

var monthNames = []string{"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"}

func pad(n, width int) string {
	neg := n < 0
	if neg {
		n = -n
	}
	s := strconv.Itoa(n)
	for len(s) < width {
		s = "0" + s
	}
	if neg {
		s = "-" + s
	}
	return s
}

func validateFormat(op, f string) error {
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			continue
		}
		if i+1 >= len(f) {
			return evalErr(op, "Unmatched '%' at end of format string")
		}
		i++
		if !strings.ContainsRune("dGHjLmMSwuUVYzZbB%", rune(f[i])) {
			return evalErr(op, "Invalid format character '%"+string(f[i])+"' in format string")
		}
	}
	return nil
}

func formatDate(f string, ms int64, loc *time.Location) string {
	t := toTime(ms, loc)
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		if f[i] != '%' || i+1 >= len(f) {
			b.WriteByte(f[i])
			continue
		}
		i++
		switch f[i] {
		case 'd':
			b.WriteString(pad(t.Day(), 2))
		case 'G':
			y, _ := t.ISOWeek()
			b.WriteString(pad(y, 4))
		case 'H':
			b.WriteString(pad(t.Hour(), 2))
		case 'j':
			b.WriteString(pad(t.YearDay(), 3))
		case 'L':
			b.WriteString(pad(t.Nanosecond()/1e6, 3))
		case 'm':
			b.WriteString(pad(int(t.Month()), 2))
		case 'M':
			b.WriteString(pad(t.Minute(), 2))
		case 'S':
			b.WriteString(pad(t.Second(), 2))
		case 'w':
			b.WriteString(strconv.Itoa(int(t.Weekday()) + 1))
		case 'u':
			b.WriteString(strconv.Itoa((int(t.Weekday())+6)%7 + 1))
		case 'U':
			b.WriteString(pad(weekU(t), 2))
		case 'V':
			_, w := t.ISOWeek()
			b.WriteString(pad(w, 2))
		case 'Y':
			b.WriteString(pad(t.Year(), 4))
		case 'z':
			_, off := t.Zone()
			sign := "+"
			if off < 0 {
				sign, off = "-", -off
			}
			b.WriteString(sign + pad(off/3600, 2) + pad(off%3600/60, 2))
		case 'Z':
			_, off := t.Zone()
			// Minutes east of UTC, with a minus sign only (mongod's %Z: "0", "60", "-240").
			b.WriteString(strconv.Itoa(off / 60))
		case 'b':
			b.WriteString(monthNames[t.Month()-1][:3])
		case 'B':
			b.WriteString(monthNames[t.Month()-1])
		case '%':
			b.WriteByte('%')
		}
	}
	return b.String()
}

func compileDateToString(op string, args bson.RawValue, sc *scope) (Expr, error) {
	m, err := objArgs(op, args, "date", "format", "timezone", "onNull")
	if err != nil {
		return nil, err
	}
	dateE, err := reqExpr(op, m, "date", sc)
	if err != nil {
		return nil, compileErr(op, "Missing 'date' parameter to $dateToString")
	}
	formatE, err := optExpr(m, "format", sc)
	if err != nil {
		return nil, err
	}
	if f, ok := m["format"]; ok && f.Type == bson.TypeString {
		if err := validateFormat(op, f.StringValue()); err != nil {
			return nil, compileErr(op, err.(*EvalError).Msg)
		}
	}
	tzE, err := optExpr(m, "timezone", sc)
	if err != nil {
		return nil, err
	}
	onNull, err := optExpr(m, "onNull", sc)
	if err != nil {
		return nil, err
	}
	return evalFunc(func(env *Env) (bson.RawValue, error) {
		format, null, err := evalFormat(op, env, formatE, "%Y-%m-%dT%H:%M:%S.%LZ")
		if err != nil || null {
			return nullValue, err
		}
		loc, ok, err := tzArg(op, env, tzE)
		if err != nil || !ok {
			return nullValue, err
		}
		d, err := dateE.Eval(env)
		if err != nil {
			return d, err
		}
		if value.IsNullish(d) {
			if onNull != nil {
				return onNull.Eval(env)
			}
			return nullValue, nil
		}
		ms, err := dateMs(op, d)
		if err != nil {
			return value.Missing, err
		}
		return stringValue(formatDate(format, ms, loc)), nil
	}), nil
}

// ---- $dateFromString

func compileDateFromString(op string, args bson.RawValue, sc *scope) (Expr, error) {
	m, err := objArgs(op, args, "dateString", "format", "timezone", "onError", "onNull")
	if err != nil {
		return nil, err
	}
	if _, ok := m["dateString"]; !ok {
		return nil, compileErr(op, "$dateFromString requires that 'dateString' be present")
	}
	var es [5]Expr
	for i, k := range []string{"dateString", "format", "timezone", "onError", "onNull"} {
		if es[i], err = optExpr(m, k, sc); err != nil {
			return nil, err
		}
	}
	dsE, fmtE, tzE, onError, onNull := es[0], es[1], es[2], es[3], es[4]
	return evalFunc(func(env *Env) (bson.RawValue, error) {
		ds, err := dsE.Eval(env)
		if err != nil {
			return ds, err
		}
		format, null, err := evalFormat(op, env, fmtE, "")
		if err != nil || null {
			return nullValue, err
		}
		var loc *time.Location
		if tzE != nil {
			l, ok, err := tzArg(op, env, tzE)
			if err != nil || !ok {
				return nullValue, err
			}
			loc = l
		}
		if value.IsNullish(ds) {
			if onNull != nil {
				return onNull.Eval(env)
			}
			return nullValue, nil
		}
		s, ok := str(ds)
		if !ok {
			if onError != nil {
				return onError.Eval(env)
			}
			return value.Missing, evalErr(op, "$dateFromString requires that 'dateString' be a string, found: "+typeName(ds)+" with value "+ds.String())
		}
		ms, err := parseDate(s, format, loc)
		if err != nil {
			if onError != nil {
				return onError.Eval(env)
			}
			return value.Missing, evalErr(op, err.Error())
		}
		return dateValue(ms), nil
	}), nil
}

// ---- $dateFromParts / $dateToParts

func compileDateFromParts(op string, args bson.RawValue, sc *scope) (Expr, error) {
	names := []string{"year", "month", "day", "hour", "minute", "second", "millisecond", "isoWeekYear", "isoWeek", "isoDayOfWeek", "timezone"}
	m, err := objArgs(op, args, names...)
	if err != nil {
		return nil, err
	}
	_, hasYear := m["year"]
	_, hasISO := m["isoWeekYear"]
	switch {
	case hasYear && hasISO:
		return nil, compileErr(op, "$dateFromParts does not allow mixing natural dates with ISO dates")
	case !hasYear && !hasISO:
		return nil, compileErr(op, "$dateFromParts requires either 'year' or 'isoWeekYear' to be present")
	}
	for _, k := range []string{"month", "day"} {
		if _, ok := m[k]; ok && hasISO {
			return nil, compileErr(op, "$dateFromParts does not allow mixing natural dates with ISO dates")
		}
	}
	for _, k := range []string{"isoWeek", "isoDayOfWeek"} {
		if _, ok := m[k]; ok && hasYear {
			return nil, compileErr(op, "$dateFromParts does not allow mixing natural dates with ISO dates")
		}
	}
	es := make([]Expr, len(names))
	for i, k := range names {
		if es[i], err = optExpr(m, k, sc); err != nil {
			return nil, err
		}
	}
	defaults := []int64{1970, 1, 1, 0, 0, 0, 0, 1970, 1, 1}
	return evalFunc(func(env *Env) (bson.RawValue, error) {
		var p [10]int64
		for i := 0; i < 10; i++ {
			p[i] = defaults[i]
			if es[i] == nil {
				continue
			}
			v, err := es[i].Eval(env)
			if err != nil {
				return v, err
			}
			if value.IsNullish(v) {
				return nullValue, nil
			}
			n, ok := intArg(v)
			if !ok || !value.IsNumber(v) {
				return value.Missing, evalErr(op, "'"+names[i]+"' must evaluate to an integer, found "+typeName(v)+" with value "+v.String())
			}
			lo, hi := int64(-32768), int64(32767)
			if i == 0 || i == 7 {
				lo, hi = 1, 9999
			}
			if n < lo || n > hi {
				return value.Missing, evalErr(op, "'"+names[i]+"' must evaluate to an integer in the range "+itoa64(lo)+" to "+itoa64(hi)+", found "+itoa64(n))
			}
			p[i] = n
		}
		loc, ok, err := tzArg(op, env, es[10])
		if err != nil || !ok {
			return nullValue, err
		}
		var t time.Time
		if hasISO {
			jan4 := time.Date(int(p[7]), 1, 4, 0, 0, 0, 0, loc)
			monday := jan4.AddDate(0, 0, -((int(jan4.Weekday()) + 6) % 7))
			t = monday.AddDate(0, 0, int((p[8]-1)*7+p[9]-1))
			t = time.Date(t.Year(), t.Month(), t.Day(), int(p[3]), int(p[4]), int(p[5]), 0, loc)
		} else {
			t = time.Date(int(p[0]), time.Month(p[1]), int(p[2]), int(p[3]), int(p[4]), int(p[5]), 0, loc)
		}
		return dateValue(t.UnixMilli() + p[6]), nil
	}), nil
}

func compileDateToParts(op string, args bson.RawValue, sc *scope) (Expr, error) {
	m, err := objArgs(op, args, "date", "timezone", "iso8601")
	if err != nil {
		return nil, err
	}
	dateE, err := reqExpr(op, m, "date", sc)
	if err != nil {
		return nil, compileErr(op, "Missing 'date' parameter to $dateToParts")
	}
	tzE, err := optExpr(m, "timezone", sc)
	if err != nil {
		return nil, err
	}
	isoE, err := optExpr(m, "iso8601", sc)
	if err != nil {
		return nil, err
	}
	return evalFunc(func(env *Env) (bson.RawValue, error) {
		d, err := dateE.Eval(env)
		if err != nil {
			return d, err
		}
		loc, ok, err := tzArg(op, env, tzE)
		if err != nil || !ok {
			return nullValue, err
		}
		iso := false
		if isoE != nil {
			v, err := isoE.Eval(env)
			if err != nil {
				return v, err
			}
			if value.IsNullish(v) {
				return nullValue, nil
			}
			if v.Type != bson.TypeBoolean {
				return value.Missing, evalErr(op, "iso8601 must evaluate to a bool, found "+typeName(v))
			}
			iso = v.Boolean()
		}
		if value.IsNullish(d) {
			return nullValue, nil
		}
		ms, err := dateMs(op, d)
		if err != nil {
			return value.Missing, err
		}
		t := toTime(ms, loc)
		b := newDoc()
		if iso {
			y, w := t.ISOWeek()
			b.add("isoWeekYear", int32Value(int32(y)))
			b.add("isoWeek", int32Value(int32(w)))
			b.add("isoDayOfWeek", int32Value(int32((int(t.Weekday())+6)%7+1)))
		} else {
			b.add("year", int32Value(int32(t.Year())))
			b.add("month", int32Value(int32(t.Month())))
			b.add("day", int32Value(int32(t.Day())))
		}
		b.add("hour", int32Value(int32(t.Hour())))
		b.add("minute", int32Value(int32(t.Minute())))
		b.add("second", int32Value(int32(t.Second())))
		b.add("millisecond", int32Value(int32(t.Nanosecond()/1e6)))
		return b.done(), nil
	}), nil
}

// ---- $dateTrunc, $dateAdd, $dateSubtract, $dateDiff

var unitMs = map[string]int64{
	"millisecond": 1, "second": 1000, "minute": 60000, "hour": 3600000, "day": msPerDay, "week": 7 * msPerDay,
}

func validUnit(u string) bool {
	_, ok := unitMs[u]
	return ok || u == "year" || u == "quarter" || u == "month"
}

var weekdays = []string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"}

func parseWeekday(s string) (int, bool) {
	l := strings.ToLower(s)
	for i, d := range weekdays {
		if l == d || l == d[:3] {
			return i, true
		}
	}
	return 0, false
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// localMs is the wall-clock time of ms in loc, as milliseconds since the epoch.
func localMs(ms int64, loc *time.Location) int64 {
	_, off := toTime(ms, loc).Zone()
	return ms + int64(off)*1000
}

// fromLocal converts wall-clock milliseconds in loc back to an instant.
func fromLocal(lms int64, loc *time.Location) int64 {
	t := time.UnixMilli(lms).UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), loc).UnixMilli()
}

// dateArgs evaluates the shared arguments of the date arithmetic operators.
type dateArgs struct {
	exprs map[string]Expr
}

func compileDateArgs(op string, args bson.RawValue, sc *scope, required []string, names ...string) (*dateArgs, error) {
	m, err := objArgs(op, args, names...)
	if err != nil {
		return nil, err
	}
	d := &dateArgs{exprs: map[string]Expr{}}
	for _, k := range required {
		if _, ok := m[k]; !ok {
			return nil, compileErr(op, op+" requires '"+k+"' to be present")
		}
	}
	for _, k := range names {
		e, err := optExpr(m, k, sc)
		if err != nil {
			return nil, err
		}
		if e != nil {
			d.exprs[k] = e
		}
	}
	if u, ok := m["unit"]; ok {
		if s, ok := str(u); ok && !strings.HasPrefix(s, "$") && !validUnit(s) {
			return nil, compileErr(op, op+" parameter 'unit' value cannot be recognized as a time unit: "+s)
		}
	}
	return d, nil
}

// eval evaluates every argument; null reports that one was nullish.
func (d *dateArgs) eval(env *Env) (map[string]bson.RawValue, bool, error) {
	out := make(map[string]bson.RawValue, len(d.exprs))
	null := false
	for k, e := range d.exprs {
		v, err := e.Eval(env)
		if err != nil {
			return nil, false, err
		}
		if value.IsNullish(v) {
			null = true
		}
		out[k] = v
	}
	return out, null, nil
}

func unitArg(op string, v bson.RawValue) (string, error) {
	s, ok := str(v)
	if !ok {
		return "", evalErr(op, op+" requires 'unit' to be a string, but got "+typeName(v))
	}
	if !validUnit(s) {
		return "", evalErr(op, op+" parameter 'unit' value cannot be recognized as a time unit: "+s)
	}
	return s, nil
}

func tzValue(op string, v bson.RawValue) (*time.Location, error) {
	if v.Type == 0 {
		return time.UTC, nil
	}
	s, ok := str(v)
	if !ok {
		return nil, evalErr(op, op+": timezone must evaluate to a string, found "+typeName(v))
	}
	return loadTZ(op, s)
}

func startOfWeekArg(op string, a map[string]bson.RawValue) (int, error) {
	v, ok := a["startOfWeek"]
	if !ok {
		return 0, nil
	}
	s, _ := str(v)
	d, ok := parseWeekday(s)
	if !ok {
		return 0, evalErr(op, op+" parameter 'startOfWeek' must be a valid day of the week, got: "+v.String())
	}
	return d, nil
}

func compileDateTrunc(op string, args bson.RawValue, sc *scope) (Expr, error) {
	d, err := compileDateArgs(op, args, sc, []string{"date", "unit"}, "date", "unit", "binSize", "timezone", "startOfWeek")
	if err != nil {
		return nil, err
	}
	return evalFunc(func(env *Env) (bson.RawValue, error) {
		a, null, err := d.eval(env)
		if err != nil || null {
			return nullValue, err
		}
		ms, err := dateMs(op, a["date"])
		if err != nil {
			return value.Missing, err
		}
		unit, err := unitArg(op, a["unit"])
		if err != nil {
			return value.Missing, err
		}
		bin := int64(1)
		if v, ok := a["binSize"]; ok {
			n, ok := intArg(v)
			if v.Type == bson.TypeInt64 {
				n, ok = v.Int64(), true
			}
			if !ok || n <= 0 {
				return value.Missing, evalErr(op, "$dateTrunc requires 'binSize' to be a 64-bit integer greater than 0, but got value: "+v.String())
			}
			bin = n
		}
		loc, err := tzValue(op, a["timezone"])
		if err != nil {
			return value.Missing, err
		}
		sow, err := startOfWeekArg(op, a)
		if err != nil {
			return value.Missing, err
		}
		lms := localMs(ms, loc)
		t := time.UnixMilli(lms).UTC()
		switch unit {
		case "year", "quarter", "month":
			per := bin
			switch unit {
			case "year":
				per *= 12
			case "quarter":
				per *= 3
			}
			months := int64(t.Year()-2000)*12 + int64(t.Month()-1)
			months = floorDiv(months, per) * per
			y, mo := 2000+floorDiv(months, 12), months-floorDiv(months, 12)*12
			return dateValue(time.Date(int(y), time.Month(mo+1), 1, 0, 0, 0, 0, loc).UnixMilli()), nil
		case "week":
			// Weeks are counted from the first startOfWeek on or after 2000-01-01 (a Saturday).
			ref := int64(((sow-6)+7)%7) * msPerDay
			ref += time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
			size := bin * 7 * msPerDay
			return dateValue(fromLocal(floorDiv(lms-ref, size)*size+ref, loc)), nil
		}
		ref := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
		size := unitMs[unit] * bin
		if size/bin != unitMs[unit] {
			return value.Missing, evalErr(op, "$dateTrunc binSize is too large")
		}
		if unit == "day" {
			return dateValue(fromLocal(floorDiv(lms-ref, size)*size+ref, loc)), nil
		}
		// Sub-day units bin absolute time (with the zone's offset applied to the reference).
		_, off := toTime(ms, loc).Zone()
		r := ref - int64(off)*1000
		return dateValue(floorDiv(ms-r, size)*size + r), nil
	}), nil
}

func compileDateAdd(sign int64) compileFunc {
	return func(op string, args bson.RawValue, sc *scope) (Expr, error) {
		d, err := compileDateArgs(op, args, sc, []string{"startDate", "unit", "amount"}, "startDate", "unit", "amount", "timezone")
		if err != nil {
			return nil, err
		}
		return evalFunc(func(env *Env) (bson.RawValue, error) {
			a, null, err := d.eval(env)
			if err != nil || null {
				return nullValue, err
			}
			ms, err := dateMs(op, a["startDate"])
			if err != nil {
				return value.Missing, err
			}
			unit, err := unitArg(op, a["unit"])
			if err != nil {
				return value.Missing, err
			}
			amt := a["amount"]
			if !value.IsNumber(amt) || !isIntegral(amt) {
				return value.Missing, evalErr(op, op+" expects integer amount of time units")
			}
			n := truncInt(amt)
			if amt.Type == bson.TypeDouble && (asFloat(amt) > 9e18 || asFloat(amt) < -9e18) {
				return value.Missing, evalErr(op, op+" overflowed")
			}
			n *= sign
			loc, err := tzValue(op, a["timezone"])
			if err != nil {
				return value.Missing, err
			}
			r, ok := addUnits(ms, unit, n, loc)
			if !ok {
				return value.Missing, evalErr(op, op+" overflowed")
			}
			return dateValue(r), nil
		}), nil
	}
}

// addUnits adds n units to ms; months and years keep the day, clamped to the month's end.
func addUnits(ms int64, unit string, n int64, loc *time.Location) (int64, bool) {
	const limit = 1 << 40 // far beyond any representable date in units of a month
	switch unit {
	case "year", "quarter", "month":
		switch unit {
		case "year":
			n *= 12
		case "quarter":
			n *= 3
		}
		if n > limit || n < -limit {
			return 0, false
		}
		t := toTime(ms, loc)
		months := int64(t.Year())*12 + int64(t.Month()-1) + n
		y, mo := floorDiv(months, 12), months-floorDiv(months, 12)*12
		if y > 300000 || y < -300000 {
			return 0, false
		}
		last := time.Date(int(y), time.Month(mo+2), 0, 0, 0, 0, 0, time.UTC).Day()
		day := min(t.Day(), last)
		return time.Date(int(y), time.Month(mo+1), day, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), loc).UnixMilli(), true
	case "week", "day":
		days := n
		if unit == "week" {
			days *= 7
		}
		if days > limit || days < -limit {
			return 0, false
		}
		t := toTime(ms, loc)
		return time.Date(t.Year(), t.Month(), t.Day()+int(days), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), loc).UnixMilli(), true
	}
	u := unitMs[unit]
	if n > 0 && n > (1<<62)/u || n < 0 && n < -(1<<62)/u {
		return 0, false
	}
	r := ms + n*u
	if (n > 0 && r < ms) || (n < 0 && r > ms) {
		return 0, false
	}
	return r, true
}

func compileDateDiff(op string, args bson.RawValue, sc *scope) (Expr, error) {
	d, err := compileDateArgs(op, args, sc, []string{"startDate", "endDate", "unit"}, "startDate", "endDate", "unit", "timezone", "startOfWeek")
	if err != nil {
		return nil, err
	}
	return evalFunc(func(env *Env) (bson.RawValue, error) {
		a, null, err := d.eval(env)
		if err != nil || null {
			return nullValue, err
		}
		s, err := dateMs(op, a["startDate"])
		if err != nil {
			return value.Missing, err
		}
		e, err := dateMs(op, a["endDate"])
		if err != nil {
			return value.Missing, err
		}
		unit, err := unitArg(op, a["unit"])
		if err != nil {
			return value.Missing, err
		}
		loc, err := tzValue(op, a["timezone"])
		if err != nil {
			return value.Missing, err
		}
		sow, err := startOfWeekArg(op, a)
		if err != nil {
			return value.Missing, err
		}
		ls, le := localMs(s, loc), localMs(e, loc)
		ts, te := time.UnixMilli(ls).UTC(), time.UnixMilli(le).UTC()
		var r int64
		switch unit {
		case "year":
			r = int64(te.Year() - ts.Year())
		case "quarter":
			r = int64(te.Year()*4+(int(te.Month())-1)/3) - int64(ts.Year()*4+(int(ts.Month())-1)/3)
		case "month":
			r = int64(te.Year()*12+int(te.Month())) - int64(ts.Year()*12+int(ts.Month()))
		case "week":
			// 1970-01-01 was a Thursday (weekday 4).
			shift := int64((4-sow+7)%7) * msPerDay
			r = floorDiv(le+shift, 7*msPerDay) - floorDiv(ls+shift, 7*msPerDay)
		case "day":
			r = floorDiv(le, msPerDay) - floorDiv(ls, msPerDay)
		default:
			u := unitMs[unit]
			r = floorDiv(le, u) - floorDiv(ls, u)
		}
		return int64Value(r), nil
	}), nil
}
