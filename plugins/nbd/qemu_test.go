package nbd_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/plugins/nbd"
)

// need fails in CI, and skips elsewhere, when a tool is missing.
func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is missing; tests/setup installs it", tool)
			}
			t.Skipf("%s is missing (tests/setup installs it)", tool)
		}
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// image makes a qcow2 image of size bytes and applies qemu-io commands.
func image(t *testing.T, size string, cmds ...string) string {
	t.Helper()
	need(t, "qemu-img", "qemu-io", "qemu-nbd")
	path := filepath.Join(t.TempDir(), "disk.qcow2")
	run(t, "qemu-img", "create", "-q", "-f", "qcow2", path, size)
	for _, c := range cmds {
		if strings.HasPrefix(c, "bitmap ") {
			run(t, "qemu-img", "bitmap", "--add", path, strings.TrimPrefix(c, "bitmap "))
			continue
		}
		run(t, "qemu-io", "-f", "qcow2", "-c", c, path)
	}
	return path
}

// serve exports path with qemu-nbd over a Unix socket until the test ends.
func serve(t *testing.T, path string, args ...string) (sock string, proc *os.Process) {
	t.Helper()
	sock = filepath.Join(t.TempDir(), "nbd.sock")
	args = append([]string{"-t", "--shared=0", "-f", "qcow2", "-k", sock}, append(args, path)...)
	cmd := exec.Command("qemu-nbd", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		// The socket file exists a moment before qemu-nbd listens on it.
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return sock, cmd.Process
		}
		select {
		case <-exited:
			t.Fatalf("qemu-nbd exited: %s", stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("qemu-nbd did not create its socket in 10 s")
		}
	}
}

func dial(t *testing.T, sock string, contexts ...string) *nbd.Client {
	t.Helper()
	c, err := nbd.Dial(t.Context(), "unix", sock, nbd.Options{MetaContexts: contexts})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func statusOf(t *testing.T, c *nbd.Client, context string, off, n int64) []nbd.Extent {
	t.Helper()
	var out []nbd.Extent
	next := off
	err := c.BlockStatus(t.Context(), context, off, n, func(e nbd.Extent) error {
		if e.Offset != next || e.Length <= 0 {
			t.Fatalf("extent %+v does not follow %d", e, next)
		}
		next = e.End()
		if k := len(out); k > 0 && out[k-1].Flags == e.Flags {
			out[k-1].Length += e.Length
		} else {
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("BlockStatus(%s): %v", context, err)
	}
	if want := min(off+n, c.Size()); next != want {
		t.Fatalf("BlockStatus(%s) stopped at %d, want %d", context, next, want)
	}
	return out
}

// dataExtents keeps the extents that are neither holes nor zero.
func dataExtents(ext []nbd.Extent) []nbd.Extent {
	var out []nbd.Extent
	for _, e := range ext {
		if e.Flags&(nbd.StateHole|nbd.StateZero) == 0 {
			out = append(out, nbd.Extent{Offset: e.Offset, Length: e.Length})
		}
	}
	return out
}

func TestReadAndBlockStatus(t *testing.T) {
	const mib = 1 << 20
	path := image(t, "64M", "write -P 0xab 1M 64k", "bitmap bm0", "write -P 0xcd 10M 4k", "write -P 0xef 63M 1M")
	sock, _ := serve(t, path, "-r", "-B", "bm0")
	c := dial(t, sock, nbd.ContextAllocation, nbd.DirtyBitmapContext("bm0"), "qemu:no-such-context")
	if c.Size() != 64*mib || c.Flags()&nbd.FlagReadOnly == 0 {
		t.Fatalf("size %d, flags %#x; want 64 MiB, read-only", c.Size(), c.Flags())
	}
	if c.HasContext("qemu:no-such-context") {
		t.Error("an unknown context was reported as selected")
	}

	want := make([]byte, 64*mib)
	copy(want[mib:], bytes.Repeat([]byte{0xab}, 64<<10))
	copy(want[10*mib:], bytes.Repeat([]byte{0xcd}, 4<<10))
	copy(want[63*mib:], bytes.Repeat([]byte{0xef}, mib))
	// A buffer full of garbage shows that holes are zeroed, not skipped.
	got := bytes.Repeat([]byte{0x77}, 64*mib)
	if n, err := c.ReadAt(got, 0); n != len(got) || err != nil {
		t.Fatalf("ReadAt(whole) = %d, %v", n, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("whole-export read differs from what qemu-io wrote")
	}
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			off := int64(i) * 4 * mib
			p := make([]byte, 5*mib)
			n, err := c.ReadAt(p, off)
			wantN := min(int64(len(p)), 64*mib-off)
			if int64(n) != wantN || (n < len(p)) != (err == io.EOF) || !bytes.Equal(p[:n], want[off:off+wantN]) {
				t.Errorf("ReadAt(5 MiB at %d) = %d, %v", off, n, err)
			}
		})
	}
	wg.Wait()
	if n, err := c.ReadAt(make([]byte, 10), 64*mib); n != 0 || err != io.EOF {
		t.Errorf("ReadAt at the end = %d, %v; want 0, EOF", n, err)
	}

	alloc := dataExtents(statusOf(t, c, nbd.ContextAllocation, 0, c.Size()))
	// qcow2 reports the rest of a partly written cluster as zero.
	wantAlloc := []nbd.Extent{{Offset: mib, Length: 64 << 10}, {Offset: 10 * mib, Length: 4 << 10}, {Offset: 63 * mib, Length: mib}}
	if !equalExtents(alloc, wantAlloc) {
		t.Errorf("allocated extents %+v, want %+v", alloc, wantAlloc)
	}
	var dirty []nbd.Extent
	for _, e := range statusOf(t, c, nbd.DirtyBitmapContext("bm0"), 0, c.Size()) {
		if e.Flags&nbd.StateDirty != 0 {
			dirty = append(dirty, nbd.Extent{Offset: e.Offset, Length: e.Length})
		}
	}
	wantDirty := []nbd.Extent{{Offset: 10 * mib, Length: 64 << 10}, {Offset: 63 * mib, Length: mib}}
	if !equalExtents(dirty, wantDirty) {
		t.Errorf("dirty extents %+v, want %+v (the write before the bitmap was added is not dirty)", dirty, wantDirty)
	}
	err := c.BlockStatus(t.Context(), "qemu:no-such-context", 0, 1, func(nbd.Extent) error { return nil })
	if !errors.Is(err, nbd.ErrNoContext) {
		t.Errorf("BlockStatus of an unselected context: %v, want ErrNoContext", err)
	}
}

func equalExtents(a, b []nbd.Extent) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Offset != b[i].Offset || a[i].Length != b[i].Length {
			return false
		}
	}
	return true
}

