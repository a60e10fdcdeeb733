package file_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/cairnhq/cairn/plugins"
	"github.com/cairnhq/cairn/plugins/file"
)

// dataMap returns the data extents of the file at path, as the file
// source's full backup sees them.
func dataMap(t *testing.T, path string) []plugins.Extent {
	t.Helper()
	ch, err := openDisk(t, path, plugins.OpenOptions{}).Changes(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return ch.Extents
}

// A restored image is sparse: nothing is allocated where the disk is zero,
// even where zeros were written.
func TestTargetSparse(t *testing.T) {
	const capacity = 64 * mib
	path := filepath.Join(t.TempDir(), "restored.img")
	w, err := file.NewTarget(path, false).Create(t.Context(), plugins.DiskSpec{Key: "disk0", Capacity: capacity})
	if err != nil {
		t.Fatal(err)
	}
	mixed := bytes.Repeat([]byte{0xcd}, 2*mib) // data, 1 MiB of zeros, data
	clear(mixed[512<<10 : 1536<<10])
	writes := []struct {
		off int64
		p   []byte
	}{
		{0, bytes.Repeat([]byte{1}, mib)},
		{4 * mib, make([]byte, 4*mib)},                // a whole zero block, written
		{9 * mib, mixed},                              // zeros inside data
		{20*mib + 100, bytes.Repeat([]byte{2}, 8000)}, // unaligned
		{30 * mib, make([]byte, 100)},                 // less than a block of zeros
	}
	for _, x := range writes {
		if _, err := w.WriteAt(x.p, x.off); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}

	want := []plugins.Extent{
		ext(0, mib),
		ext(9*mib, 512<<10), ext(9*mib+1536<<10, 512<<10),
		ext(20*mib, 8192),
		ext(30*mib, 4096), // a partial block is written, zeros or not
	}
	if got := dataMap(t, path); !slices.Equal(got, want) {
		t.Errorf("restored image's data extents = %v, want %v", got, want)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	if used, max := st.Blocks*512, int64(3*mib); used > max {
		t.Errorf("restored image uses %d bytes on disk, want at most %d", used, max)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != capacity || fi.Mode().Perm() != 0o600 {
		t.Errorf("restored image: size %d, mode %v; want %d, 0600", fi.Size(), fi.Mode().Perm(), capacity)
	}
}

// Zeros written over data make the range a hole again.
func TestTargetZerosOverData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "restored.img")
	w, err := file.NewTarget(path, false).Create(t.Context(), plugins.DiskSpec{Capacity: 2 * mib})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range [][]byte{bytes.Repeat([]byte{9}, 2*mib), make([]byte, mib)} {
		if _, err := w.WriteAt(p, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, want := dataMap(t, path), []plugins.Extent{ext(mib, mib)}; !slices.Equal(got, want) {
		t.Errorf("data extents = %v, want %v", got, want)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:mib], make([]byte, mib)) || !bytes.Equal(got[mib:], bytes.Repeat([]byte{9}, mib)) {
		t.Error("content is not zeros then nines")
	}
}

func TestTargetCreateErrors(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "existing.img")
	if err := os.WriteFile(existing, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	busy := filepath.Join(dir, "busy.img")
	if err := os.WriteFile(busy+file.PartialSuffix, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		path      string
		overwrite bool
		capacity  int64
		is        error
		msg       string
	}{
		{"missing parent", filepath.Join(dir, "nope", "x.img"), true, mib, nil, "directory " + filepath.Join(dir, "nope") + " does not exist"},
		{"parent is a file", filepath.Join(existing, "x.img"), true, mib, nil, "not a directory"},
		{"exists", existing, false, mib, plugins.ErrExists, "existing.img"},
		{"partial exists", busy, true, mib, nil, "busy.img.cairn-partial exists"},
		{"directory", dir, true, mib, plugins.ErrUnsupported, "directory"},
		{"character device", "/dev/null", true, mib, plugins.ErrUnsupported, "character device"},
		{"negative capacity", filepath.Join(dir, "neg.img"), true, -1, nil, "negative capacity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := file.NewTarget(tt.path, tt.overwrite).Create(t.Context(), plugins.DiskSpec{Capacity: tt.capacity})
			if err == nil {
				w.Abort(t.Context())
				t.Fatal("Create succeeded, want an error")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v, want %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not mention %q", err, tt.msg)
			}
		})
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("directory holds %d entries after failed creates, want 2", len(entries))
	}
}

// Restoring through a symlink replaces the file it points to.
func TestTargetSymlink(t *testing.T) {
	dir := t.TempDir()
	real, link := filepath.Join(dir, "real.img"), filepath.Join(dir, "link.img")
	if err := os.WriteFile(real, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real.img", link); err != nil {
		t.Fatal(err)
	}
	w, err := file.NewTarget(link, true).Create(t.Context(), plugins.DiskSpec{Capacity: 4})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteAt([]byte("new!"), 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(real); err != nil || string(got) != "new!" {
		t.Errorf("real file = %q, %v; want new!", got, err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("link is no longer a symlink: %v, %v", fi, err)
	}
}

// A block device that someone holds exclusively (a mount, device-mapper) is
// refused.
func TestTargetDeviceBusy(t *testing.T) {
	backing, _ := image(t, 4*mib, nil)
	dev := loopDevice(t, backing)
	holder, err := os.OpenFile(dev, os.O_RDONLY|os.O_EXCL, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	_, err = file.NewTarget(dev, true).Create(t.Context(), plugins.DiskSpec{Capacity: 4 * mib})
	if err == nil || !strings.Contains(err.Error(), "mounted or in use") {
		t.Errorf("Create on a held device: error %v, want one saying it is in use", err)
	}
}

func TestTargetDeviceTooSmall(t *testing.T) {
	backing, _ := image(t, 4*mib, nil)
	dev := loopDevice(t, backing)
	_, err := file.NewTarget(dev, true).Create(t.Context(), plugins.DiskSpec{Capacity: 4*mib + 512})
	if err == nil || !strings.Contains(err.Error(), "device holds 4194304 bytes, the disk needs 4194816") {
		t.Errorf("Create on a small device: error %v, want one giving both sizes", err)
	}
}
