package meta

import (
	"bytes"
	"crypto/rand"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestNewIDFormat(t *testing.T) {
	zeros := bytes.NewReader(make([]byte, 64))
	ones := bytes.NewReader(bytes.Repeat([]byte{0xff}, 64))
	tests := []struct {
		name   string
		prefix string
		t      time.Time
		rand   *bytes.Reader
		want   string
	}{
		{"epoch", "rp", time.Unix(0, 0), zeros, "rp-000000000000000000"},
		{"one ms", "job", time.UnixMilli(1), zeros, "job-000000000100000000"},
		{"32 ms", "rp", time.UnixMilli(32), zeros, "rp-000000001000000000"},
		{"random all ones", "rp", time.Unix(0, 0), ones, "rp-0000000000zzzzzzzz"},
		{"before 1970 clamps", "rp", time.Unix(-100, 0), zeros, "rp-000000000000000000"},
		{"far future clamps", "rp", time.Unix(1<<50, 0), zeros, "rp-zzzzzzzzzz00000000"},
		{"no prefix", "", time.UnixMilli(31), zeros, "000000000z00000000"},
		{"2024", "rp", time.Date(2024, 11, 20, 0, 0, 0, 0, time.UTC), zeros, "rp-01jd3dws0000000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NewID(tt.prefix, tt.t, tt.rand); got != tt.want {
				t.Errorf("NewID = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNewIDIsValidName(t *testing.T) {
	shape := regexp.MustCompile(`^rp-[0-9a-hjkmnp-tv-z]{18}$`)
	for range 100 {
		id := NewID("rp", time.Now(), nil)
		if !shape.MatchString(id) || !ValidName(id) {
			t.Fatalf("NewID = %q: not lower-case Crockford base32 or not a valid name", id)
		}
	}
}

func TestNewIDSortsByTime(t *testing.T) {
	base := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	steps := []time.Duration{0, time.Millisecond, 31 * time.Millisecond, 32 * time.Millisecond,
		time.Second, time.Hour, 24 * time.Hour, 365 * 24 * time.Hour, 50 * 365 * 24 * time.Hour}
	// Each ID gets smaller random digits than the one before, so time alone
	// must decide the order.
	var ids []string
	for i, d := range steps {
		r := bytes.NewReader(bytes.Repeat([]byte{byte(0xff - 0x10*i)}, 5))
		ids = append(ids, NewID("rp", base.Add(d), r))
	}
	if !slices.IsSorted(ids) {
		t.Errorf("IDs do not sort by time:\n%s", strings.Join(ids, "\n"))
	}
	if a, b := NewID("rp", base, bytes.NewReader(make([]byte, 5))), NewID("rp", base.Add(999*time.Microsecond), bytes.NewReader(make([]byte, 5))); a != b {
		t.Errorf("times within one millisecond give different time parts: %q, %q", a, b)
	}
}

func TestNewIDUnique(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	// Distinct random bytes must give distinct IDs: no bits are dropped.
	seen := make(map[string]bool)
	for _, r := range [][]byte{
		{0, 0, 0, 0, 0}, {0, 0, 0, 0, 1}, {0, 0, 0, 0, 0x20}, {0x80, 0, 0, 0, 0},
		{0x08, 0, 0, 0, 0}, {0, 0, 1, 0, 0}, {0xff, 0xff, 0xff, 0xff, 0xfe},
	} {
		id := NewID("job", now, bytes.NewReader(r))
		if seen[id] {
			t.Fatalf("random bytes %x give an id seen before: %q", r, id)
		}
		seen[id] = true
	}
	// A batch stamped with one time, as a scheduler makes it.
	seen = make(map[string]bool)
	for range 1000 {
		id := NewID("job", now, rand.Reader)
		if seen[id] {
			t.Fatalf("duplicate id %q within one millisecond", id)
		}
		seen[id] = true
	}
}

func TestNewIDPanicsOnRandFailure(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewID with a failing reader did not panic")
		}
	}()
	NewID("rp", time.Now(), iotest.ErrReader(iotest.ErrTimeout))
}

func TestValidName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"0", true},
		{"vcenter-01.lab_a", true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{"", false},
		{"-a", false},
		{".a", false},
		{"_a", false},
		{"A", false},
		{"a b", false},
		{"a/b", false},
		{"a\x00b", false},
		{"é", false},
	}
	for _, tt := range tests {
		if got := ValidName(tt.name); got != tt.ok {
			t.Errorf("ValidName(%q) = %v, want %v", tt.name, got, tt.ok)
		}
	}
}
