// Package report computes the daily backup report and delivers it.
//
// A report covers one calendar day in one time zone (a Period) and is a pure
// function of the catalog's restore points and backup jobs and of the time it
// was made: nothing in Compute reads the clock, so the same inputs give the
// same report. Build fetches the inputs through the small Catalog interface.
//
// Per object (source/object) it gives the last result in the period, the last
// backup ever made up to the period's end, what the period's backups read and
// stored, the dedupe ratio, the restore point count and every failed backup
// job with its error. Objects with no successful backup in the period are
// flagged (no_success), including objects whose last restore point is older
// than the period. JSON field names are stable; docs/reports.md lists them.
//
// Delivery (SMTP, webhook) is in mail.go, smtp.go and webhook.go; the daily
// background sender in sender.go.
package report

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cairnhq/cairn/cluster/meta"
)

// Catalog is what a report reads; *meta.Local and *meta.Replicated are ones.
type Catalog interface {
	RestorePoints(ctx context.Context, f meta.Filter) ([]meta.RestorePoint, error)
	Jobs(ctx context.Context, f meta.JobFilter) ([]meta.Job, error)
}

// ErrInvalid is returned for a malformed date or time zone.
var ErrInvalid = errors.New("invalid")

// Results of an object in a period.
const (
	ResultSucceeded = "succeeded"
	ResultFailed    = "failed"
	ResultNone      = "none"
)

// Period is one calendar day in a time zone: [Start, End). End is the next
// midnight, so a day with a DST change lasts 23 or 25 hours.
type Period struct {
	Date  string
	Zone  *time.Location
	Start time.Time
	End   time.Time
}

// Day returns the period of date (YYYY-MM-DD) in zone (an IANA name, empty
// for UTC).
func Day(date, zone string) (Period, error) {
	loc, err := Zone(zone)
	if err != nil {
		return Period{}, err
	}
	d, err := time.ParseInLocation(time.DateOnly, date, loc)
	if err != nil {
		return Period{}, fmt.Errorf("date %q: want YYYY-MM-DD: %w", date, ErrInvalid)
	}
	return period(d, loc), nil
}

// DayOf returns the period of the calendar day t falls on in loc.
func DayOf(t time.Time, loc *time.Location) Period {
	t = t.In(loc)
	return period(time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc), loc)
}

func period(midnight time.Time, loc *time.Location) Period {
	return Period{
		Date:  midnight.Format(time.DateOnly),
		Zone:  loc,
		Start: midnight,
		End:   time.Date(midnight.Year(), midnight.Month(), midnight.Day()+1, 0, 0, 0, 0, loc),
	}
}

// Zone loads a time zone by IANA name; empty means UTC.
func Zone(name string) (*time.Location, error) {
	if name == "" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("time zone %q: %w", name, ErrInvalid)
	}
	return loc, nil
}

// Report is the daily report.
type Report struct {
	Date      string    `json:"date"`
	TimeZone  string    `json:"time_zone"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	Generated time.Time `json:"generated"`
	Totals    Totals    `json:"totals"`
	Objects   []Object  `json:"objects"`
}

// Totals sum the objects of a report.
type Totals struct {
	Objects   int `json:"objects"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	None      int `json:"none"`
	// NoSuccess counts objects without a successful backup in the period.
	NoSuccess    int   `json:"no_success"`
	Backups      int   `json:"backups"`
	Failures     int   `json:"failures"`
	LogicalBytes int64 `json:"logical_bytes"`
	ReadBytes    int64 `json:"read_bytes"`
	StoredBytes  int64 `json:"stored_bytes"`
	// DedupeRatio is LogicalBytes / StoredBytes; null when nothing was stored.
	DedupeRatio   *float64 `json:"dedupe_ratio"`
	RestorePoints int      `json:"restore_points"`
}

// Object is one source/object in a report.
type Object struct {
	Source string `json:"source"`
	Object string `json:"object"`
	// Result is the outcome of the last backup that finished in the period:
	// succeeded, failed (failed, canceled or interrupted) or none.
	Result string `json:"result"`
	// LastBackup is the time of the newest restore point up to the period's
	// end, in or before the period; zero (omitted) if there is none.
	LastBackup time.Time `json:"last_backup,omitzero"`
	// DurationSeconds is how long the last successful backup of the period
	// took; 0 when there was none.
	DurationSeconds float64 `json:"duration_seconds"`
	// Backups is the number of restore points made in the period; the byte
	// counts below sum over them.
	Backups      int   `json:"backups"`
	LogicalBytes int64 `json:"logical_bytes"`
	ReadBytes    int64 `json:"read_bytes"`
	StoredBytes  int64 `json:"stored_bytes"`
	// DedupeRatio is LogicalBytes / StoredBytes: how many bytes of disk the
	// period's backups represent per byte they added to the store. Null when
	// they stored nothing (every chunk was already there).
	DedupeRatio *float64 `json:"dedupe_ratio"`
	// RestorePoints is how many restore points of the object exist up to
	// the period's end.
	RestorePoints int       `json:"restore_points"`
	Failures      []Failure `json:"failures"`
	// NoSuccess flags an object without a successful backup in the period.
	NoSuccess bool `json:"no_success"`
}

