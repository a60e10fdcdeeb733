package policy

import (
	"errors"
	"testing"
	"time"
)

func TestParseLockDuration(t *testing.T) {
	cases := []struct {
		in    string
		want  time.Duration
		canon string
	}{
		{"0", 0, "0"},
		{"12h", 12 * time.Hour, "12h"},
		{"48h", 2 * Day, "2d"},
		{"30d", 30 * Day, "30d"},
		{"14d", 2 * Week, "2w"},
		{"2w", 14 * 24 * time.Hour, "2w"},
		{"1y", 365 * 24 * time.Hour, "1y"},
		{"365d", Year, "1y"},
		{"10y", 3650 * Day, "10y"},
		{"0d", 0, "0"},
	}
	for _, c := range cases {
		got, err := ParseLockDuration(c.in)
		if err != nil || got != c.want {
			t.Errorf("%q: got %v, %v; want %v", c.in, got, err, c.want)
			continue
		}
		if s := FormatLockDuration(got); s != c.canon {
			t.Errorf("%q: formatted %q, want %q", c.in, s, c.canon)
		}
	}
	for _, in := range []string{"", "d", "30", "30m", "30s", "1.5d", "-1d", "+1d", "1d2h", "1 d", "30D", "999999y", "0x10d", "y1"} {
		if d, err := ParseLockDuration(in); err == nil {
			t.Errorf("%q: parsed as %v, want an error", in, d)
		} else if !errors.Is(err, ErrDuration) {
			t.Errorf("%q: %v does not wrap ErrDuration", in, err)
		}
	}
	if s := FormatLockDuration(90 * time.Minute); s != "1h30m0s" {
		t.Errorf("90m formatted %q", s)
	}
}
