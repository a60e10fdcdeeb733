package policy

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// cronSpec is a parsed five-field cron expression. Each set is a bit mask
// of the allowed values.
type cronSpec struct {
	fields  [5]string // canonical (lower-case) text of each field
	minute  uint64
	hour    uint64
	dom     uint64
	month   uint64
	dow     uint64 // Sunday = bit 0
	domStar bool   // field begins with "*": Vixie cron ANDs day fields only then
	dowStar bool
}

type cronField struct {
	name     string
	min, max int
	names    []string // names[i] is value min+i
}

var (
	monthNames = []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}
	dayNames   = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}
	cronFields = [5]cronField{
		{name: "minute", min: 0, max: 59},
		{name: "hour", min: 0, max: 23},
		{name: "day of month", min: 1, max: 31},
		{name: "month", min: 1, max: 12, names: monthNames},
		{name: "day of week", min: 0, max: 7, names: dayNames},
	}
)

func parseCron(fields []string) (cronSpec, error) {
	var c cronSpec
	var sets [5]uint64
	for i, f := range fields {
		f = strings.ToLower(f)
		set, err := cronFields[i].parse(f)
		if err != nil {
			return cronSpec{}, fmt.Errorf("cron %s field %q: %w", cronFields[i].name, f, err)
		}
		c.fields[i] = f
		sets[i] = set
	}
	c.minute, c.hour, c.dom, c.month, c.dow = sets[0], sets[1], sets[2], sets[3], sets[4]
	if c.dow&(1<<7) != 0 {
		c.dow = c.dow&^(1<<7) | 1 // 7 is Sunday too
	}
	c.domStar = strings.HasPrefix(c.fields[2], "*")
	c.dowStar = strings.HasPrefix(c.fields[4], "*")
	if c.dowStar {
		// Only the day of month restricts the date: it must fit in
		// at least one allowed month, or the expression never runs.
		// (When the day of week is restricted too, either matches;
		// a "*..." day of month always holds day 1.)
		if !c.domFits() {
			return cronSpec{}, fmt.Errorf("cron day of month %q never occurs in month %q", c.fields[2], c.fields[3])
		}
	}
	return c, nil
}

// domFits reports whether some allowed day of month exists in some allowed
// month (February counted with 29 days).
func (c cronSpec) domFits() bool {
	for m := 1; m <= 12; m++ {
		if c.month&(1<<m) == 0 {
			continue
		}
		for d := 1; d <= daysIn(2000, time.Month(m)); d++ {
			if c.dom&(1<<d) != 0 {
				return true
			}
		}
	}
	return false
}

func (f cronField) parse(s string) (uint64, error) {
	if s == "" {
		return 0, fmt.Errorf("empty")
	}
	var set uint64
	for _, item := range strings.Split(s, ",") {
		lo, hi, step := f.min, f.max, 1
		rng, stepText, hasStep := strings.Cut(item, "/")
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if err != nil || n < 1 || n > f.max {
				return 0, fmt.Errorf("bad step %q", stepText)
			}
			step = n
		}
		switch {
		case rng == "*":
			if f.name == "day of week" {
				hi = 6 // "*" is every day once, not Sunday twice
			}
		case strings.Contains(rng, "-"):
			a, b, _ := strings.Cut(rng, "-")
			var err error
			if lo, err = f.value(a); err != nil {
				return 0, err
			}
			if hi, err = f.value(b); err != nil {
				return 0, err
			}
			if lo > hi {
				return 0, fmt.Errorf("range %q runs backwards", rng)
			}
		default:
			v, err := f.value(rng)
			if err != nil {
				return 0, err
			}
			lo, hi = v, v
			if hasStep {
				hi = f.max // "a/n" is a, a+n, ... up to the maximum
			}
		}
		for v := lo; v <= hi; v += step {
			set |= 1 << v
		}
	}
	return set, nil
}

func (f cronField) value(s string) (int, error) {
	for i, n := range f.names {
		if s == n {
			return f.min + i, nil
		}
	}
	if len(s) > 2 || !digits(s) {
		return 0, fmt.Errorf("bad value %q", s)
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < f.min || v > f.max {
		return 0, fmt.Errorf("value %q out of range %d-%d", s, f.min, f.max)
	}
	return v, nil
}

// dateMatches applies Vixie cron's rule: when both day fields are
// restricted a date matches if either does, otherwise both must.
func (c cronSpec) dateMatches(d date) bool {
	_, m, day := d.t.Date()
	if c.month&(1<<int(m)) == 0 {
		return false
	}
	domOK := c.dom&(1<<day) != 0
	dowOK := c.dow&(1<<int(d.t.Weekday())) != 0
	if !c.domStar && !c.dowStar {
		return domOK || dowOK
	}
	return domOK && dowOK
}

func (c cronSpec) String() string { return strings.Join(c.fields[:], " ") }
