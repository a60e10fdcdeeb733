package policy

import "time"

// Next returns the first run of s strictly after after, or the zero time
// for the zero Schedule. Wall times follow the DST rules in the package
// comment. Hourly schedules are the exception: they run at every instant
// whose local minute is MM, so a repeated hour runs twice and a skipped
// hour not at all; every run is still about an hour from the last.
func (s Schedule) Next(after time.Time) time.Time {
	if s.kind == 0 {
		return time.Time{}
	}
	if s.kind == every {
		n, d := after.UnixNano(), int64(s.every)
		return time.Unix(0, (floorDiv(n, d)+1)*d).UTC()
	}
	loc := s.Location()
	if s.kind == hourly {
		c := after.Truncate(time.Minute).Add(time.Minute)
		for range 4 * 60 {
			if c.In(loc).Minute() == s.minute {
				return c
			}
			c = c.Add(time.Minute)
		}
		return time.Time{}
	}
	// Start a day early: a wall time in a gap resolves forward in time.
	start := dateOf(after.In(loc)).add(-1)
	for i := range searchDays {
		d := start.add(i)
		for _, w := range s.walls(d) {
			if t := wallInstant(d, w/60, w%60, loc); t.After(after) {
				return t
			}
		}
	}
	return time.Time{}
}

// last returns the latest run of s at or before at, or the zero time if
// there is none within searchDays.
func (s Schedule) last(at time.Time) time.Time {
	if s.kind == 0 {
		return time.Time{}
	}
	if s.kind == every {
		n, d := at.UnixNano(), int64(s.every)
		return time.Unix(0, floorDiv(n, d)*d).UTC()
	}
	loc := s.Location()
	if s.kind == hourly {
		c := at.Truncate(time.Minute)
		for range 4 * 60 {
			if c.In(loc).Minute() == s.minute {
				return c
			}
			c = c.Add(-time.Minute)
		}
		return time.Time{}
	}
	start := dateOf(at.In(loc)).add(1)
	for i := range searchDays {
		d := start.add(-i)
		walls := s.walls(d)
		for j := len(walls) - 1; j >= 0; j-- {
			if t := wallInstant(d, walls[j]/60, walls[j]%60, loc); !t.After(at) {
				return t
			}
		}
	}
	return time.Time{}
}

// walls lists, in ascending order, the wall times (minutes after local
// midnight) at which s runs on day d.
func (s Schedule) walls(d date) []int {
	y, m, day := d.t.Date()
	switch s.kind {
	case daily:
	case weekly:
		if s.days&(1<<d.t.Weekday()) == 0 {
			return nil
		}
	case monthly:
		want := daysIn(y, m)
		if s.dom > 0 && s.dom < want {
			want = s.dom // "monthly 31" clamps to the last day
		}
		if day != want {
			return nil
		}
	case cron:
		if !s.cron.dateMatches(d) {
			return nil
		}
		var w []int
		for h := range 24 {
			if s.cron.hour&(1<<h) == 0 {
				continue
			}
			for mi := range 60 {
				if s.cron.minute&(1<<mi) != 0 {
					w = append(w, h*60+mi)
				}
			}
		}
		return w
	default:
		return nil
	}
	return []int{s.hour*60 + s.minute}
}

// Due reports whether s should run now given the slot (or start time) of
// its last run, and the slot to run for. However many slots passed since
// lastRun — the appliance was down over several — Due returns only the
// latest, so a missed window runs once, never once per missed slot.
// A zero lastRun means "never ran": the latest slot at or before now is
// due. A caller that wants a new policy to wait for its first slot passes
// the policy's creation time instead.
func Due(s Schedule, lastRun, now time.Time) (due bool, slot time.Time) {
	slot = s.last(now)
	if slot.IsZero() || !slot.After(lastRun) {
		return false, time.Time{}
	}
	return true, slot
}

// floorDiv is n/d rounded toward negative infinity (d > 0).
func floorDiv(n, d int64) int64 {
	q := n / d
	if n%d < 0 {
		q--
	}
	return q
}
