package plugintest

import (
	"errors"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"github.com/cairnhq/cairn/plugins"
)

// SourceHarness adapts one source plugin to RunSource.
type SourceHarness struct {
	// Capacity is the size of the disk the suite creates; 0 means
	// DefaultCapacity rounded down to Align. It must be at least 8 MiB.
	Capacity int64
	// Align is the granularity the plugin's system stores data in (a sector,
	// a block); 0 means any byte.
	Align int64
	// New makes a fresh system holding one object with a single disk of
	// len(content) bytes holding content. Zero bytes may be stored as holes.
	// Each subtest calls it once.
	New func(t *testing.T, content []byte) SourceFixture
	// Incremental returns the options that open the object for an
	// incremental backup after the changed ranges were written; nil means
	// plugins.OpenOptions{}.
	Incremental func(changed []plugins.Extent) plugins.OpenOptions
	// Delta says the plugin tracks changes, so an incremental must report
	// Changes.Delta; otherwise it may report either.
	Delta bool
}

// SourceFixture is one system made by SourceHarness.New.
type SourceFixture struct {
	Source plugins.Source
	// Object names the object the system holds.
	Object string
	// Write changes the live object's disk at off, as a guest would between
	// two backups.
	Write func(off int64, p []byte) error
	// Leftovers lists whatever the plugin made that still exists (snapshots,
	// exports, temporary files); once every Snapshot is closed it must be
	// empty, except for what a committed snapshot (plugins.Committer) keeps
	// as the base of the next incremental. nil means there is nothing to
	// check.
	Leftovers func() ([]string, error)
}

// RunSource runs the source conformance suite against h.
func RunSource(t *testing.T, h SourceHarness) {
	if h.New == nil {
		t.Fatal("plugintest: SourceHarness.New is nil")
	}
	s := &sourceSuite{h: h, g: newGeometry(t, h.Capacity, h.Align)}
	t.Run("Objects", s.objects)
	t.Run("OpenUnknown", s.openUnknown)
	t.Run("Read", s.read)
	t.Run("ConcurrentRead", s.concurrentRead)
	t.Run("Full", s.full)
	t.Run("Incremental", s.incremental)
	t.Run("PointInTime", s.pointInTime)
}

type sourceSuite struct {
	h SourceHarness
	g geometry
}

// open makes a system holding content and opens its object.
func (s *sourceSuite) open(t *testing.T, content []byte) (SourceFixture, plugins.Snapshot, plugins.Disk) {
	t.Helper()
	fx := s.h.New(t, content)
	snap, err := fx.Source.Open(t.Context(), fx.Object, plugins.OpenOptions{})
	if err != nil {
		t.Fatalf("Open(%q): %v", fx.Object, err)
	}
	t.Cleanup(func() { _ = snap.Close(t.Context()) })
	return fx, snap, s.disk(t, snap)
}

// disk returns the snapshot's only disk after checking what it reports.
func (s *sourceSuite) disk(t *testing.T, snap plugins.Snapshot) plugins.Disk {
	t.Helper()
	switch c := snap.Consistency(); c {
	case "crash-consistent", "application-consistent", "none":
	default:
		t.Errorf("Consistency() = %q, want crash-consistent, application-consistent or none", c)
	}
	disks := snap.Disks()
	if len(disks) != 1 {
		t.Fatalf("Disks() has %d disks, want 1", len(disks))
	}
	d := disks[0]
	if d.Key() == "" {
		t.Error("Key() is empty")
	}
	if got := d.Capacity(); got != s.g.capacity {
		t.Fatalf("Capacity() = %d, want %d", got, s.g.capacity)
	}
	return d
}

