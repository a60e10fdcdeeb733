package file

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/cairnhq/cairn/plugins"
)

func TestGaps(t *testing.T) {
	tests := []struct {
		name string
		ext  []plugins.Extent
		want []plugins.Extent
	}{
		{"nothing written", nil, []plugins.Extent{ext(0, 100)}},
		{"everything written", []plugins.Extent{ext(0, 100)}, nil},
		{"middle", []plugins.Extent{ext(10, 20)}, []plugins.Extent{ext(0, 10), ext(30, 70)}},
		{"ends", []plugins.Extent{ext(0, 10), ext(90, 10)}, []plugins.Extent{ext(10, 80)}},
		{"several", []plugins.Extent{ext(5, 5), ext(20, 5), ext(99, 1)}, []plugins.Extent{ext(0, 5), ext(10, 10), ext(25, 74)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := gaps(tt.ext, 100); !slices.Equal(got, tt.want) {
				t.Errorf("gaps(%v, 100) = %v, want %v", tt.ext, got, tt.want)
			}
		})
	}
}

// junkFile makes a file of n bytes that are never zero.
func junkFile(t *testing.T, n int) (string, []byte) {
	t.Helper()
	p := bytes.Repeat([]byte{0xee}, n)
	path := filepath.Join(t.TempDir(), "junk")
	if err := os.WriteFile(path, p, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, p
}

func TestZeroRange(t *testing.T) {
	page := int64(os.Getpagesize())
	tests := []struct {
		name   string
		off, n int64
	}{
		{"inside one page", page + 10, 100},
		{"aligned", 2 * page, 3 * page},
		{"unaligned both ends", page - 1, 2*page + 2},
		{"large", 1000, 3<<20 + 17}, // more than one chunk of zeros
	}
	for _, tt := range tests {
		for _, name := range []string{"zeroRange", "writeZeros"} {
			t.Run(tt.name+"/"+name, func(t *testing.T) {
				path, want := junkFile(t, 4<<20)
				f, err := os.OpenFile(path, os.O_RDWR, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if name == "zeroRange" {
					err = zeroRange(t.Context(), f, tt.off, tt.n)
				} else {
					err = writeZeros(t.Context(), f, tt.off, tt.n)
				}
				if err != nil {
					t.Fatal(err)
				}
				clear(want[tt.off : tt.off+tt.n])
				got, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Error("file content differs from junk with the range zeroed")
				}
			})
		}
	}
}

// Many scattered writes, merged as they come, still leave exactly the
// unwritten ranges to zero.
func TestDeviceWriterManyWrites(t *testing.T) {
	const size = 3 << 20
	path, _ := junkFile(t, size)
	w, err := openDevice(path, size)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, size)
	var offs []int64
	// Runs of ten adjacent 100-byte writes, 1000 bytes apart.
	for off := int64(0); off+100 <= size; off += 100 {
		if off%2000 < 1000 {
			offs = append(offs, off)
			copy(want[off:off+100], bytes.Repeat([]byte{7}, 100))
		}
	}
	// Four writers, each going through its quarter of the disk in order, as
	// a restore does.
	var wg sync.WaitGroup
	for part := range 4 {
		wg.Go(func() {
			for _, off := range offs[part*len(offs)/4 : (part+1)*len(offs)/4] {
				if _, err := w.WriteAt(bytes.Repeat([]byte{7}, 100), off); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if len(w.written) > len(offs)/3 {
		t.Errorf("%d ranges recorded for %d writes; the list was never merged", len(w.written), len(offs))
	}
	if err := w.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("content differs: unwritten ranges were not all zeroed, or writes were lost")
	}
}

func ext(off, n int64) plugins.Extent { return plugins.Extent{Offset: off, Length: n} }