// TestBlockStatusPastFourGiB walks a disk larger than a 32-bit length in
// several requests.
func TestBlockStatusPastFourGiB(t *testing.T) {
	const gib = 1 << 30
	path := image(t, "6G", "write -P 0x11 0 64k", "write -P 0x22 5G 128k", "write -P 0x33 6143M 1M")
	sock, _ := serve(t, path, "-r")
	c := dial(t, sock, nbd.ContextAllocation)
	got := dataExtents(statusOf(t, c, nbd.ContextAllocation, 0, c.Size()))
	want := []nbd.Extent{{Offset: 0, Length: 64 << 10}, {Offset: 5 * gib, Length: 128 << 10}, {Offset: 6*gib - 1<<20, Length: 1 << 20}}
	if !equalExtents(got, want) {
		t.Fatalf("allocated extents of a 6 GiB disk: %+v, want %+v", got, want)
	}
	p := make([]byte, 4)
	if _, err := c.ReadAt(p, 5*gib+100); err != nil || !bytes.Equal(p, []byte{0x22, 0x22, 0x22, 0x22}) {
		t.Fatalf("read past 4 GiB: %x, %v", p, err)
	}
}

func TestWrite(t *testing.T) {
	path := image(t, "16M")
	sock, _ := serve(t, path, "--discard=unmap")
	c := dial(t, sock, nbd.ContextAllocation)
	data := bytes.Repeat([]byte("cairn!"), 600000) // 3.6 MB, past one cluster boundary many times
	if _, err := c.WriteAt(data, 1<<20+7); err != nil {
		t.Fatalf("WriteAt: %v", err)
	}
	if err := c.WriteZeroes(2<<20, 1<<20); err != nil {
		t.Fatalf("WriteZeroes: %v", err)
	}
	if _, err := c.WriteAt([]byte{1}, 16<<20); err == nil {
		t.Error("a write past the end succeeded")
	}
	if err := c.Flush(t.Context()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	want := make([]byte, 16<<20)
	copy(want[1<<20+7:], data)
	clear(want[2<<20 : 3<<20])
	got := make([]byte, len(want))
	if _, err := c.ReadAt(got, 0); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read back after writes: equal %v, %v", bytes.Equal(got, want), err)
	}
	for _, e := range dataExtents(statusOf(t, c, nbd.ContextAllocation, 0, c.Size())) {
		if e.Offset < 3<<20 && e.End() > 2<<20 {
			t.Errorf("zeroed range still allocated: %+v", e)
		}
	}
}

func TestServerDiesMidRead(t *testing.T) {
	path := image(t, "256M", "write -P 0x5a 0 256M")
	sock, proc := serve(t, path, "-r")
	c := dial(t, sock)
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			for {
				if _, err := c.ReadAt(make([]byte, 8<<20), 0); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	if err := proc.Kill(); err != nil {
		t.Fatal(err)
	}
	for range 8 {
		select {
		case err := <-errs:
			if err == nil {
				t.Fatal("read succeeded after the server died")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a read still waits 10 s after the server died")
		}
	}
	if _, err := c.ReadAt(make([]byte, 1), 0); err == nil {
		t.Error("read on a dead connection succeeded")
	}
}

func TestUnknownExport(t *testing.T) {
	path := image(t, "1M")
	sock, _ := serve(t, path, "-r", "-x", "disk")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err := nbd.Dial(ctx, "unix", sock, nbd.Options{Export: "nope"})
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("Dial of an unknown export: %v, want an error naming it", err)
	}
	c, err := nbd.Dial(ctx, "unix", sock, nbd.Options{Export: "disk"})
	if err != nil {
		t.Fatalf("Dial of the export: %v", err)
	}
	c.Close()
}
