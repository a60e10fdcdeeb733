package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/appliance/api"
	"github.com/cairnhq/cairn/cluster/meta"
)

// TestKill9DuringBackup kills cairnd in the middle of a backup: after a
// restart the store opens, earlier restore points verify, the interrupted
// backup is no restore point, and a new backup succeeds.
func TestKill9DuringBackup(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	d := startDaemon(t, data, "")

	small := filepath.Join(dir, "small.img")
	fsImage(t, small, 128<<20, 16<<20)
	d.ok("source", "add", "file", "small", "--path", small)
	before := d.backup("small")

	big := filepath.Join(dir, "big.img")
	randomImage(t, big, 1<<30)
	d.ok("source", "add", "file", "big", "--path", big)

	ctx := context.Background()
	job, err := d.client.StartBackup(ctx, api.BackupRequest{Source: "big"})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		j, err := d.client.Job(ctx, job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if j.Done() {
			t.Fatalf("backup finished before it could be killed: %+v", j)
		}
		if j.Progress.Done > 64<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("backup made no progress: %+v", j)
		}
		time.Sleep(10 * time.Millisecond)
	}
	d.kill()

	d = startDaemon(t, data, d.addr)
	j, err := d.client.Job(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if j.State != meta.JobInterrupted {
		t.Fatalf("killed job is %q, want interrupted", j.State)
	}
	rps, err := d.client.RestorePoints(ctx, meta.Filter{Source: "big"})
	if err != nil || len(rps) != 0 {
		t.Fatalf("interrupted backup left restore points: %v %v", rps, err)
	}
	if out := d.ok("verify", before.ID, "-o", "json"); !strings.Contains(out, `"ok": true`) && !strings.Contains(out, `"ok":true`) {
		t.Fatalf("earlier restore point does not verify after the crash: %s", out)
	}

	after := d.backup("big")
	restored := filepath.Join(dir, "big.restored")
	d.ok("restore", after.ID, "--to", "file:"+restored, "--wait")
	sameFile(t, restored, big)
	d.ok("verify", after.ID)
}
