package policy

import (
	"errors"
	"testing"
	"time"
)

func ts(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustSchedule(t *testing.T, s string) Schedule {
	t.Helper()
	sc, err := ParseSchedule(s)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// TestNext walks each schedule from after and checks the runs it yields,
// in order; the offsets in the wanted times show which side of a DST
// change each run is on.
func TestNext(t *testing.T) {
	cases := []struct {
		name, spec, after string
		want              []string
	}{
		{"berlin spring gap runs once at 03:00", "daily 02:30 Europe/Berlin", "2026-03-28T02:30:00+01:00",
			[]string{"2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"}},
		{"berlin gap start", "daily 02:00 Europe/Berlin", "2026-03-28T12:00:00+01:00",
			[]string{"2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00"}},
		{"berlin several walls in the gap run once", "cron 0,30 2 * * * Europe/Berlin", "2026-03-28T23:00:00+01:00",
			[]string{"2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00"}},
		{"berlin 03:00 on the spring day", "daily 03:00 Europe/Berlin", "2026-03-29T00:00:00+01:00",
			[]string{"2026-03-29T03:00:00+02:00"}},
		{"berlin fall back runs the first 02:30 only", "daily 02:30 Europe/Berlin", "2026-10-24T02:30:00+02:00",
			[]string{"2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"}},
		{"berlin fall back from between the two 02:30s", "daily 02:30 Europe/Berlin", "2026-10-25T02:40:00+02:00",
			[]string{"2026-10-26T02:30:00+01:00"}},
		{"new york spring gap", "daily 02:30 America/New_York", "2026-03-07T02:30:00-05:00",
			[]string{"2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"}},
		{"new york fall back", "daily 01:30 America/New_York", "2026-10-31T01:30:00-04:00",
			[]string{"2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"}},
		{"new york cron in the gap", "cron 30 2 * * * America/New_York", "2026-03-07T12:00:00-05:00",
			[]string{"2026-03-08T03:00:00-04:00"}},
		{"a whole skipped day runs once after it", "daily 12:00 Pacific/Apia", "2011-12-29T12:00:00-10:00",
			[]string{"2011-12-31T00:00:00+14:00", "2011-12-31T12:00:00+14:00"}},
		{"santiago midnight gap", "daily 00:00 America/Santiago", "2026-09-05T12:00:00-04:00",
			[]string{"2026-09-06T01:00:00-03:00", "2026-09-07T00:00:00-03:00"}},
		{"weekly across spring change", "weekly sun 02:30 Europe/Berlin", "2026-03-22T02:30:00+01:00",
			[]string{"2026-03-29T03:00:00+02:00", "2026-04-05T02:30:00+02:00"}},
		{"hourly runs both repeated hours", "hourly :30 Europe/Berlin", "2026-10-25T02:10:00+02:00",
			[]string{"2026-10-25T02:30:00+02:00", "2026-10-25T02:30:00+01:00", "2026-10-25T03:30:00+01:00"}},
		{"hourly skips the missing hour", "hourly :30 Europe/Berlin", "2026-03-29T01:40:00+01:00",
			[]string{"2026-03-29T03:30:00+02:00", "2026-03-29T04:30:00+02:00"}},
		{"hourly half-hour zone", "hourly Asia/Kolkata", "2026-11-22T00:00:00Z",
			[]string{"2026-11-22T00:30:00Z", "2026-11-22T01:30:00Z"}},
		{"hourly strictly after", "hourly :00", "2026-11-22T10:00:00Z",
			[]string{"2026-11-22T11:00:00Z"}},
		{"monthly 31 clamps", "monthly 31 02:00", "2026-01-31T02:00:00Z",
			[]string{"2026-02-28T02:00:00Z", "2026-03-31T02:00:00Z", "2026-04-30T02:00:00Z", "2026-05-31T02:00:00Z"}},
		{"monthly 30 in february", "monthly 30 00:00", "2026-01-30T00:00:00Z",
			[]string{"2026-02-28T00:00:00Z", "2026-03-30T00:00:00Z"}},
		{"monthly 29 non-leap", "monthly 29 00:00", "2027-01-30T00:00:00Z",
			[]string{"2027-02-28T00:00:00Z", "2027-03-29T00:00:00Z"}},
		{"monthly 29 leap", "monthly 29 00:00", "2028-01-30T00:00:00Z",
			[]string{"2028-02-29T00:00:00Z", "2028-03-29T00:00:00Z"}},
		{"monthly last", "monthly last 23:00", "2028-01-31T23:00:00Z",
			[]string{"2028-02-29T23:00:00Z", "2028-03-31T23:00:00Z", "2028-04-30T23:00:00Z"}},
		{"monthly in a zone", "monthly 1 00:30 America/New_York", "2026-11-01T00:00:00Z",
			[]string{"2026-11-01T00:30:00-04:00", "2026-12-01T00:30:00-05:00"}},
		{"cron leap day only", "cron 0 0 29 2 *", "2026-01-01T00:00:00Z",
			[]string{"2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"}},
		{"cron leap day skips 2100", "cron 0 0 29 2 *", "2096-03-01T00:00:00Z",
			[]string{"2104-02-29T00:00:00Z"}},
		{"cron day 31 does not clamp", "cron 0 0 31 * *", "2026-01-31T00:00:00Z",
			[]string{"2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z"}},
		{"cron dom or dow", "cron 0 12 1 * mon", "2026-11-22T00:00:00Z",
			[]string{"2026-11-23T12:00:00Z", "2026-11-30T12:00:00Z", "2026-12-01T12:00:00Z", "2026-12-07T12:00:00Z"}},
		{"cron star dom ands", "cron 0 12 */10 * mon", "2026-11-22T00:00:00Z",
			[]string{"2026-12-21T12:00:00Z"}},
		{"cron names ranges steps", "cron */15 9-17 * jan-mar mon-fri", "2026-11-22T00:00:00Z",
			[]string{"2027-01-01T09:00:00Z", "2027-01-01T09:15:00Z"}},
		{"cron 17:45 is the last of the day", "cron */15 9-17 * jan-mar mon-fri", "2027-01-01T17:30:00Z",
			[]string{"2027-01-01T17:45:00Z", "2027-01-04T09:00:00Z"}},
		{"cron lists and hour step", "cron 5,35 */6 * * sun", "2026-11-22T06:35:00Z",
			[]string{"2026-11-22T12:05:00Z", "2026-11-22T12:35:00Z", "2026-11-22T18:05:00Z"}},
		{"cron 7 is sunday", "cron 0 0 * * 7", "2026-11-22T00:00:00Z",
			[]string{"2026-11-29T00:00:00Z"}},
		{"cron a/n", "cron 50/5 0 * * *", "2026-11-22T00:00:00Z",
			[]string{"2026-11-22T00:50:00Z", "2026-11-22T00:55:00Z", "2026-11-23T00:50:00Z"}},
		{"year boundary weekly", "weekly mon 00:00", "2026-12-31T00:00:00Z",
			[]string{"2027-01-04T00:00:00Z"}},
		{"year boundary daily", "daily 23:59", "2026-12-31T23:59:00Z",
			[]string{"2027-01-01T23:59:00Z"}},
		{"yearly cron", "cron 0 0 1 1 *", "2026-06-01T00:00:00Z",
			[]string{"2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"}},
		{"weekly list", "weekly mon,wed,fri 02:00", "2026-11-22T00:00:00Z",
			[]string{"2026-11-23T02:00:00Z", "2026-11-25T02:00:00Z", "2026-11-27T02:00:00Z", "2026-11-30T02:00:00Z"}},
		{"after in another zone", "daily 02:00 Europe/Berlin", "2026-11-21T20:00:00-05:00",
			[]string{"2026-11-23T02:00:00+01:00"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sc := mustSchedule(t, c.spec)
			at := ts(t, c.after)
			for i, w := range c.want {
				got := sc.Next(at)
				if !got.Equal(ts(t, w)) {
					t.Fatalf("run %d after %s: got %s, want %s", i, at.Format(time.RFC3339), got.In(sc.Location()).Format(time.RFC3339), w)
				}
				at = got
			}
		})
	}
}

func TestDue(t *testing.T) {
	cases := []struct {
		name, spec, last, now string
		due                   bool
		slot                  string
	}{
		{"days missed run once, latest slot", "daily 02:00", "2026-11-18T02:00:00Z", "2026-11-22T10:00:00Z", true, "2026-11-22T02:00:00Z"},
		{"last run started after the slot", "daily 02:00", "2026-11-22T02:00:05Z", "2026-11-22T10:00:00Z", false, ""},
		{"now exactly at the slot", "daily 02:00", "2026-11-22T02:00:00Z", "2026-11-23T02:00:00Z", true, "2026-11-23T02:00:00Z"},
		{"just before the slot", "daily 02:00", "2026-11-22T02:00:00Z", "2026-11-23T01:59:59Z", false, ""},
		{"never ran", "weekly mon 02:00", "0001-01-01T00:00:00Z", "2026-11-22T10:00:00Z", true, "2026-11-16T02:00:00Z"},
		{"created after the last slot waits", "daily 02:00", "2026-11-22T10:00:00Z", "2026-11-22T11:00:00Z", false, ""},
		{"hours missed run once", "hourly :00", "2026-11-20T10:00:00Z", "2026-11-22T10:59:00Z", true, "2026-11-22T10:00:00Z"},
		{"fall back: second 02:30 is not a slot", "daily 02:30 Europe/Berlin", "2026-10-25T02:30:00+02:00", "2026-10-25T02:45:00+01:00", false, ""},
		{"spring gap slot", "daily 02:30 Europe/Berlin", "2026-03-28T02:30:00+01:00", "2026-03-29T03:00:00+02:00", true, "2026-03-29T03:00:00+02:00"},
		{"months missed, clamped slot", "monthly 31 02:00", "2026-01-31T02:00:00Z", "2026-05-01T00:00:00Z", true, "2026-04-30T02:00:00Z"},
		{"leap cron missed for years", "cron 0 0 29 2 *", "2028-02-29T00:00:00Z", "2033-01-01T00:00:00Z", true, "2032-02-29T00:00:00Z"},
		{"zero schedule never due", "", "2026-01-01T00:00:00Z", "2026-11-22T00:00:00Z", false, ""},
		{"every 4h missed runs once", "every 4h", "2026-11-22T00:00:00Z", "2026-11-22T10:59:00Z", true, "2026-11-22T08:00:00Z"},
		{"every 10s just before the slot", "every 10s", "2026-11-22T10:00:00Z", "2026-11-22T10:00:09Z", false, ""},
		{"every 10s at the slot", "every 10s", "2026-11-22T10:00:00Z", "2026-11-22T10:00:10Z", true, "2026-11-22T10:00:10Z"},
		{"every 90m across midnight", "every 90m", "2026-11-21T22:30:00Z", "2026-11-22T00:10:00Z", true, "2026-11-22T00:00:00Z"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var sc Schedule
			if c.spec != "" {
				sc = mustSchedule(t, c.spec)
			}
			due, slot := Due(sc, ts(t, c.last), ts(t, c.now))
			if due != c.due {
				t.Fatalf("due = %v (slot %s), want %v", due, slot, c.due)
			}
			if c.due && !slot.Equal(ts(t, c.slot)) {
				t.Fatalf("slot = %s, want %s", slot.Format(time.RFC3339), c.slot)
			}
			if !c.due && !slot.IsZero() {
				t.Fatalf("not due but slot %s", slot)
			}
		})
	}
}

func TestParseScheduleCanonical(t *testing.T) {
	cases := []struct{ in, want string }{
		{"daily 02:00", "daily 02:00"},
		{"Daily 2:30   Europe/Berlin", "daily 02:30 Europe/Berlin"},
		{"daily 02:00 UTC", "daily 02:00"},
		{"weekly fri,mon-wed 02:00", "weekly mon,tue,wed,fri 02:00"},
		{"weekly SUN,sun 23:59", "weekly sun 23:59"},
		{"monthly LAST 23:00", "monthly last 23:00"},
		{"monthly 31 00:00 America/New_York", "monthly 31 00:00 America/New_York"},
		{"hourly", "hourly :00"},
		{"hourly :15 Asia/Kolkata", "hourly :15 Asia/Kolkata"},
		{"cron 0 2 * * MON-FRI", "cron 0 2 * * mon-fri"},
		{"cron */15 9-17 1,15 jan-mar/2 * Europe/Berlin", "cron */15 9-17 1,15 jan-mar/2 * Europe/Berlin"},
		{"EVERY 240m", "every 4h"},
		{"every 1h30m", "every 90m"},
		{"every 90s", "every 90s"},
	}
	for _, c := range cases {
		sc := mustSchedule(t, c.in)
		if got := sc.String(); got != c.want {
			t.Errorf("%q: String() = %q, want %q", c.in, got, c.want)
		}
		again := mustSchedule(t, sc.String())
		if again.String() != sc.String() {
			t.Errorf("%q: round trip gave %q", c.in, again.String())
		}
	}
}

func TestParseScheduleErrors(t *testing.T) {
	for _, in := range []string{
		"", "   ", "daily", "daily 24:00", "daily 2:5", "daily 02:60", "daily 002:00", "daily 02:00 Mars/Base",
		"daily 02:00 Local", "daily 02:00 ../../etc/passwd", "daily 02:00 Europe/Berlin extra",
		"weekly 02:00", "weekly mon-sun-x 02:00", "weekly fri-mon 02:00", "weekly monday 02:00", "weekly mon, 02:00",
		"monthly 0 02:00", "monthly 32 02:00", "monthly -1 02:00", "monthly first 02:00",
		"hourly 15", "hourly :5", "hourly :60",
		"yearly 01-01 00:00", "0 2 * * *",
		"cron * * * *", "cron 60 * * * *", "cron * 24 * * *", "cron * * 0 * *", "cron * * * 13 *", "cron * * * * 8",
		"cron */0 * * * *", "cron 5-1 * * * *", "cron 0 0 30 2 *", "cron 0 0 31 4,6,9,11 *", "cron , * * * *",
		"cron 1-2-3 * * * *", "cron */100 * * * *", "cron +1 * * * *",
		"every", "every 5s", "every 1500ms", "every 745h", "every 4h Europe/Berlin", "every -1h", "every four",
	} {
		_, err := ParseSchedule(in)
		if err == nil {
			t.Errorf("%q: parsed, want an error", in)
			continue
		}
		if !errors.Is(err, ErrSchedule) {
			t.Errorf("%q: error %v does not wrap ErrSchedule", in, err)
		}
	}
}

// checkSlots holds Next and the latest-slot search to each other: Next is
// strictly later, is itself a slot, and no slot lies between.
func checkSlots(t *testing.T, sc Schedule, at time.Time) {
	t.Helper()
	n := sc.Next(at)
	if n.IsZero() {
		t.Fatalf("%s: no run after %s", sc, at)
	}
	if !n.After(at) {
		t.Fatalf("%s: Next(%s) = %s, not after", sc, at, n)
	}
	if got := sc.last(n); !got.Equal(n) {
		t.Fatalf("%s: Next(%s) = %s but the latest slot at it is %s", sc, at, n, got)
	}
	if got := sc.last(n.Add(-time.Nanosecond)); got.After(at) {
		t.Fatalf("%s: slot %s lies between %s and Next %s", sc, got, at, n)
	}
}

func TestNextAgreesWithLast(t *testing.T) {
	specs := []string{
		"hourly :30 Europe/Berlin", "daily 02:30 Europe/Berlin", "daily 01:30 America/New_York",
		"weekly sun 02:00 Europe/Berlin", "monthly 31 02:30 America/New_York", "monthly last 00:00 Australia/Lord_Howe",
		"cron */20 1-3 * * * Europe/Berlin", "cron 0 0 29 2 *", "cron 30 2 1 * sun America/New_York",
		"every 4h", "every 7m", "every 10s",
	}
	start := ts(t, "2026-01-01T00:00:00Z")
	for _, s := range specs {
		sc := mustSchedule(t, s)
		// Every ~7 hours across a year crosses both DST changes in
		// every zone listed.
		for at := start; at.Before(start.AddDate(1, 0, 0)); at = at.Add(7*time.Hour + 13*time.Minute) {
			checkSlots(t, sc, at)
		}
	}
}
