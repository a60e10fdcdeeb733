package plugintest

import (
	"bytes"
	"errors"
	"io/fs"
	"math/rand/v2"
	"testing"

	"github.com/cairnhq/cairn/plugins"
)

// TargetHarness adapts one target plugin to RunTarget.
type TargetHarness struct {
	// Capacity is the size of the disks the suite restores; 0 means
	// DefaultCapacity rounded down to Align. It must be at least 9 MiB.
	Capacity int64
	// Align is the granularity the plugin's system stores data in; 0 means
	// any byte.
	Align int64
	// New prepares a fresh place to restore one disk into and returns a
	// target for it. With existing, the place already holds a disk of
	// Capacity bytes that are not all zero; otherwise it holds nothing.
	// overwrite is the target's permission to replace an existing disk.
	New func(t *testing.T, existing, overwrite bool) TargetFixture
	// ExistingOnly is set by targets that can only restore over something
	// that exists, such as a block device; the suite then never asks New
	// for an empty place.
	ExistingOnly bool
}

// TargetFixture is one place made by TargetHarness.New.
type TargetFixture struct {
	Target plugins.Target
	// Read returns the disk at the place, or an error wrapping
	// fs.ErrNotExist when there is none.
	Read func() ([]byte, error)
	// Leftovers lists whatever the plugin made besides the disk (temporary
	// files, partial uploads); after Commit or Abort it must be empty. nil
	// means there is nothing to check.
	Leftovers func() ([]string, error)
}

// RunTarget runs the target conformance suite against h.
func RunTarget(t *testing.T, h TargetHarness) {
	if h.New == nil {
		t.Fatal("plugintest: TargetHarness.New is nil")
	}
	g := newGeometry(t, h.Capacity, h.Align)
	if g.capacity < minCapacity+mib {
		t.Fatalf("plugintest: target capacity %d is below the suite's minimum %d", g.capacity, minCapacity+mib)
	}
	s := &targetSuite{h: h, g: g}
	t.Run("WriteCommit", s.writeCommit)
	t.Run("Overwrite", s.overwrite)
	t.Run("ExistsWithoutOverwrite", s.existsWithoutOverwrite)
	t.Run("Abort", s.abort)
	t.Run("WriteOutOfRange", s.writeOutOfRange)
}

type targetSuite struct {
	h TargetHarness
	g geometry
}

func (s *targetSuite) spec() plugins.DiskSpec {
	return plugins.DiskSpec{Key: "disk0", Capacity: s.g.capacity}
}

// fresh returns a fixture for a new disk: an empty place, or an existing one
// with overwrite for ExistingOnly targets.
func (s *targetSuite) fresh(t *testing.T) TargetFixture {
	return s.h.New(t, s.h.ExistingOnly, s.h.ExistingOnly)
}

// create calls Create and aborts the writer when the test ends.
func (s *targetSuite) create(t *testing.T, fx TargetFixture) plugins.Writer {
	t.Helper()
	w, err := fx.Target.Create(t.Context(), s.spec())
	if err != nil {
		t.Fatalf("Create(%+v): %v", s.spec(), err)
	}
	t.Cleanup(func() { _ = w.Abort(t.Context()) })
	return w
}

// restoreWrites returns disjoint writes: data at aligned and unaligned
// offsets, zero runs inside data, a whole 4 MiB block of zeros, many small
// pieces with gaps, and the last bytes of the disk.
func (g geometry) restoreWrites(seed uint64) []write {
	rng := rand.New(rand.NewPCG(seed, 4))
	c := g.capacity
	ws := []write{
		g.random(rng, 0, 300<<10),
		g.random(rng, mib+1000, 70000),
		g.random(rng, 2*mib, mib),
		g.zeros(4*mib, 4*mib),
		g.random(rng, c-5000, 5000),
	}
	clear(ws[2].p[128<<10 : 192<<10])
	clear(ws[2].p[500000:510000])
	for off := int64(8*mib) + 4096; ; {
		n := rng.Int64N(40<<10) + 1
		if start, n := g.span(off, n); start+n > c-8192 {
			break
		}
		w := g.random(rng, off, n)
		ws = append(ws, w)
		off = w.off + int64(len(w.p)) + rng.Int64N(24<<10) + 1
	}
	return ws
}

// writeAll writes ws in random order from several goroutines.
func writeAll(t *testing.T, w plugins.Writer, ws []write) {
	t.Helper()
	order := rand.New(rand.NewPCG(9, 9)).Perm(len(ws))
	parallel(len(ws), 4, func(i int) {
		x := ws[order[i]]
		if n, err := w.WriteAt(x.p, x.off); n != len(x.p) || err != nil {
			t.Errorf("WriteAt(%d bytes at %d) = %d, %v", len(x.p), x.off, n, err)
		}
	})
	if t.Failed() {
		t.FailNow()
	}
}

