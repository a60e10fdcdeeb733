package openstack

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/snapshots"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"

	appapi "github.com/cairnhq/cairn/appliance/api"
	"github.com/cairnhq/cairn/cluster/meta"
)

// run runs a command and fails the test with its output if it fails.
func run(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is not installed (tests/setup installs it)", tool)
			}
			t.Skipf("%s is not installed (run tests/setup)", tool)
		}
	}
}

func randomFile(t *testing.T, path string, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, _ = rand.Read(b)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFilesystemBackupIncrementalRestore backs up a volume holding a real
// ext4 filesystem through the real engine, changes the filesystem, takes an
// incremental that stores only the changed blocks, and restores it to a new
// volume whose bytes equal the source's and whose filesystem checks clean.
func TestFilesystemBackupIncrementalRestore(t *testing.T) {
	needTools(t, "mkfs.ext4", "debugfs", "e2fsck", "dd")
	e := newEnv(t)
	ctx := context.Background()
	dir := t.TempDir()

	// A 1 GiB ext4 image made from a tree, written into the volume through
	// the guest's attachment.
	tree := filepath.Join(dir, "tree")
	for _, d := range []string{"docs", "data"} {
		if err := os.MkdirAll(filepath.Join(tree, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(tree, "docs", "readme.txt"), bytes.Repeat([]byte("cairn backs up cinder volumes\n"), 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		randomFile(t, filepath.Join(tree, "data", fmt.Sprintf("blob-%d.bin", i)), 5<<20)
	}
	img := filepath.Join(dir, "fs.img")
	run(t, "truncate", "-s", "1G", img)
	run(t, "mkfs.ext4", "-q", "-F", "-d", tree, img)
	v, att := e.volume(t, "fs", 1, nil)
	run(t, "dd", "if="+img, "of="+att.Device.String(), "bs=1M", "conv=sparse,notrunc,fsync", "status=none")

	a := newAppliance(t, testTiming)
	a.addSource(t, "cloud", e.d.Endpoint)

	t0 := time.Now()
	j1 := a.backup(t, "cloud", v.Name)
	if j1.State != meta.JobSucceeded {
		t.Fatalf("full backup: %s: %s", j1.State, j1.Error)
	}
	rp1, err := a.m.RestorePoint(ctx, j1.RestorePoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("full: %s, %d chunks (%d new), %d bytes read, method %s", time.Since(t0).Round(time.Millisecond),
		rp1.Chunks, rp1.NewChunks, rp1.ReadBytes, rp1.Disks[0].Method)
	if rp1.Disks[0].Method != MethodAllocated || rp1.Consistency != "crash-consistent" || rp1.NewChunks < 4 {
		t.Errorf("full backup: method %q, consistency %q, %d new chunks; want allocated, crash-consistent, at least 4 (15 MiB of files)",
			rp1.Disks[0].Method, rp1.Consistency, rp1.NewChunks)
	}

	// The guest changes its filesystem: a new 6 MiB file, a file removed.
	newFile := filepath.Join(dir, "new.bin")
	want := randomFile(t, newFile, 6<<20)
	run(t, "debugfs", "-w", "-R", "write "+newFile+" /data/new.bin", att.Device.String())
	run(t, "debugfs", "-w", "-R", "rm /data/blob-1.bin", att.Device.String())

	t0 = time.Now()
	j2 := a.backup(t, "cloud", v.Name)
	if j2.State != meta.JobSucceeded {
		t.Fatalf("incremental: %s: %s", j2.State, j2.Error)
	}
	rp2, err := a.m.RestorePoint(ctx, j2.RestorePoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("incremental: %s, %d chunks (%d new), %d bytes read, %d new bytes, method %s", time.Since(t0).Round(time.Millisecond),
		rp2.Chunks, rp2.NewChunks, rp2.ReadBytes, rp2.NewBytes, rp2.Disks[0].Method)
	if rp2.Base != rp1.ID || rp2.Disks[0].Method != MethodHashCompare {
		t.Errorf("incremental: base %q method %q; want base %s and hash-compare", rp2.Base, rp2.Disks[0].Method, rp1.ID)
	}
	// 6 MiB of file data spans 2 or 3 blocks; the bitmaps, inode table,
	// directory and journal a few more.
	if rp2.NewChunks == 0 || rp2.NewChunks > 7 {
		t.Errorf("incremental stored %d new chunks; want the few that changed (1 to 7)", rp2.NewChunks)
	}

	// The plugin keeps exactly the newest point's snapshot.
	page, err := snapshots.ListDetail(e.sc, snapshots.ListOpts{VolumeID: v.ID}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	snaps, _ := snapshots.ExtractSnapshots(page)
	if len(snaps) != 1 || snaps[0].ID != rp2.Disks[0].ChangeToken || snaps[0].ID == rp1.Disks[0].ChangeToken {
		t.Errorf("snapshots of the volume: %+v; want only %s (the incremental's token)", snaps, rp2.Disks[0].ChangeToken)
	}
	e.noLeftovers(t, v.ID)

	// Restore the incremental to a new volume.
	name := fmt.Sprintf("restored-fs-%d", volSeq.Add(1))
	t0 = time.Now()
	jr, err := a.m.StartRestore(ctx, appapi.RestoreRequest{RestorePoint: rp2.ID, To: "openstack:cloud",
		Options: map[string]string{OptVolumeName: name}})
	jr = a.wait(t, jr, err)
	if jr.State != meta.JobSucceeded {
		t.Fatalf("restore: %s: %s", jr.State, jr.Error)
	}
	id := jr.Result["volume_id"]
	t.Logf("restore: %s to volume %s", time.Since(t0).Round(time.Millisecond), id)
	if id == "" {
		t.Fatalf("restore job result %v has no volume_id", jr.Result)
	}
	t.Cleanup(func() { e.remove(t, id) })
	rv, err := volumes.Get(ctx, e.sc, id).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if rv.Name != name || rv.Size != 1 || rv.Status != "available" || rv.Metadata[metaRole] != "" {
		t.Errorf("restored volume: name %q size %d status %s metadata %v", rv.Name, rv.Size, rv.Status, rv.Metadata)
	}
	sameFiles(t, e.d.VolumeFile(v.ID), e.d.VolumeFile(id), 1<<30)
	run(t, "e2fsck", "-fn", e.d.VolumeFile(id))
	dumped := filepath.Join(dir, "new.restored")
	run(t, "debugfs", "-R", "dump /data/new.bin "+dumped, e.d.VolumeFile(id))
	if got, err := os.ReadFile(dumped); err != nil || !bytes.Equal(got, want) {
		t.Errorf("the restored filesystem's /data/new.bin differs from the file written (%d bytes, want %d)", len(got), len(want))
	}
	if out := run(t, "debugfs", "-R", "ls /data", e.d.VolumeFile(id)); bytes.Contains(out, []byte("blob-1.bin")) {
		t.Errorf("the restored filesystem still lists the removed blob-1.bin: %s", out)
	}
	e.noLeftovers(t, v.ID)
}
