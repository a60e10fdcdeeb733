package file_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/cairnhq/cairn/plugins"
	"github.com/cairnhq/cairn/plugins/file"
)

const mib = 1 << 20

// image writes a file of size bytes with 0xab at the given ranges and holes
// elsewhere, and returns its path and the filesystem's block size.
func image(t *testing.T, size int64, data []plugins.Extent) (string, int64) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "disk.img")
	content := make([]byte, size)
	for _, e := range data {
		for i := e.Offset; i < e.End(); i++ {
			content[i] = 0xab
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, e := range data {
		if _, err := f.WriteAt(content[e.Offset:e.End()], e.Offset); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	return path, st.Blksize
}

// openDisk opens the only object of the file at path.
func openDisk(t *testing.T, path string, opts plugins.OpenOptions) plugins.Disk {
	t.Helper()
	snap, err := file.New(path).Open(t.Context(), filepath.Base(path), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { snap.Close(t.Context()) })
	return snap.Disks()[0]
}

func TestAllocatedExtents(t *testing.T) {
	tests := []struct {
		name string
		size int64
		data []plugins.Extent
	}{
		{"all hole", 20 * mib, nil},
		{"4 MiB aligned", 20*mib + 123, []plugins.Extent{ext(0, 4*mib), ext(8*mib, 4*mib)}},
		{"unaligned", 20*mib + 123, []plugins.Extent{ext(4*mib+1000, 5000), ext(13*mib+4095, 2), ext(17*mib, 1)}},
		{"data in the last partial block", 20*mib + 123, []plugins.Extent{ext(20*mib+100, 23)}},
		{"all data", 3*mib + 5, []plugins.Extent{ext(0, 3*mib+5)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, block := image(t, tt.size, tt.data)
			// The filesystem allocates whole blocks, so data extents are the
			// written ranges widened to blocks (ending at most at the size).
			var want []plugins.Extent
			for _, e := range tt.data {
				start := e.Offset / block * block
				end := min((e.End()+block-1)/block*block, tt.size)
				want = append(want, plugins.Extent{Offset: start, Length: end - start})
			}
			want, _ = plugins.NormalizeExtents(want, tt.size)
			ch, err := openDisk(t, path, plugins.OpenOptions{}).Changes(t.Context(), nil)
			if err != nil {
				t.Fatalf("Changes: %v", err)
			}
			if ch.Method != file.MethodAllocated || ch.Delta || ch.Token != "" {
				t.Errorf("Changes = method %q, delta %v, token %q; want allocated, false, empty", ch.Method, ch.Delta, ch.Token)
			}
			if !slices.Equal(ch.Extents, want) {
				t.Errorf("Extents = %v, want %v", ch.Extents, want)
			}
		})
	}
}

func TestChanges(t *testing.T) {
	const size = 20 * mib
	data := []plugins.Extent{ext(0, mib), ext(8*mib, mib)}
	list := []plugins.Extent{ext(9*mib, 10), ext(100, 50), ext(120, 100)}
	tests := []struct {
		name   string
		list   []plugins.Extent
		base   *plugins.Base
		method string
		delta  bool
		want   []plugins.Extent
	}{
		{"first backup", nil, nil, file.MethodAllocated, false, data},
		{"no list, base", nil, &plugins.Base{Capacity: size}, file.MethodHashCompare, false, data},
		{"no list, grown", nil, &plugins.Base{Capacity: size / 2}, file.MethodHashCompare, false, data},
		{"list, no base", list, nil, file.MethodAllocated, false, data},
		{"list, capacity changed", list, &plugins.Base{Capacity: size - 4096}, file.MethodAllocated, false, data},
		{"list, base", list, &plugins.Base{Capacity: size}, file.MethodExtentList, true,
			[]plugins.Extent{ext(100, 120), ext(9*mib, 10)}},
		{"empty list, base", []plugins.Extent{}, &plugins.Base{Capacity: size}, file.MethodExtentList, true, []plugins.Extent{}},
	}
	path, _ := image(t, size, data)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := openDisk(t, path, plugins.OpenOptions{ChangedExtents: tt.list})
			ch, err := d.Changes(t.Context(), tt.base)
			if err != nil {
				t.Fatalf("Changes: %v", err)
			}
			if ch.Method != tt.method || ch.Delta != tt.delta || ch.Token != "" {
				t.Errorf("Changes = method %q, delta %v, token %q; want %q, %v, empty",
					ch.Method, ch.Delta, ch.Token, tt.method, tt.delta)
			}
			if !slices.Equal(ch.Extents, tt.want) {
				t.Errorf("Extents = %v, want %v", ch.Extents, tt.want)
			}
		})
	}
}