func readDisk(t *testing.T, fx TargetFixture) []byte {
	t.Helper()
	got, err := fx.Read()
	if err != nil {
		t.Fatalf("read the restored disk: %v", err)
	}
	return got
}

func (s *targetSuite) checkAbsent(t *testing.T, fx TargetFixture, when string) {
	t.Helper()
	if s.h.ExistingOnly {
		return
	}
	if got, err := fx.Read(); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s: the disk exists (%d bytes, error %v); want none", when, len(got), err)
	}
}

func (s *targetSuite) writeCommit(t *testing.T) {
	fx := s.fresh(t)
	w := s.create(t, fx)
	ws := s.g.restoreWrites(1)
	writeAll(t, w, ws)
	// A range written again (a retried chunk) holds the last write, zeros
	// included.
	again := []write{s.g.zeros(64<<10, 128<<10), s.g.random(rand.New(rand.NewPCG(1, 5)), 2*mib+100, 5000)}
	for _, x := range again {
		if n, err := w.WriteAt(x.p, x.off); n != len(x.p) || err != nil {
			t.Fatalf("WriteAt(%d bytes at %d) again = %d, %v", len(x.p), x.off, n, err)
		}
	}
	ws = append(ws, again...)
	s.checkAbsent(t, fx, "before Commit")
	if err := w.Commit(t.Context()); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	want := apply(make([]byte, s.g.capacity), ws)
	checkSame(t, "restored disk", readDisk(t, fx), want)
	if err := w.Abort(t.Context()); err != nil {
		t.Errorf("Abort after Commit: %v; want a no-op", err)
	}
	checkSame(t, "restored disk after Abort following Commit", readDisk(t, fx), want)
	checkLeftovers(t, fx.Leftovers)
}

// overwrite checks that replacing an existing disk leaves no old byte.
func (s *targetSuite) overwrite(t *testing.T) {
	fx := s.h.New(t, true, true)
	if old := readDisk(t, fx); bytes.Count(old, []byte{0}) == len(old) {
		t.Fatal("plugintest: the harness's existing disk is all zeros, so overwriting it proves nothing")
	}
	w := s.create(t, fx)
	ws := []write{s.g.random(rand.New(rand.NewPCG(2, 2)), 3*mib+12345, 10000), s.g.zeros(5*mib, 4096)}
	writeAll(t, w, ws)
	if err := w.Commit(t.Context()); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	want := apply(make([]byte, s.g.capacity), ws)
	checkSame(t, "overwritten disk (unwritten ranges must read zero)", readDisk(t, fx), want)
	checkLeftovers(t, fx.Leftovers)
}

func (s *targetSuite) existsWithoutOverwrite(t *testing.T) {
	fx := s.h.New(t, true, false)
	old := readDisk(t, fx)
	w, err := fx.Target.Create(t.Context(), s.spec())
	if !errors.Is(err, plugins.ErrExists) {
		if err == nil {
			_ = w.Abort(t.Context())
		}
		t.Fatalf("Create over an existing disk without overwrite: error %v, want plugins.ErrExists", err)
	}
	checkSame(t, "existing disk after a refused Create", readDisk(t, fx), old)
	checkLeftovers(t, fx.Leftovers)
}

func (s *targetSuite) abort(t *testing.T) {
	fx := s.fresh(t)
	w := s.create(t, fx)
	writeAll(t, w, s.g.restoreWrites(3))
	if err := w.Abort(t.Context()); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	if err := w.Abort(t.Context()); err != nil {
		t.Errorf("second Abort: %v", err)
	}
	if err := w.Commit(t.Context()); err == nil {
		t.Error("Commit after Abort succeeded; want an error")
	}
	s.checkAbsent(t, fx, "after Abort")
	checkLeftovers(t, fx.Leftovers)
}

func (s *targetSuite) writeOutOfRange(t *testing.T) {
	fx := s.fresh(t)
	w := s.create(t, fx)
	c := s.g.capacity
	for _, tt := range []struct {
		off int64
		n   int
	}{{-1, 1}, {c - 1, 2}, {c, 1}, {c + mib, 1}} {
		if n, err := w.WriteAt(make([]byte, tt.n), tt.off); err == nil {
			t.Errorf("WriteAt(%d bytes at %d) on a %d-byte disk = %d, nil; want an error", tt.n, tt.off, c, n)
		}
	}
	if err := w.Abort(t.Context()); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	checkLeftovers(t, fx.Leftovers)
}
