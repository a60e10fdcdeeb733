package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cairnhq/cairn/appliance/api"
	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/meta"
)

func point(id, source, object string, at time.Time) meta.RestorePoint {
	return meta.RestorePoint{
		ID: id, Source: source, Object: object, Tenant: "default", Time: at, Consistency: "none",
		Disks: []meta.Disk{{Key: "disk0", Capacity: 8 << 20, BlockSize: 4 << 20, Root: chunk.ID{1},
			Levels: 1, Fingerprint: "f0", Method: "full"}},
		LogicalBytes: 8 << 20, Fingerprint: "fp-" + id, Verify: meta.VerifyState{State: meta.VerifyNone},
	}
}

// TestPolicyPrune: a policy's keep rules decide what prune removes; a dry
// run removes nothing; a locked point survives prune and a direct delete;
// objects without a policy keep everything.
func TestPolicyPrune(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	img := f.image(t, "a.img", 100)
	for _, name := range []string{"a", "b"} {
		if _, err := f.m.AddSource(ctx, api.AddSourceRequest{Name: name, Kind: "file", Config: map[string]string{"path": img}}); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC()
	// Ten daily points of a/vm, one a day, the newest an hour ago; the same
	// for b/vm, which has no policy.
	for i := range 10 {
		for _, src := range []string{"a", "b"} {
			rp := point(fmt.Sprintf("rp-%s-%02d", src, i), src, "vm", now.Add(-time.Hour-time.Duration(9-i)*24*time.Hour))
			if src == "a" && i == 2 {
				rp.LockedUntil = now.Add(24 * time.Hour) // locked: must survive
			}
			if err := f.catalog.CommitRestorePoint(ctx, rp); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := f.m.CreatePolicy(ctx, api.PolicyRequest{Name: "gold", Schedule: "daily 25:00", KeepLast: 2, KeepDaily: 4}); !errors.Is(err, api.ErrInvalid) {
		t.Fatalf("a bad schedule: %v", err)
	}
	p, err := f.m.CreatePolicy(ctx, api.PolicyRequest{Name: "gold", Schedule: "daily 02:00 Europe/Berlin", KeepLast: 2, KeepDaily: 4, Lock: "3d"})
	if err != nil || p.Retention.LockSeconds != 3*86400 {
		t.Fatalf("create policy: %+v %v", p, err)
	}
	if _, err := f.m.CreatePolicy(ctx, api.PolicyRequest{Name: "gold"}); !errors.Is(err, meta.ErrExists) {
		t.Fatalf("a policy name twice: %v", err)
	}
	if _, err := f.m.AssignPolicy(ctx, "gold", "a"); err != nil {
		t.Fatal(err)
	}

	dry, err := f.m.Prune(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(dry.Objects) != 1 || dry.Removed != 5 || dry.Kept != 5 {
		t.Fatalf("dry run: %+v", dry)
	}
	if left, _ := f.m.RestorePoints(ctx, meta.Filter{Source: "a"}); len(left) != 10 {
		t.Fatalf("a dry run removed points: %d left", len(left))
	}
	res, err := f.m.Prune(ctx, false)
	if err != nil || res.Removed != 5 {
		t.Fatalf("prune: %+v %v", res, err)
	}
	left, _ := f.m.RestorePoints(ctx, meta.Filter{Source: "a"})
	want := map[string]bool{"rp-a-09": true, "rp-a-08": true, "rp-a-07": true, "rp-a-06": true, "rp-a-02": true}
	if len(left) != len(want) {
		t.Fatalf("kept %d points, want %d", len(left), len(want))
	}
	for _, rp := range left {
		if !want[rp.ID] {
			t.Fatalf("kept %s", rp.ID)
		}
	}
	if others, _ := f.m.RestorePoints(ctx, meta.Filter{Source: "b"}); len(others) != 10 {
		t.Fatalf("prune touched an object without a policy: %d left", len(others))
	}
	if err := f.m.DeleteRestorePoint(ctx, "rp-a-02"); !errors.Is(err, meta.ErrConflict) {
		t.Fatalf("delete a locked point: %v, want ErrConflict", err)
	}

	// A new backup under the policy is locked for three days.
	j, err := f.m.StartBackup(ctx, api.BackupRequest{Source: "a"})
	if err != nil {
		t.Fatal(err)
	}
	j = wait(t, f.m, j.ID)
	rp, _ := f.m.RestorePoint(ctx, j.RestorePoint)
	if d := rp.LockedUntil.Sub(rp.Time); d != 3*24*time.Hour {
		t.Fatalf("new restore point locked for %v, want 3 days", d)
	}
	if err := f.m.DeleteRestorePoint(ctx, rp.ID); !errors.Is(err, meta.ErrConflict) {
		t.Fatalf("delete a freshly locked point: %v", err)
	}
}
