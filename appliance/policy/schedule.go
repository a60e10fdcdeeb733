package policy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrSchedule is wrapped by every schedule parse error.
var ErrSchedule = errors.New("invalid schedule")

type kind uint8

const (
	hourly kind = iota + 1
	daily
	weekly
	monthly
	cron
	every
)

// Bounds of an "every" interval.
const (
	minEvery = 10 * time.Second
	maxEvery = 31 * 24 * time.Hour
)

// searchDays bounds how far Next and Due look. A cron day-of-month rule
// may need eight years (29 February across 2100) and a day-of-week rule
// combined with a "*/n" day of month up to a 28-year calendar cycle.
const searchDays = 29 * 366

// Schedule says when a policy runs. The zero Schedule never runs (Next
// returns the zero time). Build one with ParseSchedule.
type Schedule struct {
	kind   kind
	hour   int
	minute int
	days   uint8 // weekly: bit i = time.Weekday(i)
	dom    int   // monthly: 1..31, or 0 for "last"
	cron   cronSpec
	every  time.Duration
	loc    *time.Location
}

// ParseSchedule parses one of
//
//	hourly [:MM] [ZONE]
//	daily HH:MM [ZONE]
//	weekly DAY[,DAY|DAY-DAY...] HH:MM [ZONE]   (DAY is mon..sun)
//	monthly DOM|last HH:MM [ZONE]              (DOM is 1..31)
//	cron MIN HOUR DOM MONTH DOW [ZONE]
//	every DURATION                             (10s to 744h, whole seconds)
//
// An "every" schedule runs at the multiples of DURATION since the Unix
// epoch ("every 4h": 00:00, 04:00, ... UTC), so every node agrees on its
// slots; it takes no zone.
//
// ZONE is an IANA name such as Europe/Berlin; without one the schedule is
// in UTC. Keywords and names are case-insensitive, the zone is not. The
// cron prefix is required so that a cron expression is never mistaken for
// a typo of another form.
func ParseSchedule(s string) (Schedule, error) {
	sc, err := parseSchedule(s)
	if err != nil {
		return Schedule{}, fmt.Errorf("%w %q: %w", ErrSchedule, s, err)
	}
	return sc, nil
}

func parseSchedule(s string) (Schedule, error) {
	tok := strings.Fields(s)
	if len(tok) == 0 {
		return Schedule{}, errors.New("empty")
	}
	var sc Schedule
	var args int // tokens after the keyword, zone excluded
	switch strings.ToLower(tok[0]) {
	case "hourly":
		sc.kind, args = hourly, 0
		if len(tok) > 1 && strings.HasPrefix(tok[1], ":") {
			args = 1
		}
	case "daily":
		sc.kind, args = daily, 1
	case "weekly":
		sc.kind, args = weekly, 2
	case "monthly":
		sc.kind, args = monthly, 2
	case "cron":
		sc.kind, args = cron, 5
	case "every":
		return parseEvery(tok[1:])
	default:
		return Schedule{}, fmt.Errorf("unknown form %q (want hourly, daily, weekly, monthly, cron or every)", tok[0])
	}
	rest := tok[1:]
	if len(rest) < args || len(rest) > args+1 {
		return Schedule{}, fmt.Errorf("%s takes %d fields and an optional zone, got %d", tok[0], args, len(rest))
	}
	sc.loc = time.UTC
	if len(rest) == args+1 {
		loc, err := loadZone(rest[args])
		if err != nil {
			return Schedule{}, err
		}
		sc.loc = loc
	}
	rest = rest[:args]
	var err error
	switch sc.kind {
	case hourly:
		if len(rest) == 1 {
			sc.minute, err = parseMinute(rest[0][1:])
		}
	case daily:
		sc.hour, sc.minute, err = parseClock(rest[0])
	case weekly:
		if sc.days, err = parseDays(strings.ToLower(rest[0])); err == nil {
			sc.hour, sc.minute, err = parseClock(rest[1])
		}
	case monthly:
		if sc.dom, err = parseDOM(strings.ToLower(rest[0])); err == nil {
			sc.hour, sc.minute, err = parseClock(rest[1])
		}
	case cron:
		sc.cron, err = parseCron(rest)
	}
	if err != nil {
		return Schedule{}, err
	}
	return sc, nil
}

func parseEvery(rest []string) (Schedule, error) {
	if len(rest) != 1 {
		return Schedule{}, fmt.Errorf("every takes one duration (such as 4h or 30m) and no zone, got %d fields", len(rest))
	}
	d, err := time.ParseDuration(rest[0])
	switch {
	case err != nil:
		return Schedule{}, fmt.Errorf("duration %q: want one such as 4h, 30m or 90s", rest[0])
	case d < minEvery || d > maxEvery:
		return Schedule{}, fmt.Errorf("every %s: want %s to %s", d, minEvery, maxEvery)
	case d%time.Second != 0:
		return Schedule{}, fmt.Errorf("every %s: want whole seconds", d)
	}
	return Schedule{kind: every, every: d, loc: time.UTC}, nil
}

