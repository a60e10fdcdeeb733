// Package plugintest is the conformance suite every Cairn plugin passes.
//
// RunSource holds a source plugin to the contract of plugins.Source,
// plugins.Snapshot and plugins.Disk; RunTarget holds a target plugin to the
// contract of plugins.Target and plugins.Writer. A plugin's own test adapts
// its system (real, or the best simulator its vendor ships) through a harness
// that creates objects with content the suite chooses and reports what the
// plugin left behind.
//
// Disk content is built from a fixed seed: data regions at 4 MiB-aligned and
// unaligned offsets, zero runs inside data, holes, and data up to the last
// byte. Every region and write starts and ends on a multiple of the harness's
// Align, except that the last one may end at the capacity.
package plugintest

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/cairnhq/cairn/plugins"
)

// DefaultCapacity is the disk size the suite uses when a harness sets none:
// a little over 10 MiB, so the last 4 MiB block is partial.
const DefaultCapacity = 10<<20 + 12345

const mib = 1 << 20

// minCapacity is the smallest capacity the suite's layouts fit in.
const minCapacity = 8 * mib

// write is a range of new content.
type write struct {
	off int64
	p   []byte
}

func (w write) extent() plugins.Extent { return plugins.Extent{Offset: w.off, Length: int64(len(w.p))} }

// geometry is a disk's capacity and the alignment its system needs.
type geometry struct {
	capacity, align int64
}

func newGeometry(t *testing.T, capacity, align int64) geometry {
	t.Helper()
	if align <= 0 {
		align = 1
	}
	if capacity == 0 {
		capacity = DefaultCapacity / align * align
	}
	if capacity < minCapacity {
		t.Fatalf("plugintest: capacity %d is below the suite's minimum %d", capacity, minCapacity)
	}
	return geometry{capacity, align}
}

// span returns [off, off+n) widened to the alignment and clipped to the disk.
func (g geometry) span(off, n int64) (int64, int64) {
	start := off / g.align * g.align
	end := min((off+n+g.align-1)/g.align*g.align, g.capacity)
	return start, end - start
}

// random returns an aligned write of random bytes with no zero byte, so a
// region's data is never mistaken for a hole.
func (g geometry) random(rng *rand.Rand, off, n int64) write {
	off, n = g.span(off, n)
	return write{off, nonZero(rng.Uint64(), n)}
}

// nonZero returns n random bytes that are never zero.
func nonZero(seed uint64, n int64) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	p := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(p)
	for i := bytes.IndexByte(p, 0); i >= 0; {
		p[i] = 1
		j := bytes.IndexByte(p[i+1:], 0)
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return p
}

// zeros returns an aligned write of zeros.
func (g geometry) zeros(off, n int64) write {
	off, n = g.span(off, n)
	return write{off, make([]byte, n)}
}

// content returns a disk image with data regions, zero runs and holes.
func (g geometry) content(seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	c := g.capacity
	disk := make([]byte, c)
	for _, w := range []write{
		g.random(rng, 0, 64<<10),
		g.random(rng, 4*mib, mib),
		g.zeros(4*mib+256<<10, 64<<10),
		g.random(rng, 6*mib+5000, 100000),
		g.random(rng, c-3000, 3000),
	} {
		copy(disk[w.off:], w.p)
	}
	return disk
}

// changes returns the writes that turn content into the next version: an
// overwrite inside data, new data in a hole, data zeroed, and a new tail.
func (g geometry) changes(seed uint64) []write {
	rng := rand.New(rand.NewPCG(seed, 2))
	c := g.capacity
	return []write{
		g.random(rng, 16<<10, 16<<10),
		g.random(rng, 2*mib+777, 5000),
		g.zeros(4*mib+512<<10, 128<<10),
		g.random(rng, c-100, 100),
	}
}

func apply(disk []byte, ws []write) []byte {
	out := bytes.Clone(disk)
	for _, w := range ws {
		copy(out[w.off:], w.p)
	}
	return out
}

// checkExtents fails unless ext is sorted, non-overlapping, non-empty and
// within capacity.
func checkExtents(t *testing.T, ext []plugins.Extent, capacity int64) {
	t.Helper()
	for i, e := range ext {
		if e.Offset < 0 || e.Length <= 0 || e.Offset > capacity || e.Length > capacity-e.Offset {
			t.Fatalf("extent %d %+v is empty, negative or past capacity %d", i, e, capacity)
		}
		if i > 0 && e.Offset < ext[i-1].End() {
			t.Fatalf("extent %d %+v overlaps or precedes %+v", i, e, ext[i-1])
		}
	}
}

// firstDiff describes where a and b first differ, for failure messages.
func firstDiff(a, b []byte) (int, bool) {
	if bytes.Equal(a, b) {
		return 0, false
	}
	if len(a) != len(b) {
		return min(len(a), len(b)), true
	}
	for i := range a {
		if a[i] != b[i] {
			return i, true
		}
	}
	return 0, false
}

func checkSame(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if i, diff := firstDiff(got, want); diff {
		if len(got) != len(want) {
			t.Fatalf("%s: %d bytes, want %d", what, len(got), len(want))
		}
		t.Fatalf("%s: differs first at byte %d: %#x, want %#x", what, i, got[i], want[i])
	}
}

func checkLeftovers(t *testing.T, leftovers func() ([]string, error)) {
	t.Helper()
	if leftovers == nil {
		return
	}
	left, err := leftovers()
	if err != nil {
		t.Fatalf("list leftovers: %v", err)
	}
	if len(left) > 0 {
		t.Errorf("plugin left behind %q", left)
	}
}

// parallel runs f(i) for i in [0, n) on workers goroutines.
func parallel(n, workers int, f func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range next {
				f(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}
