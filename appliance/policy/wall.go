package policy

import "time"

// date is a civil date; it is kept as midnight UTC so that stepping by days
// never meets a daylight-saving change.
type date struct{ t time.Time }

func dateOf(t time.Time) date {
	y, m, d := t.Date()
	return date{time.Date(y, m, d, 0, 0, 0, 0, time.UTC)}
}

func (d date) add(days int) date { return date{d.t.AddDate(0, 0, days)} }

// daysIn is the length of month m of year y.
func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// wallSeconds is t's local wall clock as seconds since the Unix epoch, as
// if the wall clock were UTC; comparing it orders wall times.
func wallSeconds(t time.Time) int64 {
	_, off := t.Zone()
	return t.Unix() + int64(off)
}

// wallInstant is the instant at which the wall clock of loc shows h:mi on
// day d, following the package's DST rules: a wall time that occurs twice
// resolves to its first occurrence, and one that does not occur (it falls
// in a spring-forward gap) resolves to the first instant after the gap.
// time.Date alone does not say which of two instants it picks, so both
// cases are settled here from the zone's transition instants.
func wallInstant(d date, h, mi int, loc *time.Location) time.Time {
	y, m, day := d.t.Date()
	want := time.Date(y, m, day, h, mi, 0, 0, time.UTC).Unix()
	t := time.Date(y, m, day, h, mi, 0, 0, loc)
	if wallSeconds(t) == want {
		start, _ := t.ZoneBounds()
		if start.IsZero() {
			return t
		}
		_, off := t.Zone()
		_, prevOff := start.Add(-time.Second).Zone()
		if prevOff > off {
			// The clock went back at start: the same wall time may
			// also have been shown, earlier, under the old offset.
			e := t.Add(-time.Duration(prevOff-off) * time.Second)
			if e.Before(start) && wallSeconds(e) == want {
				return e
			}
		}
		return t
	}
	start, end := t.ZoneBounds()
	for _, tr := range []time.Time{start, end} {
		if tr.IsZero() {
			continue
		}
		if wallSeconds(tr.Add(-time.Second)) < want && wallSeconds(tr) > want {
			return tr
		}
	}
	return t
}