// close closes snap twice and checks nothing is left behind.
func (s *sourceSuite) close(t *testing.T, fx SourceFixture, snap plugins.Snapshot) {
	t.Helper()
	if err := snap.Close(t.Context()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := snap.Close(t.Context()); err != nil {
		t.Errorf("second Close: %v", err)
	}
	checkLeftovers(t, fx.Leftovers)
}

func (s *sourceSuite) objects(t *testing.T) {
	fx := s.h.New(t, s.g.content(1))
	objs, err := fx.Source.Objects(t.Context())
	if err != nil {
		t.Fatalf("Objects: %v", err)
	}
	i := slices.IndexFunc(objs, func(o plugins.Object) bool { return o.Name == fx.Object })
	if i < 0 {
		t.Fatalf("Objects = %+v, want one named %q", objs, fx.Object)
	}
	o := objs[i]
	if o.Kind == "" || o.Size != s.g.capacity || o.Disks != 1 {
		t.Errorf("Objects lists %+v, want a kind, size %d and 1 disk", o, s.g.capacity)
	}
	checkLeftovers(t, fx.Leftovers)
}

func (s *sourceSuite) openUnknown(t *testing.T) {
	fx := s.h.New(t, s.g.content(1))
	snap, err := fx.Source.Open(t.Context(), fx.Object+"-cairn-no-such-object", plugins.OpenOptions{})
	if !errors.Is(err, plugins.ErrNotFound) {
		if err == nil {
			_ = snap.Close(t.Context())
		}
		t.Fatalf("Open of an unknown object: error %v, want plugins.ErrNotFound", err)
	}
	checkLeftovers(t, fx.Leftovers)
}

func (s *sourceSuite) read(t *testing.T) {
	content := s.g.content(1)
	fx, snap, d := s.open(t, content)
	c := s.g.capacity

	// One large read: the whole disk, or its first 64 MiB on the gigabyte
	// disks some systems cannot make smaller (a whole-disk buffer there
	// costs gigabytes under the race detector).
	all := make([]byte, min(c, 64*mib))
	if n, err := d.ReadAt(all, 0); n != len(all) || (err != nil && err != io.EOF) {
		t.Fatalf("ReadAt(%d bytes at 0) = %d, %v", len(all), n, err)
	}
	checkSame(t, "one large read from the start", all, content[:len(all)])
	all = nil
	runtime.GC()

	tests := []struct {
		name  string
		off   int64
		size  int
		n     int
		isEOF bool // a short read must say io.EOF
	}{
		{"first byte", 0, 1, 1, false},
		{"inside", 4*mib - 100, 200, 200, false},
		{"last bytes", c - 10, 10, 10, false},
		{"across end", c - 10, 100, 10, true},
		{"at end", c, 10, 0, true},
		{"past end", c + 4096, 10, 0, true},
	}
	for _, tt := range tests {
		p := make([]byte, tt.size)
		n, err := d.ReadAt(p, tt.off)
		if n != tt.n || (tt.isEOF && err != io.EOF) || (!tt.isEOF && err != nil && err != io.EOF) {
			t.Errorf("%s: ReadAt(%d bytes at %d) = %d, %v; want %d bytes (io.EOF: %v)",
				tt.name, tt.size, tt.off, n, err, tt.n, tt.isEOF)
			continue
		}
		if n > 0 {
			checkSame(t, tt.name, p[:n], content[tt.off:tt.off+int64(n)])
		}
	}
	if n, err := d.ReadAt(make([]byte, 10), -1); err == nil {
		t.Errorf("ReadAt at offset -1 = %d, nil; want an error", n)
	}
	s.close(t, fx, snap)
}

func (s *sourceSuite) concurrentRead(t *testing.T) {
	content := s.g.content(2)
	fx, snap, d := s.open(t, content)
	c := s.g.capacity
	parallel(200, 8, func(i int) {
		rng := rand.New(rand.NewPCG(uint64(i), 3))
		off := rng.Int64N(c)
		p := make([]byte, rng.IntN(256<<10)+1)
		n, err := d.ReadAt(p, off)
		want := content[off:min(off+int64(len(p)), c)]
		if n != len(want) || (n < len(p) && err != io.EOF) || (n == len(p) && err != nil && err != io.EOF) {
			t.Errorf("ReadAt(%d bytes at %d) = %d, %v; want %d", len(p), off, n, err, len(want))
			return
		}
		if _, diff := firstDiff(p[:n], want); diff {
			t.Errorf("ReadAt(%d bytes at %d) returned other bytes than the disk holds", len(p), off)
		}
	})
	s.close(t, fx, snap)
}

// full checks that a backup without a base reads every non-zero byte.
func (s *sourceSuite) full(t *testing.T) {
	content := s.g.content(3)
	fx, snap, d := s.open(t, content)
	ch, err := d.Changes(t.Context(), nil)
	if err != nil {
		t.Fatalf("Changes(nil): %v", err)
	}
	if ch.Delta {
		t.Errorf("Changes(nil) reports Delta, but there is no base to be a delta of")
	}
	if ch.Method == "" {
		t.Error("Changes(nil) reports no Method")
	}
	checkExtents(t, ch.Extents, s.g.capacity)
	checkRebuilt(t, "disk rebuilt from zeros and the extents of Changes(nil)", d, ch.Extents, nil, expected(content, nil))
	s.close(t, fx, snap)
}

// incremental checks that a backup against a base covers every change.
func (s *sourceSuite) incremental(t *testing.T) {
	before := s.g.content(4)
	fx, snap, d := s.open(t, before)
	key := d.Key()
	first, err := d.Changes(t.Context(), nil)
	if err != nil {
		t.Fatalf("first Changes: %v", err)
	}
	// The appliance commits the first restore point before closing; every
	// other snapshot in the suite is closed as after a failed backup.
	if c, ok := snap.(plugins.Committer); ok {
		if err := c.Committed(t.Context()); err != nil {
			t.Fatalf("Committed: %v", err)
		}
	}
	s.close(t, fx, snap)

	ws := s.g.changes(4)
	var changed []plugins.Extent
	for _, w := range ws {
		if err := fx.Write(w.off, w.p); err != nil {
			t.Fatalf("write %d bytes at %d: %v", len(w.p), w.off, err)
		}
		changed = append(changed, w.extent())
	}

	var opts plugins.OpenOptions
	if s.h.Incremental != nil {
		opts = s.h.Incremental(changed)
	}
	snap, err = fx.Source.Open(t.Context(), fx.Object, opts)
	if err != nil {
		t.Fatalf("Open for the incremental: %v", err)
	}
	t.Cleanup(func() { _ = snap.Close(t.Context()) })
	d = s.disk(t, snap)
	if d.Key() != key {
		t.Errorf("Key() = %q in the second snapshot, %q in the first", d.Key(), key)
	}
	base := &plugins.Base{Capacity: s.g.capacity, ChangeToken: first.Token}
	ch, err := d.Changes(t.Context(), base)
	if err != nil {
		t.Fatalf("Changes(%+v): %v", base, err)
	}
	checkExtents(t, ch.Extents, s.g.capacity)
	if s.h.Delta && !ch.Delta {
		t.Errorf("incremental reports Delta false (method %q); the harness says the plugin tracks changes", ch.Method)
	}
	what, start := "disk rebuilt from zeros and the incremental's extents", []byte(nil)
	if ch.Delta {
		what, start = "disk rebuilt from the base and the incremental's extents", before
	}
	checkRebuilt(t, what, d, ch.Extents, start, expected(before, ws))
	s.close(t, fx, snap)
}

// pointInTime checks that a snapshot does not see writes made after Open.
func (s *sourceSuite) pointInTime(t *testing.T) {
	before := s.g.content(5)
	fx, snap, d := s.open(t, before)
	if snap.Consistency() == "none" {
		t.Skip("the plugin reads the live object in place (consistency none)")
	}
	for _, w := range s.g.changes(5) {
		if err := fx.Write(w.off, w.p); err != nil {
			t.Fatalf("write %d bytes at %d: %v", len(w.p), w.off, err)
		}
	}
	checkRebuilt(t, "snapshot read after the object changed", d, []plugins.Extent{{Offset: 0, Length: s.g.capacity}}, nil, expected(before, nil))
	s.close(t, fx, snap)
}

// window is how much of a disk checkRebuilt holds at a time: the suite also
// runs on disks of a gigabyte, where whole-disk copies under the race
// detector cost many gigabytes.
const window = 4 * mib

// expected returns the bytes of disk with ws applied, a window at a time.
func expected(disk []byte, ws []write) func(off int64, p []byte) {
	return func(off int64, p []byte) {
		copy(p, disk[off:])
		end := off + int64(len(p))
		for _, w := range ws {
			lo, hi := max(w.off, off), min(w.off+int64(len(w.p)), end)
			if lo < hi {
				copy(p[lo-off:hi-off], w.p[lo-w.off:hi-w.off])
			}
		}
	}
}

// checkRebuilt fails unless base (zeros if nil) with ext read from d over
// it equals want, comparing a window at a time.
func checkRebuilt(t *testing.T, what string, d plugins.Disk, ext []plugins.Extent, base []byte, want func(off int64, p []byte)) {
	t.Helper()
	capacity := d.Capacity()
	got, exp := make([]byte, window), make([]byte, window)
	for off := int64(0); off < capacity; off += window {
		n := min(window, capacity-off)
		g, e := got[:n], exp[:n]
		clear(g)
		if base != nil {
			copy(g, base[off:])
		}
		for _, x := range ext {
			lo, hi := max(x.Offset, off), min(x.End(), off+n)
			for p := lo; p < hi; p += mib { // in pieces of at most 1 MiB, as readExtents
				q := min(p+mib, hi)
				if k, err := d.ReadAt(g[p-off:q-off], p); k != int(q-p) || (err != nil && err != io.EOF) {
					t.Fatalf("ReadAt(%d bytes at %d) = %d, %v", q-p, p, k, err)
				}
			}
		}
		want(off, e)
		if i, diff := firstDiff(g, e); diff {
			t.Fatalf("%s: differs first at byte %d: %#x, want %#x", what, off+int64(i), g[i], e[i])
		}
	}
}
