package policy

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Retention says which restore points of one object to keep. A count of
// zero (Plan reads a negative one as zero; Validate refuses it) switches a
// rule off. A Retention whose counts are all zero keeps every point: an
// empty policy must never delete by accident.
type Retention struct {
	Last    int // the Last newest points
	Hourly  int // the newest point of each of the last Hourly hours that have one
	Daily   int // ... days
	Weekly  int // ... ISO weeks (Monday to Sunday)
	Monthly int // ... calendar months
	Yearly  int // ... calendar years
	// Lock keeps every point younger than Lock (Time+Lock after now) out of
	// remove, whatever the rules and whoever asks.
	Lock time.Duration
	// Location is the zone buckets are computed in; nil means UTC.
	Location *time.Location
}

// Validate refuses negative counts and a negative lock, so a policy record
// never holds a value Plan would have to reinterpret.
func (r Retention) Validate() error {
	for _, c := range []struct {
		name string
		n    int
	}{{"keep-last", r.Last}, {"keep-hourly", r.Hourly}, {"keep-daily", r.Daily}, {"keep-weekly", r.Weekly}, {"keep-monthly", r.Monthly}, {"keep-yearly", r.Yearly}} {
		if c.n < 0 {
			return fmt.Errorf("%w: %s %d is negative", ErrRetention, c.name, c.n)
		}
	}
	if r.Lock < 0 {
		return fmt.Errorf("%w: lock %v is negative", ErrRetention, r.Lock)
	}
	return nil
}

// ErrRetention is wrapped by every Validate error.
var ErrRetention = errors.New("invalid retention")

// Point is one restore point as retention sees it.
type Point struct {
	ID   string
	Time time.Time
	// Base is the ID of the point this one was taken incrementally
	// against, if any. Every restore point is complete on its own, so
	// Plan may remove a base whose children it keeps; Base is carried so
	// the caller can report or refuse that.
	Base string
	// Protected points are in use (the base of a running incremental, a
	// point a job is reading) and are always kept.
	Protected bool
	// Failed points did not verify. They never fill a keep rule and are
	// removed unless locked or protected (or r has no keep rule at all).
	Failed bool
}

// Kept is a point Plan keeps, with every reason it is kept, in this order:
// "no retention rules", "last 3", "hourly 2026-11-20T14", "daily 2026-11-20",
// "weekly 2026-W47", "monthly 2026-11", "yearly 2026",
// "locked until 2026-12-20T02:00:00Z" (UTC), "protected".
type Kept struct {
	Point
	Reasons []string
}

// Plan splits points into those r keeps and those it removes, each list
// newest first. Every point lands in exactly one list; the result does not
// depend on the order of points.
//
// The rules are independent (as in restic; unlike Proxmox Backup Server, a
// period already kept by one rule still counts for the next): going from
// newest to oldest over the points that did not fail, keep-last keeps the
// first Last, and each bucket rule keeps the newest point of each period
// until it has kept points from its count of distinct periods. Periods are
// read in r.Location; on a fall-back day both 01:xx hours are one hourly
// period. Locked and protected points are kept on top of that, and do fill
// the rules like any other point that did not fail.
func Plan(points []Point, r Retention, now time.Time) (keep []Kept, remove []Point) {
	sorted := slices.Clone(points)
	slices.SortStableFunc(sorted, comparePoints)
	loc := r.Location
	if loc == nil {
		loc = time.UTC
	}
	rules := []struct {
		name  string
		count int
		key   func(time.Time) string
	}{
		{"hourly", r.Hourly, func(t time.Time) string { return t.Format("2006-01-02T15") }},
		{"daily", r.Daily, func(t time.Time) string { return t.Format("2006-01-02") }},
		{"weekly", r.Weekly, func(t time.Time) string {
			y, w := t.ISOWeek()
			return fmt.Sprintf("%04d-W%02d", y, w)
		}},
		{"monthly", r.Monthly, func(t time.Time) string { return t.Format("2006-01") }},
		{"yearly", r.Yearly, func(t time.Time) string { return strconv.Itoa(t.Year()) }},
	}
	empty := r.Last <= 0
	lastKey := make([]string, len(rules))
	left := make([]int, len(rules))
	for i, rule := range rules {
		left[i] = max(rule.count, 0)
		empty = empty && rule.count <= 0
	}
	lastLeft := max(r.Last, 0)
	for _, p := range sorted {
		var reasons []string
		if empty {
			reasons = append(reasons, "no retention rules")
		}
		if !p.Failed {
			if lastLeft > 0 {
				lastLeft--
				reasons = append(reasons, fmt.Sprintf("last %d", r.Last))
			}
			local := p.Time.In(loc)
			for i, rule := range rules {
				k := rule.key(local)
				if left[i] > 0 && k != lastKey[i] {
					left[i]--
					lastKey[i] = k
					reasons = append(reasons, rule.name+" "+k)
				}
			}
		}
		if r.Lock > 0 && p.Time.Add(r.Lock).After(now) {
			reasons = append(reasons, "locked until "+p.Time.Add(r.Lock).UTC().Format(time.RFC3339))
		}
		if p.Protected {
			reasons = append(reasons, "protected")
		}
		if len(reasons) > 0 {
			keep = append(keep, Kept{Point: p, Reasons: reasons})
		} else {
			remove = append(remove, p)
		}
	}
	return keep, remove
}

// comparePoints orders newest first, then by every other field so that
// equal times still sort the same whatever the input order.
func comparePoints(a, b Point) int {
	if c := b.Time.Compare(a.Time); c != 0 {
		return c
	}
	if c := cmp.Compare(a.ID, b.ID); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Base, b.Base); c != 0 {
		return c
	}
	if a.Protected != b.Protected {
		if a.Protected {
			return -1
		}
		return 1
	}
	if a.Failed != b.Failed {
		if a.Failed {
			return 1
		}
		return -1
	}
	return 0
}
