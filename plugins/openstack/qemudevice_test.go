package openstack

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairnhq/cairn/plugins/nbd/qemunbd"
)

// TestQemuDevice reads and writes a raw image through qemu-nbd as a
// network connector would: allocated extents, the bytes, and a restore in
// place that zeroes what it did not write.
func TestQemuDevice(t *testing.T) {
	needTools(t, "qemu-nbd")
	ctx := context.Background()
	const capacity = 64 << 20
	img := filepath.Join(t.TempDir(), "volume.raw")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 1<<20)
	rand.Read(data)
	for _, off := range []int64{0, 40 << 20} {
		if _, err := f.WriteAt(data, off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(capacity); err != nil {
		t.Fatal(err)
	}
	f.Close()

	dev, err := connectQemu(ctx, "test volume", qemunbd.Config{TempDir: t.TempDir(), Args: []string{"--format=raw", img}})
	if err != nil {
		t.Fatal(err)
	}
	view, err := dev.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	disk := view.Disks()[0]
	if disk.Capacity() != capacity {
		t.Fatalf("capacity %d, want %d", disk.Capacity(), capacity)
	}
	ch, err := disk.Changes(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var allocated int64
	for _, e := range ch.Extents {
		allocated += e.Length
	}
	if ch.Method != MethodAllocated || ch.Delta || allocated < 2<<20 || allocated > 8<<20 {
		t.Fatalf("changes %+v (%d bytes allocated), want about the 2 MiB written", ch, allocated)
	}
	got := make([]byte, len(data))
	if _, err := disk.ReadAt(got, 40<<20); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back at 40 MiB: %v, equal %v", err, bytes.Equal(got, data))
	}

	// A restore of one block: everything else must read as zeros after.
	w, err := dev.OpenWriter(ctx, capacity)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteAt(data, 8<<20); err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteAt(data, capacity); err == nil {
		t.Fatal("a write past the capacity was accepted")
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := view.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := dev.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := dev.Close(ctx); err != nil {
		t.Fatalf("a second Close: %v", err)
	}
	out, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, capacity)
	copy(want[8<<20:], data)
	if !bytes.Equal(out, want) {
		t.Fatal("after the restore the image is not the one written block and zeros")
	}
}