// formatEvery writes d in its largest whole unit: 4h, 90m, 45s.
func formatEvery(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	}
	return strconv.FormatInt(int64(d/time.Second), 10) + "s"
}

func loadZone(name string) (*time.Location, error) {
	if name == "Local" {
		return nil, errors.New(`zone "Local" differs between nodes; name an IANA zone`)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/_+-", r)) {
			return nil, fmt.Errorf("zone %q: bad character %q", name, r)
		}
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("zone %q: %w", name, err)
	}
	return loc, nil
}

func parseClock(s string) (h, m int, err error) {
	hs, ms, ok := strings.Cut(s, ":")
	if !ok || len(hs) < 1 || len(hs) > 2 || !digits(hs) {
		return 0, 0, fmt.Errorf("time %q: want HH:MM", s)
	}
	h, _ = strconv.Atoi(hs)
	if h > 23 {
		return 0, 0, fmt.Errorf("time %q: hour out of range 0-23", s)
	}
	if m, err = parseMinute(ms); err != nil {
		return 0, 0, fmt.Errorf("time %q: %w", s, err)
	}
	return h, m, nil
}

func parseMinute(s string) (int, error) {
	if len(s) != 2 || !digits(s) {
		return 0, fmt.Errorf("minute %q: want two digits", s)
	}
	m, _ := strconv.Atoi(s)
	if m > 59 {
		return 0, fmt.Errorf("minute %q out of range 00-59", s)
	}
	return m, nil
}

func digits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// weekOrder is Monday first, the order canonical weekly lists use.
var weekOrder = []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday, time.Sunday}

func dayIndex(s string) (int, error) {
	for i, d := range weekOrder {
		if dayNames[d] == s {
			return i, nil
		}
	}
	return 0, fmt.Errorf("day %q: want mon, tue, wed, thu, fri, sat or sun", s)
}

func parseDays(s string) (uint8, error) {
	var set uint8
	for _, item := range strings.Split(s, ",") {
		a, b, isRange := strings.Cut(item, "-")
		lo, err := dayIndex(a)
		if err != nil {
			return 0, err
		}
		hi := lo
		if isRange {
			if hi, err = dayIndex(b); err != nil {
				return 0, err
			}
			if hi < lo {
				return 0, fmt.Errorf("day range %q runs backwards (weeks start on mon)", item)
			}
		}
		for i := lo; i <= hi; i++ {
			set |= 1 << weekOrder[i]
		}
	}
	return set, nil
}

func parseDOM(s string) (int, error) {
	if s == "last" {
		return 0, nil
	}
	if len(s) > 2 || !digits(s) {
		return 0, fmt.Errorf("day of month %q: want 1-31 or last", s)
	}
	d, _ := strconv.Atoi(s)
	if d < 1 || d > 31 {
		return 0, fmt.Errorf("day of month %q out of range 1-31", s)
	}
	return d, nil
}

// String is the canonical form: lower-case keywords, single spaces,
// HH:MM with two-digit hours, weekly days expanded in mon..sun order, and
// the zone omitted when it is UTC. ParseSchedule(s.String()) equals s.
func (s Schedule) String() string {
	var b strings.Builder
	clock := fmt.Sprintf("%02d:%02d", s.hour, s.minute)
	switch s.kind {
	case hourly:
		fmt.Fprintf(&b, "hourly :%02d", s.minute)
	case daily:
		b.WriteString("daily " + clock)
	case weekly:
		var names []string
		for _, d := range weekOrder {
			if s.days&(1<<d) != 0 {
				names = append(names, dayNames[d])
			}
		}
		b.WriteString("weekly " + strings.Join(names, ",") + " " + clock)
	case monthly:
		dom := "last"
		if s.dom > 0 {
			dom = strconv.Itoa(s.dom)
		}
		b.WriteString("monthly " + dom + " " + clock)
	case cron:
		b.WriteString("cron " + s.cron.String())
	case every:
		return "every " + formatEvery(s.every)
	default:
		return ""
	}
	if s.loc != nil && s.loc != time.UTC && s.loc.String() != "UTC" {
		b.WriteString(" " + s.loc.String())
	}
	return b.String()
}

// Location is the zone the schedule's wall times are in.
func (s Schedule) Location() *time.Location {
	if s.loc == nil {
		return time.UTC
	}
	return s.loc
}
