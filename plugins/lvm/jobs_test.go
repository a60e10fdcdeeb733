package lvm_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/appliance/api"
	"github.com/cairnhq/cairn/appliance/jobs"
	"github.com/cairnhq/cairn/appliance/keys"
	"github.com/cairnhq/cairn/cluster/meta"
	"github.com/cairnhq/cairn/cluster/store"
	"github.com/cairnhq/cairn/plugins"
	"github.com/cairnhq/cairn/plugins/file"
	"github.com/cairnhq/cairn/plugins/lvm"
)

// TestThroughTheJobManager runs the plugin the way cairnd does, through the
// job manager with a real catalog, with only the LVM commands answered by
// the pool stand-in: backups commit restore points and rotate the snapshot,
// a failing snapshot fails its job with the command's error and leaves no
// restore point and no snapshot, and restores match the volume.
func TestThroughTheJobManager(t *testing.T) {
	needTools(t)
	ctx := t.Context()
	dir := t.TempDir()
	catalog := meta.NewMemory()
	master, _, err := keys.Load(filepath.Join(dir, "master.key"), nil, true)
	if err != nil {
		t.Fatal(err)
	}
	p := newPool(t)
	m, err := jobs.New(context.Background(), catalog, keys.NewRing(master, catalog, nil), store.NewMemory(store.Options{}),
		[]plugins.Kind{file.Kind(), lvm.NewKind(lvm.Options{LVM: p.cli(), Open: p.openDevice})},
		jobs.Options{Secrets: keys.NewSecrets(master, nil)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)

	if _, err := m.AddSource(ctx, api.AddSourceRequest{Name: "nightly", Kind: "lvm", Config: map[string]string{"vg": "-vg0"}}); !errors.Is(err, plugins.ErrInvalid) {
		t.Fatalf("AddSource with a bad VG name: %v, want an invalid-request error", err)
	}
	v1 := bytes.Repeat([]byte("volume one "), 1<<20)[:10*mib]
	p.addVolume(testLV, append(v1, make([]byte, 6*mib)...))
	v1 = append(v1, make([]byte, 6*mib)...)
	if _, err := m.AddSource(ctx, api.AddSourceRequest{Name: "nightly", Kind: "lvm", Config: map[string]string{"vg": testVG, "lv": testLV}}); err != nil {
		t.Fatal(err)
	}
	backup := func() meta.Job {
		t.Helper()
		j, err := m.StartBackup(ctx, api.BackupRequest{Source: "nightly"})
		if err != nil {
			t.Fatal(err)
		}
		return waitJob(t, m, j.ID)
	}
	points := func() []meta.RestorePoint {
		t.Helper()
		rps, err := m.RestorePoints(ctx, meta.Filter{Source: "nightly"})
		if err != nil {
			t.Fatal(err)
		}
		return rps
	}

	j1 := backup()
	if j1.State != meta.JobSucceeded {
		t.Fatalf("full backup: %s: %s", j1.State, j1.Error)
	}
	v2 := bytes.Clone(v1)
	copy(v2[12*mib:], "written after the full backup")
	if err := p.write(testLV, 12*mib, v2[12*mib:12*mib+64]); err != nil {
		t.Fatal(err)
	}

	p.fail["lvcreate"] = errors.New("lvcreate: exit status 5: Cannot create new thin volume, free space in thin pool vg0/pool-1 reached threshold")
	failed := backup()
	if failed.State != meta.JobFailed || !strings.Contains(failed.Error, "open nightly/data: create snapshot data.cairn-nightly.2 of vg0/data: lvcreate") ||
		!strings.Contains(failed.Error, "reached threshold") || failed.RestorePoint != "" {
		t.Fatalf("backup with a failing lvcreate: %s, %q, restore point %q", failed.State, failed.Error, failed.RestorePoint)
	}
	if n := len(points()); n != 1 {
		t.Fatalf("%d restore points after the failed backup, want 1", n)
	}
	if left := p.leftovers("data.cairn-nightly.1"); len(left) > 0 {
		t.Fatalf("after the failed backup: %q", left)
	}
	delete(p.fail, "lvcreate")

	j2 := backup()
	if j2.State != meta.JobSucceeded {
		t.Fatalf("incremental backup: %s: %s", j2.State, j2.Error)
	}
	rp2, err := m.RestorePoint(ctx, j2.RestorePoint)
	if err != nil {
		t.Fatal(err)
	}
	if d := rp2.Disks[0]; d.Method != lvm.MethodThinDelta || rp2.ReadBytes != 4*mib || d.ChangeToken != "data.cairn-nightly.2@3" {
		t.Fatalf("incremental: method %q, read %d bytes, token %q; want thin-delta, one 4 MiB block, data.cairn-nightly.2@3",
			d.Method, rp2.ReadBytes, d.ChangeToken)
	}
	if got := p.snapshots(); !slices.Equal(got, []string{"data.cairn-nightly.2"}) {
		t.Fatalf("snapshots after the incremental: %q", got)
	}

	// An admin removes the base: the next backup reads in full and says why.
	if err := p.cli().Remove(ctx, testVG, "data.cairn-nightly.2"); err != nil {
		t.Fatal(err)
	}
	j3 := backup()
	rp3, err := m.RestorePoint(ctx, j3.RestorePoint)
	if err != nil || rp3.Disks[0].Method != lvm.MethodAllocated || !slices.ContainsFunc(j3.Messages, func(m string) bool {
		return strings.Contains(m, "the base snapshot data.cairn-nightly.2 is gone or was replaced: reading the allocated blocks in full")
	}) {
		t.Fatalf("backup without its base: %s, messages %q, restore point %+v, %v", j3.State, j3.Messages, rp3, err)
	}
	if rp3.Fingerprint != rp2.Fingerprint {
		t.Fatal("the full read of the same data gave another fingerprint")
	}

	for _, tc := range []struct {
		rp   string
		want []byte
	}{{j1.RestorePoint, v1}, {j2.RestorePoint, v2}} {
		out := filepath.Join(dir, tc.rp+".img")
		j, err := m.StartRestore(ctx, api.RestoreRequest{RestorePoint: tc.rp, To: "file:" + out})
		if err != nil {
			t.Fatal(err)
		}
		if j = waitJob(t, m, j.ID); j.State != meta.JobSucceeded {
			t.Fatalf("restore %s: %s", tc.rp, j.Error)
		}
		got, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, tc.want) {
			t.Fatalf("restore of %s differs from the volume it was taken of", tc.rp)
		}
	}
}

func waitJob(t *testing.T, m *jobs.Manager, id string) meta.Job {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		j, err := m.Job(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if j.Done() {
			return j
		}
	}
	t.Fatalf("job %s did not finish", id)
	return meta.Job{}
}
