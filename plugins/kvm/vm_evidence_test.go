package kvm

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cairnhq/cairn/cluster/meta"
	"github.com/cairnhq/cairn/plugins"
)

// TestVMFullIncrementalRestore backs up a drive of a running QEMU while its
// guest device writes, through QMP and QEMU's own NBD server.
func TestVMFullIncrementalRestore(t *testing.T) {
	img := ext4Image(t)
	v1 := snapshotCopy(t, img)
	vm := startVM(t, img)
	a := newAppliance(t)
	a.addSource(t, "live", map[string]string{"qmp": vm.qmp, "drive": "drive0"})

	full := a.point(t, a.backup(t, "live"))
	fullRead := a.reads.total()
	d := full.Disks[0]
	if d.Key != "drive0" || d.Method != "allocated" || full.Consistency != "crash-consistent" {
		t.Fatalf("full backup: disk %+v, consistency %s", d, full.Consistency)
	}
	if got := vm.bitmaps(t); !slices.Equal(got, []string{d.ChangeToken}) {
		t.Fatalf("drive bitmaps after the full backup: %q, want [%s]", got, d.ChangeToken)
	}
	writes := []plugins.Extent{{Offset: 8 << 20, Length: 1 << 20}, {Offset: 60 << 20, Length: 128 << 10}}
	for _, w := range writes {
		if err := vm.write(t, w.Offset, make([]byte, w.Length)); err != nil {
			t.Fatal(err)
		}
	}
	// Zeros written by the guest are changes too.
	if err := vm.hmp(t, `qemu-io -d `+vmDevice+` "write -P 0x5a 9M 64k"`); err != nil {
		t.Fatal(err)
	}
	// The guest writes again while the incremental reads; the restore point
	// must not see it.
	a.reads.mu.Lock()
	var once sync.Once
	a.reads.before = func(int) {
		once.Do(func() {
			if err := vm.hmp(t, `qemu-io -d `+vmDevice+` "write -P 0x77 8M 64k"`); err != nil {
				t.Errorf("write during the backup: %v", err)
			}
		})
	}
	a.reads.mu.Unlock()
	incr := a.point(t, a.backup(t, "live"))
	a.reads.mu.Lock()
	a.reads.before = nil
	a.reads.mu.Unlock()
	incrRead := a.reads.total()
	if incr.Disks[0].Method != "dirty-bitmap" || incrRead != blocksOf(writes)*block {
		t.Fatalf("incremental: method %s, read %d bytes; want dirty-bitmap and %d", incr.Disks[0].Method, incrRead, blocksOf(writes)*block)
	}
	t.Logf("bytes read from the running VM: full %d, incremental %d", fullRead, incrRead)
	left, err := vm.leftovers(a.tmp)()
	if err != nil || len(left) > 0 {
		t.Fatalf("left in QEMU: %q, %v", left, err)
	}

	// The next backup picks up the write made during the incremental.
	third := a.point(t, a.backup(t, "live"))
	if third.Disks[0].Method != "dirty-bitmap" || a.reads.total() != block {
		t.Fatalf("third backup: method %s, read %d; want the one block written during the incremental", third.Disks[0].Method, a.reads.total())
	}

	// Stop QEMU so its image is the disk as the third backup saw it.
	if err := vm.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	_, _ = vm.cmd.Process.Wait()
	a.restoreMatches(t, full, v1)
	a.restoreMatches(t, third, img)
	raw, err := rawOf(t, a.restore(t, incr))
	if err != nil {
		t.Fatal(err)
	}
	if raw[8<<20] != 0 || raw[9<<20] != 0x5a || raw[60<<20] != 0 {
		t.Fatalf("the incremental's restore holds %#x at 8 MiB (want 0: the write during the backup is after its point in time), %#x at 9 MiB",
			raw[8<<20], raw[9<<20])
	}
	// The persistent bitmaps QEMU saved at exit are the rotation's two.
	if got := bitmapNames(t, img); !slices.Equal(sorted(got), sorted([]string{incr.Disks[0].ChangeToken, third.Disks[0].ChangeToken})) {
		t.Fatalf("bitmaps saved in the image: %q", got)
	}
}

func TestVMBitmapCreationFails(t *testing.T) {
	need(t, "qemu-img", "qemu-system-x86_64")
	img := filepath.Join(t.TempDir(), "old.qcow2")
	run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "compat=0.10", img, "16M")
	vm := startVM(t, img)
	a := newAppliance(t)
	a.addSource(t, "live", map[string]string{"qmp": vm.qmp, "drive": "drive0"})
	j := a.backup(t, "live")
	if j.State != meta.JobFailed || !strings.Contains(j.Error, "create dirty bitmap") {
		t.Fatalf("backup of a qcow2 v2 drive: %s, error %q; want a failed job about the bitmap", j.State, j.Error)
	}
	if n := a.points(t); n != 0 {
		t.Fatalf("%d restore points after a failed backup", n)
	}
	if got := vm.bitmaps(t); len(got) != 0 {
		t.Fatalf("bitmaps left on the drive: %q", got)
	}
	left, err := vm.leftovers(a.tmp)()
	if err != nil || len(left) > 0 {
		t.Fatalf("left in QEMU: %q, %v", left, err)
	}
}