func TestOpenChangedExtentsPastEnd(t *testing.T) {
	path, _ := image(t, mib, nil)
	opts := plugins.OpenOptions{ChangedExtents: []plugins.Extent{ext(mib-10, 11)}}
	_, err := file.New(path).Open(t.Context(), "disk.img", opts)
	if err == nil || !strings.Contains(err.Error(), "past the disk's capacity") {
		t.Errorf("Open with an extent past the end: error %v, want one about capacity", err)
	}
}

func TestNotFoundAndUnsupported(t *testing.T) {
	dir := t.TempDir()
	path, _ := image(t, mib, nil)
	tests := []struct {
		name   string
		path   string
		object string
		want   error
	}{
		{"missing file", filepath.Join(dir, "gone.img"), "gone.img", plugins.ErrNotFound},
		{"other object", path, "other.img", plugins.ErrNotFound},
		{"directory", dir, filepath.Base(dir), plugins.ErrUnsupported},
		{"character device", "/dev/null", "null", plugins.ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := file.New(tt.path)
			if _, err := s.Open(t.Context(), tt.object, plugins.OpenOptions{}); !errors.Is(err, tt.want) {
				t.Errorf("Open: error %v, want %v", err, tt.want)
			}
			if tt.object == filepath.Base(tt.path) {
				if _, err := s.Objects(t.Context()); !errors.Is(err, tt.want) {
					t.Errorf("Objects: error %v, want %v", err, tt.want)
				}
			}
		})
	}
}

// A live file that shrinks under the backup must fail the read, not look
// like the end of the disk.
func TestReadShrunkFile(t *testing.T) {
	path, _ := image(t, 2*mib, []plugins.Extent{ext(0, 2*mib)})
	d := openDisk(t, path, plugins.OpenOptions{})
	if err := os.Truncate(path, mib); err != nil {
		t.Fatal(err)
	}
	n, err := d.ReadAt(make([]byte, 4096), mib+100)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("ReadAt past the new end = %d, %v; want io.ErrUnexpectedEOF", n, err)
	}
	ch, err := d.Changes(t.Context(), nil)
	if err != nil || !slices.Equal(ch.Extents, []plugins.Extent{ext(0, mib)}) {
		t.Errorf("Changes after shrinking = %+v, %v; want the remaining data", ch, err)
	}
}

func TestBlockDeviceSource(t *testing.T) {
	backing, _ := image(t, 4*mib, []plugins.Extent{ext(mib, 4096)})
	dev := loopDevice(t, backing)
	s := file.New(dev)
	objs, err := s.Objects(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := plugins.Object{Name: filepath.Base(dev), Kind: file.KindBlockDevice, Size: 4 * mib, Disks: 1}
	if got := objs[0]; got.Name != want.Name || got.Kind != want.Kind || got.Size != want.Size || got.Disks != 1 {
		t.Errorf("Objects = %+v, want %+v", got, want)
	}
	d := openDisk(t, dev, plugins.OpenOptions{})
	for _, tt := range []struct {
		base   *plugins.Base
		method string
	}{{nil, file.MethodFull}, {&plugins.Base{Capacity: 4 * mib}, file.MethodHashCompare}} {
		ch, err := d.Changes(t.Context(), tt.base)
		if err != nil {
			t.Fatal(err)
		}
		if ch.Method != tt.method || ch.Delta || !slices.Equal(ch.Extents, []plugins.Extent{ext(0, 4*mib)}) {
			t.Errorf("Changes(%+v) = %+v, want the whole device, method %q", tt.base, ch, tt.method)
		}
	}
}
