package policy

import (
	"testing"
	"time"
)

// FuzzParseSchedule checks that the parser never panics, that what it
// accepts round-trips through String, and that Next and Due agree on it.
func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{
		"daily 02:00", "daily 02:30 Europe/Berlin", "weekly mon-fri,sun 23:59 America/New_York",
		"monthly 31 02:00", "monthly last 00:00 Australia/Lord_Howe", "hourly", "hourly :15 Asia/Kolkata",
		"cron 0 0 29 2 *", "cron */15 9-17 1,15 jan-mar/2 mon-fri Europe/Berlin", "cron 50/5 0 * * 7",
		"daily 24:00", "cron 0 0 30 2 *", "weekly fri-mon 02:00",
	} {
		f.Add(s, int64(1795000000))
	}
	f.Fuzz(func(t *testing.T, s string, unix int64) {
		sc, err := ParseSchedule(s)
		if err != nil {
			return
		}
		canon := sc.String()
		again, err := ParseSchedule(canon)
		if err != nil {
			t.Fatalf("%q: canonical %q does not parse: %v", s, canon, err)
		}
		if again.String() != canon {
			t.Fatalf("%q: canonical %q reparses as %q", s, canon, again.String())
		}
		// Keep the instant within years where zones are whole minutes.
		at := time.Unix(1262304000+unix%(100*365*86400+1), 0).UTC() // 2010 + up to 100 years
		if unix < 0 {
			at = time.Unix(1262304000, 0).UTC()
		}
		checkSlots(t, sc, at)
		if due, slot := Due(sc, time.Time{}, sc.Next(at)); !due || !slot.Equal(sc.Next(at)) {
			t.Fatalf("%s: Due at Next(%s) = %v %s", sc, at, due, slot)
		}
	})
}

// FuzzParseLockDuration checks that accepted durations are non-negative
// and format back to a string that parses to the same value.
func FuzzParseLockDuration(f *testing.F) {
	for _, s := range []string{"0", "30d", "12h", "2w", "1y", "999999y", "-1d", "1.5d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseLockDuration(s)
		if err != nil {
			return
		}
		if d < 0 {
			t.Fatalf("%q: negative %v", s, d)
		}
		back, err := ParseLockDuration(FormatLockDuration(d))
		if err != nil || back != d {
			t.Fatalf("%q: %v formats as %q, which parses as %v, %v", s, d, FormatLockDuration(d), back, err)
		}
	})
}
