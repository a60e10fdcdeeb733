package openstack

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"

	appapi "github.com/cairnhq/cairn/appliance/api"
	"github.com/cairnhq/cairn/cluster/meta"
	"github.com/cairnhq/cairn/plugins"
)

// failedBackup runs a backup that must fail with an error containing want,
// commit no restore point, and leave nothing behind.
func failedBackup(t *testing.T, e *env, a *appliance, volumeID, object, want string) meta.Job {
	t.Helper()
	j := a.backup(t, "cloud", object)
	if j.State != meta.JobFailed || !strings.Contains(j.Error, want) {
		t.Fatalf("backup: %s: %q; want a failure saying %q", j.State, j.Error, want)
	}
	if j.RestorePoint != "" || len(a.points(t, "cloud", object)) != 0 {
		t.Errorf("a failed backup made a restore point: job %q, points %v", j.RestorePoint, a.points(t, "cloud", object))
	}
	t.Logf("job error: %s", j.Error)
	return j
}

// TestSnapshotStuckInError: the driver refuses the snapshot, Cinder marks it
// "error"; the backup fails saying so and deletes the snapshot.
func TestSnapshotStuckInError(t *testing.T) {
	e := newEnv(t)
	v, _ := e.volume(t, "fail-snapshot", 1, []byte("data"))
	a := newAppliance(t, testTiming)
	a.addSource(t, "cloud", e.d.Endpoint)
	failedBackup(t, e, a, v.ID, v.Name, "went to status error")
	e.noLeftovers(t, v.ID)
}

// TestAttachmentFails: the driver refuses to connect the volume made from
// the snapshot; the backup fails and removes that volume and the snapshot.
func TestAttachmentFails(t *testing.T) {
	e := newEnv(t)
	v, _ := e.volume(t, "fail-attach", 1, []byte("data"))
	a := newAppliance(t, testTiming)
	a.addSource(t, "cloud", e.d.Endpoint)
	failedBackup(t, e, a, v.ID, v.Name, "attach volume")
	e.noLeftovers(t, v.ID)
	// The next run works once the fault is gone: the same volume renamed.
}

// TestAPILostMidRead cuts the appliance off the Cinder API (a proxy it
// talks through) while a backup is reading. The read fails with a clear
// error and no restore point is made. When the API returns while Close is
// still retrying, Close removes everything; when it returns only later, the
// next backup of the volume removes what the failed one left.
func TestAPILostMidRead(t *testing.T) {
	e := newEnv(t)
	content := make([]byte, 100<<20) // more than the engine's 48 MiB of buffers
	_, _ = rand.Read(content)
	timing := Timing{Wait: time.Minute, Check: 10 * time.Millisecond, Cleanup: 3 * time.Second}

	// lose runs a backup, cuts the proxy once it is reading, calls during,
	// and returns the failed job.
	lose := func(t *testing.T, a *appliance, p *proxy, object string, during func()) meta.Job {
		a.store.hold()
		j, err := a.m.StartBackup(context.Background(), appapi.BackupRequest{Source: "cloud", Object: object})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-a.store.first:
		case <-time.After(time.Minute):
			t.Fatal("the backup never stored a chunk")
		}
		p.cut()
		a.store.release()
		during()
		j = a.wait(t, j, nil)
		if j.State != meta.JobFailed || !strings.Contains(j.Error, "lost the Cinder API") {
			t.Fatalf("backup: %s: %q; want a failure saying it lost the Cinder API", j.State, j.Error)
		}
		if len(a.points(t, "cloud", object)) != 0 {
			t.Errorf("a failed backup made a restore point")
		}
		t.Logf("job error: %s", j.Error)
		return j
	}

	t.Run("back while cleaning up", func(t *testing.T) {
		v, _ := e.volume(t, "lost", 1, content)
		p := newProxy(t, e.d.APIAddr)
		a := newAppliance(t, timing)
		a.addSource(t, "cloud", "http://"+p.addr+"/v3/")
		j := lose(t, a, p, v.Name, func() {
			// The read has failed; Close is retrying its clean-up.
			p.waitRefused(t)
			time.Sleep(300 * time.Millisecond)
			p.restore()
		})
		if len(j.Messages) > 0 {
			t.Errorf("clean-up reported problems: %q", j.Messages)
		}
		e.noLeftovers(t, v.ID)
	})
	t.Run("back after the run", func(t *testing.T) {
		v, _ := e.volume(t, "lost", 1, content)
		p := newProxy(t, e.d.APIAddr)
		a := newAppliance(t, timing)
		a.addSource(t, "cloud", "http://"+p.addr+"/v3/")
		j := lose(t, a, p, v.Name, func() {})
		p.restore()
		left, err := e.leftovers(v.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(j.Messages) == 0 || len(left) == 0 {
			t.Fatalf("the API was gone through clean-up, yet the job notes %q and the leftovers are %q", j.Messages, left)
		}
		t.Logf("left by the failed run: %s", strings.Join(left, "; "))
		if j := a.backup(t, "cloud", v.Name); j.State != meta.JobSucceeded {
			t.Fatalf("the next backup: %s: %s", j.State, j.Error)
		}
		e.noLeftovers(t, v.ID)
	})
}

// TestRestoreSweepsCrashedRestore: a volume left marked as a restore in
// progress by another appliance process (one that crashed) is deleted by
// the next restore; one this process is writing is not.
func TestRestoreSweepsCrashedRestore(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	crashed, err := volumes.Create(ctx, e.sc, volumes.CreateOpts{Size: 1, Name: "cairn-restore-crashed",
		Metadata: map[string]string{metaRole: roleRestore, metaRun: "an-earlier-process"}}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.remove(t, crashed.ID) })
	if _, err := e.a.waitVolume(ctx, crashed.ID, "available"); err != nil {
		t.Fatal(err)
	}
	live, err := NewTarget(e.source(), TargetOptions{Name: "sweep-live"}, "obj").Create(ctx, plugins.DiskSpec{Key: "volume", Capacity: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Abort(ctx)
	w, err := NewTarget(e.source(), TargetOptions{Name: "sweep-next"}, "obj").Create(ctx, plugins.DiskSpec{Key: "volume", Capacity: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := volumes.Get(ctx, e.sc, crashed.ID).Extract(); !notFound(err) {
		t.Errorf("the crashed restore's volume is still there (error %v)", err)
	}
	if _, err := live.WriteAt([]byte("still mine"), 0); err != nil {
		t.Errorf("the restore in progress lost its volume: %v", err)
	}
	if err := live.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	left, err := e.restoreLeftovers()
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("left behind: %s", strings.Join(left, "; "))
	}
}
