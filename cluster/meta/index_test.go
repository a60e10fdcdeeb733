package meta

import (
	"bytes"
	"testing"
	"time"
)

func TestPointKeyOrder(t *testing.T) {
	at := func(sec int64, nsec int64) time.Time { return time.Unix(sec, nsec).UTC() }
	rp := func(source, object string, tm time.Time, id string) RestorePoint {
		return RestorePoint{ID: id, Source: source, Object: object, Time: tm}
	}
	// Each pair is in ascending order; keys must agree.
	tests := []struct {
		name string
		a, b RestorePoint
	}{
		{"later second", rp("s", "vm", at(10, 0), "b"), rp("s", "vm", at(11, 0), "a")},
		{"later nanosecond", rp("s", "vm", at(10, 5), "b"), rp("s", "vm", at(10, 6), "a")},
		{"nanoseconds past 2^24", rp("s", "vm", at(10, 0xffffff), "b"), rp("s", "vm", at(10, 0x1000000), "a")},
		{"before 1970", rp("s", "vm", at(-5, 0), "b"), rp("s", "vm", at(3, 0), "a")},
		{"far before 1970", rp("s", "vm", at(-1<<40, 0), "b"), rp("s", "vm", at(-1, 999999999), "a")},
		{"same time by id", rp("s", "vm", at(10, 0), "a"), rp("s", "vm", at(10, 0), "b")},
		{"year 3000", rp("s", "vm", at(1<<33, 0), "b"), rp("s", "vm", at(1<<34, 0), "a")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if bytes.Compare(pointKey(tt.a), pointKey(tt.b)) >= 0 {
				t.Errorf("key of %v/%s does not sort before key of %v/%s", tt.a.Time, tt.a.ID, tt.b.Time, tt.b.ID)
			}
		})
	}
}

func TestObjectPrefixSeparates(t *testing.T) {
	// An object whose name extends another's, or holds bytes that look like
	// a separator or a time, must not fall under the other's prefix.
	tests := []struct{ source, object, otherSource, otherObject string }{
		{"s", "vm", "s", "vm1"},
		{"s", "vm", "s", "vm\x00"},
		{"s", "a", "s", "a\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00x"},
		{"s", "vm", "s1", "vm"},
		{"s", "", "s", "x"},
	}
	for _, tt := range tests {
		prefix := objectPrefix(tt.source, tt.object)
		other := pointKey(RestorePoint{ID: "id", Source: tt.otherSource, Object: tt.otherObject, Time: time.Unix(1, 0)})
		if bytes.HasPrefix(other, prefix) {
			t.Errorf("point of %q/%q falls under the prefix of %q/%q", tt.otherSource, tt.otherObject, tt.source, tt.object)
		}
	}
	if !bytes.HasPrefix(pointKey(RestorePoint{ID: "x", Source: "s", Object: "vm", Time: time.Unix(1, 0)}), sourcePrefix("s")) {
		t.Error("point key does not start with its source prefix")
	}
}

func TestPrefixEnd(t *testing.T) {
	tests := []struct{ in, want []byte }{
		{[]byte("a"), []byte("b")},
		{[]byte("a\xff"), []byte("b")},
		{[]byte("a\xfe"), []byte("a\xff")},
		{[]byte("\xff\xff"), nil},
		{nil, nil},
	}
	for _, tt := range tests {
		if got := prefixEnd(tt.in); !bytes.Equal(got, tt.want) {
			t.Errorf("prefixEnd(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
