package report

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/cluster/meta"
)

func at(t *testing.T, loc *time.Location, s string) time.Time {
	t.Helper()
	v, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// fixture: 2026-03-08 in New York, the day clocks go forward (23 hours).
// web01 succeeded twice; db01 failed after an earlier success that day
// (result failed, yet not flagged); old01 has only an old restore point;
// new01 only failed (with an error that tries to inject a script).
func fixture(t *testing.T) (Period, []meta.RestorePoint, []meta.Job) {
	t.Helper()
	p, err := Day("2026-03-08", "America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	ny := p.Zone
	rp := func(id, obj, when string, logical, read, stored int64, dur float64) meta.RestorePoint {
		return meta.RestorePoint{ID: id, Source: "vc", Object: obj, Time: at(t, ny, when), LogicalBytes: logical,
			ReadBytes: read, StoredBytes: stored, Duration: dur}
	}
	points := []meta.RestorePoint{
		rp("rp1", "web01", "2026-03-07 23:30", 100, 100, 100, 9),   // the day before
		rp("rp2", "web01", "2026-03-08 01:00", 1000, 500, 250, 12), // before the DST jump
		rp("rp3", "web01", "2026-03-08 23:00", 1000, 100, 50, 3.5),
		rp("rp4", "db01", "2026-03-08 02:00", 400, 400, 0, 7), // fully deduplicated
		rp("rp5", "old01", "2026-03-01 02:00", 10, 10, 10, 1),
		rp("rp6", "web01", "2026-03-09 00:00", 1, 1, 1, 1), // the next day: ignored
	}
	job := func(id, obj, state, finished, errText string) meta.Job {
		f := at(t, ny, finished)
		return meta.Job{ID: id, Kind: meta.JobBackup, State: state, Source: "vc", Object: obj,
			Created: f.Add(-time.Minute), Started: f.Add(-time.Minute), Finished: f, Error: errText}
	}
	jobs := []meta.Job{
		job("j1", "web01", meta.JobSucceeded, "2026-03-08 01:00", ""),
		job("j2", "web01", meta.JobSucceeded, "2026-03-08 23:00", ""),
		job("j3", "db01", meta.JobSucceeded, "2026-03-08 02:00", ""),
		job("j4", "db01", meta.JobFailed, "2026-03-08 22:00", "disk read error: sector 7"),
		job("j5", "new01", meta.JobInterrupted, "2026-03-08 05:00", "node stopped"),
		job("j6", "new01", meta.JobFailed, "2026-03-08 06:00", `bad <script>alert("x")</script> & more`),
		job("j7", "new01", meta.JobFailed, "2026-03-09 06:00", "tomorrow: ignored"),
		{ID: "j8", Kind: meta.JobBackup, State: meta.JobRunning, Source: "vc", Object: "run01", Created: at(t, ny, "2026-03-08 06:00")},
		{ID: "j9", Kind: meta.JobRestore, State: meta.JobFailed, Source: "vc", Object: "web01", Finished: at(t, ny, "2026-03-08 07:00"), Error: "restore: not a backup"},
	}
	return p, points, jobs
}

func sampleReport(t *testing.T) Report {
	p, points, jobs := fixture(t)
	return Compute(points, jobs, p, at(t, p.Zone, "2026-03-09 07:00"))
}

func TestDayPeriods(t *testing.T) {
	for _, c := range []struct {
		date, zone string
		hours      float64
	}{
		{"2026-03-08", "America/New_York", 23},
		{"2026-11-01", "America/New_York", 25},
		{"2028-02-29", "", 24},
		{"2026-10-25", "Europe/Berlin", 25},
	} {
		p, err := Day(c.date, c.zone)
		if err != nil {
			t.Fatal(err)
		}
		if h := p.End.Sub(p.Start).Hours(); h != c.hours || p.Date != c.date {
			t.Errorf("%s %s: %s lasts %vh, want %vh", c.date, c.zone, p.Date, h, c.hours)
		}
	}
	for _, bad := range [][2]string{{"2027-02-29", ""}, {"2026-1-1", ""}, {"2026-01-01", "Mars/Olympus"}} {
		if _, err := Day(bad[0], bad[1]); err == nil {
			t.Errorf("Day(%q, %q) accepted", bad[0], bad[1])
		}
	}
	if p := DayOf(time.Date(2026, 3, 9, 3, 0, 0, 0, time.UTC), mustZone(t, "America/New_York")); p.Date != "2026-03-08" {
		t.Errorf("DayOf 03:00 UTC in New York = %s, want the day before", p.Date)
	}
}

func mustZone(t *testing.T, name string) *time.Location {
	loc, err := Zone(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestCompute(t *testing.T) {
	r := sampleReport(t)
	byName := map[string]Object{}
	var order []string
	for _, o := range r.Objects {
		byName[o.Object] = o
		order = append(order, o.Object)
	}
	if got := strings.Join(order, " "); got != "db01 new01 old01 web01" {
		t.Fatalf("objects %q, want db01 new01 old01 web01 (running-only run01 left out)", got)
	}
	web := byName["web01"]
	if web.Result != ResultSucceeded || web.NoSuccess || web.Backups != 2 || web.RestorePoints != 3 ||
		web.ReadBytes != 600 || web.StoredBytes != 300 || web.LogicalBytes != 2000 || web.DurationSeconds != 3.5 ||
		web.DedupeRatio == nil || *web.DedupeRatio != 6.67 || !web.LastBackup.Equal(at(t, r.Start.Location(), "2026-03-08 23:00")) {
		t.Errorf("web01: %+v", web)
	}
	db := byName["db01"]
	if db.Result != ResultFailed || db.NoSuccess || db.DedupeRatio != nil || len(db.Failures) != 1 || db.Failures[0].Error != "disk read error: sector 7" {
		t.Errorf("db01: %+v", db)
	}
	old := byName["old01"]
	if old.Result != ResultNone || !old.NoSuccess || old.RestorePoints != 1 || old.LastBackup.IsZero() || old.Backups != 0 {
		t.Errorf("old01: %+v", old)
	}
	nw := byName["new01"]
	if nw.Result != ResultFailed || !nw.NoSuccess || len(nw.Failures) != 2 || nw.Failures[0].Job != "j5" || !nw.LastBackup.IsZero() {
		t.Errorf("new01: %+v", nw)
	}
	tot := r.Totals
	if tot.Objects != 4 || tot.Succeeded != 1 || tot.Failed != 2 || tot.None != 1 || tot.NoSuccess != 2 ||
		tot.Backups != 3 || tot.Failures != 3 || tot.StoredBytes != 300 || tot.LogicalBytes != 2400 ||
		tot.RestorePoints != 5 || *tot.DedupeRatio != 8 {
		t.Errorf("totals: %+v", tot)
	}
}

func TestBuildReadsCatalog(t *testing.T) {
	p, points, jobs := fixture(t)
	r, err := Build(context.Background(), fakeCatalog{points, jobs}, p, time.Unix(0, 0))
	if err != nil || len(r.Objects) != 4 {
		t.Fatalf("Build: %d objects, %v", len(r.Objects), err)
	}
}

type fakeCatalog struct {
	points []meta.RestorePoint
	jobs   []meta.Job
}

func (f fakeCatalog) RestorePoints(context.Context, meta.Filter) ([]meta.RestorePoint, error) {
	return f.points, nil
}

func (f fakeCatalog) Jobs(_ context.Context, jf meta.JobFilter) ([]meta.Job, error) {
	var out []meta.Job
	for _, j := range f.jobs {
		if jf.Kind == "" || j.Kind == jf.Kind {
			out = append(out, j)
		}
	}
	return out, nil
}

func TestJSONFieldsStable(t *testing.T) {
	var buf bytes.Buffer
	if err := JSON(&buf, sampleReport(t)); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"date", "time_zone", "start", "end", "generated", "totals", "objects"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("report lacks %q", k)
		}
	}
	obj := doc["objects"].([]any)[0].(map[string]any)
	for _, k := range []string{"source", "object", "result", "last_backup", "duration_seconds", "backups", "logical_bytes",
		"read_bytes", "stored_bytes", "dedupe_ratio", "restore_points", "failures", "no_success"} {
		if _, ok := obj[k]; !ok {
			t.Errorf("object lacks %q", k)
		}
	}
	if obj["dedupe_ratio"] != nil {
		t.Errorf("db01 stored nothing: dedupe_ratio = %v, want null", obj["dedupe_ratio"])
	}
}

func TestHTMLEscapesJobErrors(t *testing.T) {
	var buf bytes.Buffer
	if err := HTML(&buf, sampleReport(t)); err != nil {
		t.Fatal(err)
	}
	html := buf.String()
	if strings.Contains(html, "<script>") || strings.Contains(html, `alert("x")`) {
		t.Error("a job error reached the HTML unescaped")
	}
	if !strings.Contains(html, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; more") {
		t.Error("escaped job error missing from the HTML")
	}
	if strings.Contains(html, "<style") || strings.Contains(html, "<link") || strings.Contains(html, "src=") {
		t.Error("HTML is not self-contained with inline styles")
	}
	for _, want := range []string{"vc/web01", "vc/old01", "(no successful backup)", "6.67x", "disk read error"} {
		if !strings.Contains(html, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
}

func FuzzDay(f *testing.F) {
	f.Add("2026-03-08", "America/New_York")
	f.Add("2028-02-29", "")
	f.Add("x", "../../etc/passwd")
	f.Fuzz(func(t *testing.T, date, zone string) {
		p, err := Day(date, zone)
		if err != nil {
			return
		}
		if !p.End.After(p.Start) || p.End.Sub(p.Start) > 26*time.Hour || p.Date != p.Start.Format(time.DateOnly) {
			t.Fatalf("Day(%q, %q) = %+v", date, zone, p)
		}
	})
}
