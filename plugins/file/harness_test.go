package file_test

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/plugins"
	"github.com/cairnhq/cairn/plugins/file"
	"github.com/cairnhq/cairn/plugins/plugintest"
)

// writeSparse writes content to a new file at path, leaving every all-zero
// 64 KiB piece a hole.
func writeSparse(t *testing.T, path string, content []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const piece = 64 << 10
	zero := make([]byte, piece)
	for off := 0; off < len(content); off += piece {
		p := content[off:min(off+piece, len(content))]
		if bytes.Equal(p, zero[:len(p)]) {
			continue
		}
		if _, err := f.WriteAt(p, int64(off)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(int64(len(content))); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// writeAt writes p at off of the file or device at path and flushes it.
func writeAt(path string, off int64, p []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(p, off); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// readN reads the first n bytes of the file or device at path.
func readN(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	p := make([]byte, n)
	if _, err := io.ReadFull(f, p); err != nil {
		return nil, err
	}
	return p, nil
}

// junk returns n bytes that are never zero.
func junk(n int64) []byte {
	p := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{7}).Read(p)
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

// others lists the entries of dir other than keep: whatever a plugin left.
func others(dir string, keep ...string) func() ([]string, error) {
	return func() ([]string, error) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		var left []string
		for _, e := range entries {
			if !slices.Contains(keep, e.Name()) {
				left = append(left, e.Name())
			}
		}
		return left, nil
	}
}

// loopDevice attaches backing to a free loop device until the test ends, or
// skips the test where loop devices cannot be used.
func loopDevice(t *testing.T, backing string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("attaching a loop device needs root")
	}
	if _, err := exec.LookPath("losetup"); err != nil {
		t.Skip("losetup is not installed (util-linux)")
	}
	out, err := exec.Command("losetup", "--find", "--show", backing).CombinedOutput()
	if err != nil {
		t.Skipf("cannot attach a loop device here: losetup: %v: %s", err, bytes.TrimSpace(out))
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "--detach", dev).CombinedOutput(); err != nil {
			t.Errorf("detach %s: %v: %s", dev, err, out)
		}
	})
	return dev
}

// imageSource makes a sparse image file per subtest.
func imageSource(t *testing.T, content []byte) plugintest.SourceFixture {
	dir := t.TempDir()
	path := filepath.Join(dir, "vm.img")
	writeSparse(t, path, content)
	return plugintest.SourceFixture{
		Source:    file.New(path),
		Object:    "vm.img",
		Write:     func(off int64, p []byte) error { return writeAt(path, off, p) },
		Leftovers: others(dir, "vm.img"),
	}
}

// deviceSource makes a loop device over a sparse file per subtest.
func deviceSource(t *testing.T, content []byte) plugintest.SourceFixture {
	dir := t.TempDir()
	backing := filepath.Join(dir, "backing.img")
	writeSparse(t, backing, content)
	dev := loopDevice(t, backing)
	return plugintest.SourceFixture{
		Source:    file.New(dev),
		Object:    filepath.Base(dev),
		Write:     func(off int64, p []byte) error { return writeAt(dev, off, p) },
		Leftovers: others(dir, "backing.img"),
	}
}

// changedExtents passes the written ranges as the caller's extent list.
func changedExtents(changed []plugins.Extent) plugins.OpenOptions {
	return plugins.OpenOptions{ChangedExtents: changed}
}

// imageTarget restores to disk.img in a fresh directory.
func imageTarget(capacity int64) func(t *testing.T, existing, overwrite bool) plugintest.TargetFixture {
	return func(t *testing.T, existing, overwrite bool) plugintest.TargetFixture {
		dir := t.TempDir()
		path := filepath.Join(dir, "disk.img")
		if existing {
			if err := os.WriteFile(path, junk(capacity), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return plugintest.TargetFixture{
			Target:    file.NewTarget(path, overwrite),
			Read:      func() ([]byte, error) { return os.ReadFile(path) },
			Leftovers: others(dir, "disk.img"),
		}
	}
}

// deviceTarget restores onto a loop device full of junk.
func deviceTarget(capacity int64) func(t *testing.T, existing, overwrite bool) plugintest.TargetFixture {
	return func(t *testing.T, existing, overwrite bool) plugintest.TargetFixture {
		if !existing {
			t.Fatal("a block device always exists")
		}
		dir := t.TempDir()
		backing := filepath.Join(dir, "backing.img")
		if err := os.WriteFile(backing, junk(capacity), 0o600); err != nil {
			t.Fatal(err)
		}
		dev := loopDevice(t, backing)
		return plugintest.TargetFixture{
			Target:    file.NewTarget(dev, overwrite),
			Read:      func() ([]byte, error) { return readN(dev, capacity) },
			Leftovers: others(dir, "backing.img"),
		}
	}
}

// ext is a short plugins.Extent literal for tables.
func ext(off, n int64) plugins.Extent { return plugins.Extent{Offset: off, Length: n} }