// Failure is a backup job of the period that did not succeed.
type Failure struct {
	Job      string    `json:"job"`
	State    string    `json:"state"`
	Finished time.Time `json:"finished"`
	Error    string    `json:"error"`
}

// Build reads the catalog and computes the report of p, made at now.
func Build(ctx context.Context, cat Catalog, p Period, now time.Time) (Report, error) {
	points, err := cat.RestorePoints(ctx, meta.Filter{})
	if err != nil {
		return Report{}, fmt.Errorf("report: %w", err)
	}
	jobs, err := cat.Jobs(ctx, meta.JobFilter{Kind: meta.JobBackup})
	if err != nil {
		return Report{}, fmt.Errorf("report: %w", err)
	}
	return Compute(points, jobs, p, now), nil
}

type key struct{ source, object string }

// Compute makes the report of p from every restore point and backup job;
// restore points after the period and jobs that did not finish in it are
// ignored, so a report of a past day does not change with later backups
// (except that pruned restore points no longer count).
func Compute(points []meta.RestorePoint, jobs []meta.Job, p Period, now time.Time) Report {
	objs := map[key]*Object{}
	get := func(k key) *Object {
		o := objs[k]
		if o == nil {
			o = &Object{Source: k.source, Object: k.object, Result: ResultNone, Failures: []Failure{}}
			objs[k] = o
		}
		return o
	}
	in := func(t time.Time) bool { return !t.Before(p.Start) && t.Before(p.End) }

	// lastOK is the time of the newest successful backup of the period,
	// from its restore point; lastJob the newest finished job.
	lastOK := map[key]time.Time{}
	for _, rp := range points {
		if !rp.Time.Before(p.End) {
			continue
		}
		k := key{rp.Source, rp.Object}
		o := get(k)
		o.RestorePoints++
		if rp.Time.After(o.LastBackup) {
			o.LastBackup = rp.Time
		}
		if !in(rp.Time) {
			continue
		}
		o.Backups++
		o.LogicalBytes += rp.LogicalBytes
		o.ReadBytes += rp.ReadBytes
		o.StoredBytes += rp.StoredBytes
		if t, ok := lastOK[k]; !ok || rp.Time.After(t) {
			lastOK[k] = rp.Time
			o.DurationSeconds = rp.Duration
		}
	}
	lastJob := map[key]meta.Job{}
	for _, j := range jobs {
		if j.Kind != meta.JobBackup || !j.Done() || !in(j.Finished) {
			continue
		}
		k := key{j.Source, j.Object}
		o := get(k)
		if prev, ok := lastJob[k]; !ok || j.Finished.After(prev.Finished) {
			lastJob[k] = j
		}
		if j.State != meta.JobSucceeded {
			o.Failures = append(o.Failures, Failure{Job: j.ID, State: j.State, Finished: j.Finished, Error: j.Error})
		}
	}

	r := Report{Date: p.Date, TimeZone: p.Zone.String(), Start: p.Start, End: p.End, Generated: now, Objects: []Object{}}
	for k, o := range objs {
		_, ok := lastOK[k]
		j, ran := lastJob[k]
		switch {
		case ran && j.State != meta.JobSucceeded:
			o.Result = ResultFailed
		case ran || ok:
			// A restore point without a job record (made before jobs were
			// recorded, or imported) still is a successful backup.
			o.Result = ResultSucceeded
		}
		o.NoSuccess = !ok
		o.DedupeRatio = ratio(o.LogicalBytes, o.StoredBytes)
		slices.SortFunc(o.Failures, func(a, b Failure) int {
			return cmp.Or(a.Finished.Compare(b.Finished), cmp.Compare(a.Job, b.Job))
		})
		r.Objects = append(r.Objects, *o)
	}
	slices.SortFunc(r.Objects, func(a, b Object) int {
		return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(a.Object, b.Object))
	})
	t := &r.Totals
	for _, o := range r.Objects {
		t.Objects++
		switch o.Result {
		case ResultSucceeded:
			t.Succeeded++
		case ResultFailed:
			t.Failed++
		default:
			t.None++
		}
		if o.NoSuccess {
			t.NoSuccess++
		}
		t.Backups += o.Backups
		t.Failures += len(o.Failures)
		t.LogicalBytes += o.LogicalBytes
		t.ReadBytes += o.ReadBytes
		t.StoredBytes += o.StoredBytes
		t.RestorePoints += o.RestorePoints
	}
	t.DedupeRatio = ratio(t.LogicalBytes, t.StoredBytes)
	return r
}

// ratio is logical/stored rounded to two decimals, nil without a divisor.
func ratio(logical, stored int64) *float64 {
	if stored <= 0 {
		return nil
	}
	v := float64(int64(float64(logical)/float64(stored)*100+0.5)) / 100
	return &v
}
