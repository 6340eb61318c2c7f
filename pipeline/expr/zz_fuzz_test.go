package expr

import "testing"

func FuzzZZDate(f *testing.F) {
	for _, s := range []string{"2017-07-14T12:02:44.771 GMT+02:00", "July 4th, 2017 11am", "Tue Jan 1 10:00:00 2024", "7/4/17", "2024-W01-1", "4/26/1992:+285"} {
		f.Add(s, "")
		f.Add(s, "%m/%d/%Y:%Z")
	}
	f.Fuzz(func(t *testing.T, s, format string) {
		_, _ = parseDate(s, format, nil)
	})
}
