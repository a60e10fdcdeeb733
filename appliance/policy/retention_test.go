package policy

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// pt builds a point from "ID@RFC3339" plus optional flags: "p" protected,
// "f" failed, "b=ID" base.
func pt(t *testing.T, spec string, flags ...string) Point {
	t.Helper()
	id, when, _ := strings.Cut(spec, "@")
	p := Point{ID: id, Time: ts(t, when)}
	for _, f := range flags {
		switch {
		case f == "p":
			p.Protected = true
		case f == "f":
			p.Failed = true
		case strings.HasPrefix(f, "b="):
			p.Base = f[2:]
		}
	}
	return p
}

func TestPlan(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	now := "2026-11-22T00:00:00Z"
	cases := []struct {
		name   string
		r      Retention
		points []Point
		keep   map[string][]string // ID -> reasons
	}{
		{"empty policy keeps all, failed too", Retention{}, []Point{
			pt(t, "a@2020-01-01T00:00:00Z"), pt(t, "b@2026-11-21T00:00:00Z", "f"),
		}, map[string][]string{"a": {"no retention rules"}, "b": {"no retention rules"}}},
		{"negative counts are no rules, not keep nothing", Retention{Last: -1, Daily: -2}, []Point{
			pt(t, "a@2020-01-01T00:00:00Z"),
		}, map[string][]string{"a": {"no retention rules"}}},
		{"lock alone keeps all", Retention{Lock: Day}, []Point{
			pt(t, "a@2020-01-01T00:00:00Z"),
		}, map[string][]string{"a": {"no retention rules"}}},
		{"keep last", Retention{Last: 2}, []Point{
			pt(t, "a@2026-11-19T00:00:00Z"), pt(t, "c@2026-11-21T00:00:00Z"), pt(t, "b@2026-11-20T00:00:00Z"),
		}, map[string][]string{"c": {"last 2"}, "b": {"last 2"}}},
		{"daily counts days that have points", Retention{Daily: 2}, []Point{
			pt(t, "a@2026-11-10T01:00:00Z"), pt(t, "b@2026-11-10T23:00:00Z"),
			pt(t, "c@2026-11-15T02:00:00Z"), pt(t, "d@2026-11-20T02:00:00Z"), pt(t, "e@2026-11-20T01:00:00Z"),
		}, map[string][]string{"d": {"daily 2026-11-20"}, "c": {"daily 2026-11-15"}}},
		{"monthly at month ends", Retention{Monthly: 3}, []Point{
			pt(t, "jan31@2026-01-31T23:30:00Z"), pt(t, "feb1@2026-02-01T00:30:00Z"), pt(t, "feb28@2026-02-28T12:00:00Z"),
			pt(t, "mar31@2026-03-31T12:00:00Z"), pt(t, "apr30@2026-04-30T12:00:00Z"),
		}, map[string][]string{"apr30": {"monthly 2026-04"}, "mar31": {"monthly 2026-03"}, "feb28": {"monthly 2026-02"}}},
		{"monthly buckets in UTC", Retention{Monthly: 2}, []Point{
			pt(t, "a@2026-01-31T22:30:00Z"), pt(t, "b@2026-01-31T23:30:00Z"), pt(t, "c@2026-02-15T00:00:00Z"),
		}, map[string][]string{"c": {"monthly 2026-02"}, "b": {"monthly 2026-01"}}},
		{"monthly buckets in Berlin", Retention{Monthly: 2, Location: berlin}, []Point{
			pt(t, "a@2026-01-31T22:30:00Z"), pt(t, "b@2026-01-31T23:30:00Z"), pt(t, "c@2026-02-15T00:00:00Z"),
		}, map[string][]string{"c": {"monthly 2026-02"}, "a": {"monthly 2026-01"}}},
		{"iso week 53 and calendar years", Retention{Weekly: 2, Yearly: 2}, []Point{
			pt(t, "dec28@2026-12-28T00:00:00Z"), pt(t, "jan2@2027-01-02T00:00:00Z"), pt(t, "jan4@2027-01-04T00:00:00Z"),
		}, map[string][]string{
			"jan4": {"weekly 2027-W01", "yearly 2027"}, "jan2": {"weekly 2026-W53"}, "dec28": {"yearly 2026"},
		}},
		{"leap day", Retention{Daily: 3}, []Point{
			pt(t, "feb28@2028-02-28T12:00:00Z"), pt(t, "feb29a@2028-02-29T01:00:00Z"),
			pt(t, "feb29b@2028-02-29T23:00:00Z"), pt(t, "mar1@2028-03-01T00:00:00Z"),
		}, map[string][]string{"mar1": {"daily 2028-03-01"}, "feb29b": {"daily 2028-02-29"}, "feb28": {"daily 2028-02-28"}}},
		{"hourly: a fall-back hour is one bucket", Retention{Hourly: 2, Location: berlin}, []Point{
			pt(t, "first@2026-10-25T02:15:00+02:00"), pt(t, "second@2026-10-25T02:45:00+01:00"), pt(t, "one@2026-10-25T01:30:00+02:00"),
		}, map[string][]string{"second": {"hourly 2026-10-25T02"}, "one": {"hourly 2026-10-25T01"}}},
		{"lock not expired, expired exactly now, and 1ns short", Retention{Last: 1, Lock: 30 * Day}, []Point{
			pt(t, "new@2026-11-21T00:00:00Z"),
			pt(t, "young@2026-10-23T00:00:00.000000001Z"),
			pt(t, "boundary@2026-10-23T00:00:00Z"),
			pt(t, "old@2026-10-01T00:00:00Z"),
		}, map[string][]string{
			"new":   {"last 1", "locked until 2026-12-21T00:00:00Z"},
			"young": {"locked until 2026-11-22T00:00:00Z"},
		}},
		{"protected and failed", Retention{Last: 2}, []Point{
			pt(t, "newest@2026-11-21T00:00:00Z", "f"), pt(t, "b@2026-11-20T00:00:00Z"), pt(t, "c@2026-11-19T00:00:00Z"),
			pt(t, "base@2026-01-01T00:00:00Z", "p"), pt(t, "badbase@2026-01-02T00:00:00Z", "p", "f"), pt(t, "d@2026-01-03T00:00:00Z"),
		}, map[string][]string{"b": {"last 2"}, "c": {"last 2"}, "base": {"protected"}, "badbase": {"protected"}}},
		{"failed points are skipped by buckets", Retention{Daily: 1}, []Point{
			pt(t, "bad@2026-11-21T23:00:00Z", "f"), pt(t, "good@2026-11-21T01:00:00Z"), pt(t, "bad2@2026-11-21T23:30:00Z", "f"),
		}, map[string][]string{"good": {"daily 2026-11-21"}}},
		{"failed but locked", Retention{Last: 1, Lock: 7 * Day}, []Point{
			pt(t, "bad@2026-11-21T23:00:00Z", "f"), pt(t, "good@2026-11-01T00:00:00Z"),
		}, map[string][]string{"bad": {"locked until 2026-11-28T23:00:00Z"}, "good": {"last 1"}}},
		{"keep last with GFS", Retention{Last: 2, Daily: 3, Weekly: 2}, []Point{
			pt(t, "sat2@2026-11-21T20:00:00Z"), pt(t, "sat1@2026-11-21T08:00:00Z"),
			pt(t, "fri@2026-11-20T08:00:00Z"), pt(t, "thu@2026-11-19T08:00:00Z"),
			pt(t, "sun@2026-11-15T08:00:00Z"), pt(t, "mon@2026-11-09T08:00:00Z"),
		}, map[string][]string{
			"sat2": {"last 2", "daily 2026-11-21", "weekly 2026-W47"},
			"sat1": {"last 2"},
			"fri":  {"daily 2026-11-20"},
			"thu":  {"daily 2026-11-19"},
			"sun":  {"weekly 2026-W46"},
		}},
		{"a removed base does not hold its child", Retention{Last: 1}, []Point{
			pt(t, "full@2026-11-20T00:00:00Z"), pt(t, "incr@2026-11-21T00:00:00Z", "b=full"),
		}, map[string][]string{"incr": {"last 1"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			keep, remove := Plan(c.points, c.r, ts(t, now))
			got := map[string][]string{}
			for _, k := range keep {
				got[k.ID] = k.Reasons
			}
			if !reflect.DeepEqual(got, c.keep) {
				t.Fatalf("kept %v\nwant %v", got, c.keep)
			}
			if len(keep)+len(remove) != len(c.points) {
				t.Fatalf("%d kept + %d removed != %d points", len(keep), len(remove), len(c.points))
			}
			for _, p := range remove {
				if _, ok := c.keep[p.ID]; ok {
					t.Fatalf("%s both kept and removed", p.ID)
				}
			}
		})
	}
}

func TestRetentionValidate(t *testing.T) {
	if err := (Retention{Last: 3, Daily: 7, Lock: Week}).Validate(); err != nil {
		t.Fatal(err)
	}
	for _, r := range []Retention{{Last: -1}, {Hourly: -1}, {Daily: -1}, {Weekly: -1}, {Monthly: -1}, {Yearly: -1}, {Lock: -time.Hour}} {
		if err := r.Validate(); !errors.Is(err, ErrRetention) {
			t.Errorf("%+v: Validate = %v, want ErrRetention", r, err)
		}
	}
}

// bucketKeys mirrors the documented period of each rule, written
// separately from Plan's so the property test checks the rule, not the code.
var bucketKeys = map[string]func(time.Time) string{
	"hourly": func(t time.Time) string {
		return fmt.Sprintf("%d-%02d-%02dT%02d", t.Year(), t.Month(), t.Day(), t.Hour())
	},
	"daily":   func(t time.Time) string { return fmt.Sprintf("%d-%02d-%02d", t.Year(), t.Month(), t.Day()) },
	"weekly":  func(t time.Time) string { y, w := t.ISOWeek(); return fmt.Sprintf("%d-W%02d", y, w) },
	"monthly": func(t time.Time) string { return fmt.Sprintf("%d-%02d", t.Year(), t.Month()) },
	"yearly":  func(t time.Time) string { return fmt.Sprint(t.Year()) },
}

func TestPlanProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 2026))
	zones := []string{"UTC", "Europe/Berlin", "America/New_York"}
	now := ts(t, "2026-11-22T00:00:00Z")
	for iter := range 400 {
		loc, _ := time.LoadLocation(zones[rng.IntN(len(zones))])
		r := Retention{Location: loc}
		counts := map[string]*int{"hourly": &r.Hourly, "daily": &r.Daily, "weekly": &r.Weekly, "monthly": &r.Monthly, "yearly": &r.Yearly}
		for _, c := range counts {
			if rng.IntN(2) == 0 {
				*c = rng.IntN(6)
			}
		}
		if rng.IntN(2) == 0 {
			r.Last = rng.IntN(6)
		}
		if rng.IntN(3) == 0 {
			r.Lock = time.Duration(rng.IntN(60*24)) * time.Hour
		}
		n := rng.IntN(60)
		points := make([]Point, n)
		// A span from hours to years, so every rule both fills and runs out.
		span := time.Duration(1+rng.IntN(3*365*24)) * time.Hour
		for i := range points {
			points[i] = Point{
				ID:        fmt.Sprintf("p%03d", i),
				Time:      now.Add(-time.Duration(rng.Int64N(int64(span)))),
				Protected: rng.IntN(10) == 0,
				Failed:    rng.IntN(8) == 0,
			}
		}
		keep, remove := Plan(points, r, now)
		ctx := fmt.Sprintf("iter %d, %+v", iter, r)

		// Every point in exactly one list.
		seen := map[string]int{}
		for _, k := range keep {
			seen[k.ID]++
			if len(k.Reasons) == 0 {
				t.Fatalf("%s: %s kept without a reason", ctx, k.ID)
			}
		}
		for _, p := range remove {
			seen[p.ID]++
			if p.Protected || (r.Lock > 0 && p.Time.Add(r.Lock).After(now)) {
				t.Fatalf("%s: removed protected or locked %+v", ctx, p)
			}
		}
		for _, p := range points {
			if seen[p.ID] != 1 {
				t.Fatalf("%s: %s appears %d times", ctx, p.ID, seen[p.ID])
			}
		}

		newestFirst := func(a, b time.Time) bool { return !a.Before(b) }
		for i := 1; i < len(keep); i++ {
			if !newestFirst(keep[i-1].Time, keep[i].Time) {
				t.Fatalf("%s: keep not newest first at %d", ctx, i)
			}
		}
		for i := 1; i < len(remove); i++ {
			if !newestFirst(remove[i-1].Time, remove[i].Time) {
				t.Fatalf("%s: remove not newest first at %d", ctx, i)
			}
		}

		// Independent of input order.
		shuffled := slices.Clone(points)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		keep2, remove2 := Plan(shuffled, r, now)
		if !reflect.DeepEqual(keep, keep2) || !reflect.DeepEqual(remove, remove2) {
			t.Fatalf("%s: result depends on input order", ctx)
		}

		// Each rule keeps exactly the expected points, by brute force.
		good := slices.DeleteFunc(slices.Clone(points), func(p Point) bool { return p.Failed })
		slices.SortFunc(good, func(a, b Point) int { return b.Time.Compare(a.Time) })
		reasons := map[string][]string{}
		for _, k := range keep {
			reasons[k.ID] = k.Reasons
		}
		empty := r.Last == 0 && r.Hourly == 0 && r.Daily == 0 && r.Weekly == 0 && r.Monthly == 0 && r.Yearly == 0
		if empty && len(remove) > 0 {
			t.Fatalf("%s: empty policy removed %d points", ctx, len(remove))
		}
		for i, p := range good {
			has := slices.Contains(reasons[p.ID], fmt.Sprintf("last %d", r.Last))
			if has != (i < r.Last) {
				t.Fatalf("%s: point %d of the good ones, keep-last %d: kept for last = %v", ctx, i, r.Last, has)
			}
		}
		for name, key := range bucketKeys {
			want := map[string]bool{} // IDs the rule must keep
			periods := map[string]bool{}
			for _, p := range good {
				k := key(p.Time.In(loc))
				if periods[k] {
					continue
				}
				if len(periods) == *counts[name] {
					break
				}
				periods[k] = true
				want[p.ID] = true
			}
			for _, p := range points {
				got := false
				for _, reason := range reasons[p.ID] {
					if strings.HasPrefix(reason, name+" ") {
						got = true
					}
				}
				if got != want[p.ID] {
					t.Fatalf("%s: %s rule on %s (%s): kept %v, want %v", ctx, name, p.ID, p.Time.In(loc), got, want[p.ID])
				}
			}
		}
	}
}
