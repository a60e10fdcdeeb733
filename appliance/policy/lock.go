package policy

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// ErrDuration is wrapped by every ParseLockDuration error.
var ErrDuration = errors.New("invalid duration")

// Day, Week and Year are the calendar-free units of lock durations. A year
// is 365 days: a lock is a span of time, not a calendar date, so leap days
// do not stretch it.
const (
	Day  = 24 * time.Hour
	Week = 7 * Day
	Year = 365 * Day
)

var lockUnits = []struct {
	suffix string
	d      time.Duration
}{{"y", Year}, {"w", Week}, {"d", Day}, {"h", time.Hour}}

// ParseLockDuration parses a whole number followed by one unit: h (hour),
// d (day, 24 h), w (week, 7 d) or y (year, 365 d), e.g. "30d". "0" means
// no lock. Minutes are not accepted: "m" would be read as months by some.
func ParseLockDuration(s string) (time.Duration, error) {
	if s == "0" {
		return 0, nil
	}
	for _, u := range lockUnits {
		num, ok := cutSuffix(s, u.suffix)
		if !ok {
			continue
		}
		if !digits(num) || len(num) > 6 {
			return 0, fmt.Errorf("%w %q: want a whole number before %q", ErrDuration, s, u.suffix)
		}
		n, _ := strconv.ParseInt(num, 10, 64)
		if n > math.MaxInt64/int64(u.d) {
			return 0, fmt.Errorf("%w %q: too long", ErrDuration, s)
		}
		return time.Duration(n) * u.d, nil
	}
	return 0, fmt.Errorf("%w %q: want a number and a unit h, d, w or y, e.g. 30d", ErrDuration, s)
}

func cutSuffix(s, suffix string) (string, bool) {
	if len(s) > len(suffix) && s[len(s)-len(suffix):] == suffix {
		return s[:len(s)-len(suffix)], true
	}
	return "", false
}

// FormatLockDuration writes d in the largest unit of ParseLockDuration that
// divides it, so FormatLockDuration(ParseLockDuration(s)) is canonical
// ("14d" becomes "2w"). Other durations fall back to time.Duration's form.
func FormatLockDuration(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	for _, u := range lockUnits {
		if d > 0 && d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.suffix
		}
	}
	return d.String()
}
