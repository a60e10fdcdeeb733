package jobs_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairnhq/cairn/appliance/api"
	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/meta"
	"github.com/cairnhq/cairn/cluster/store"
)

// memCollector sweeps one memory store, as the cluster sweeps every node.
type memCollector struct{ st *store.Memory }

func (c memCollector) Sweep(ctx context.Context, live *store.LiveSet, cutoff, purgeBefore time.Time) (store.SweepStats, int64, error) {
	st, err := c.st.Sweep(ctx, live.Has, cutoff, purgeBefore)
	return st, st.DeletedBytes, err
}

func chunksIn(t *testing.T, st *store.Memory) int {
	n := 0
	if err := st.Walk(context.Background(), func(chunk.ID, store.Info) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestGCWithConcurrentBackups: rounds of garbage collection with no grace
// run while backups that dedupe against old chunks are in flight, and old
// restore points are deleted between rounds. No chunk a committed restore
// point needs is ever lost: every restore point verifies and the last one
// restores byte for byte. With nothing in flight, space comes back within
// two rounds.
func TestGCWithConcurrentBackups(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	const blocks = 12
	img := filepath.Join(f.dir, "vm.img")
	data := make([]byte, blocks*chunk.BlockSize)
	rand.Read(data)
	if err := os.WriteFile(img, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.AddSource(ctx, api.AddSourceRequest{Name: "vm", Kind: "file", Config: map[string]string{"path": img}}); err != nil {
		t.Fatal(err)
	}
	var points []string
	for round := range 8 {
		// Change two blocks; the other ten dedupe against chunks the
		// previous points stored, some of them old enough to sweep.
		for _, b := range []int{round % blocks, (round*5 + 3) % blocks} {
			rand.Read(data[b*chunk.BlockSize : b*chunk.BlockSize+4096])
		}
		if round%3 == 2 {
			// Bring back an old block's content: a chunk that may be
			// tombstoned, or already deleted, must come back whole.
			copy(data[7*chunk.BlockSize:8*chunk.BlockSize], data[0:chunk.BlockSize])
		}
		if err := os.WriteFile(img, data, 0o600); err != nil {
			t.Fatal(err)
		}
		want := bytes.Clone(data)

		bj, err := f.m.StartBackup(ctx, api.BackupRequest{Source: "vm"})
		if err != nil {
			t.Fatal(err)
		}
		gj, err := f.m.StartGC(ctx, api.GCRequest{Grace: "0s"})
		if err != nil {
			t.Fatal(err)
		}
		bj, gj = wait(t, f.m, bj.ID), wait(t, f.m, gj.ID)
		if bj.State != meta.JobSucceeded {
			t.Fatalf("round %d: backup %s: %s", round, bj.State, bj.Error)
		}
		if gj.State != meta.JobSucceeded || gj.GC == nil {
			t.Fatalf("round %d: gc %s: %s", round, gj.State, gj.Error)
		}
		points = append(points, bj.RestorePoint)
		// Keep the last two restore points.
		if len(points) > 2 {
			if err := f.m.DeleteRestorePoint(ctx, points[0]); err != nil {
				t.Fatal(err)
			}
			points = points[1:]
		}
		out := filepath.Join(f.dir, fmt.Sprintf("restored-%d.img", round))
		rj, err := f.m.StartRestore(ctx, api.RestoreRequest{RestorePoint: bj.RestorePoint, To: "file:" + out})
		if err != nil {
			t.Fatal(err)
		}
		if rj = wait(t, f.m, rj.ID); rj.State != meta.JobSucceeded {
			t.Fatalf("round %d: restore: %s", round, rj.Error)
		}
		if got, _ := os.ReadFile(out); !bytes.Equal(got, want) {
			t.Fatalf("round %d: the restore differs from the image", round)
		}
		os.Remove(out)
	}
	for _, id := range points {
		vj, _ := f.m.StartVerify(ctx, id)
		if vj = wait(t, f.m, vj.ID); vj.State != meta.JobSucceeded || !vj.Verify.OK {
			t.Fatalf("restore point %s after GC: %s %+v", id, vj.Error, vj.Verify)
		}
	}

	// Nothing in flight: two rounds bring the store down to what the two
	// remaining restore points reference.
	before := chunksIn(t, f.store.Memory)
	var last meta.Job
	for range 2 {
		j, err := f.m.StartGC(ctx, api.GCRequest{Grace: "0s"})
		if err != nil {
			t.Fatal(err)
		}
		last = wait(t, f.m, j.ID)
	}
	after := chunksIn(t, f.store.Memory)
	if after >= before || int64(after) != last.GC.LiveChunks || last.GC.BytesReclaimed <= 0 && last.GC.Deleted > 0 {
		t.Fatalf("chunks %d → %d, live %d, last round %+v", before, after, last.GC.LiveChunks, last.GC)
	}
	if err := f.m.DeleteRestorePoint(ctx, "rp-nothing"); !errors.Is(err, meta.ErrNotFound) {
		t.Fatalf("delete a missing restore point: %v", err)
	}
}

// TestGCOneRoundAtATime: a second round while one runs is a conflict.
func TestGCOneRoundAtATime(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	now := time.Now()
	r, err := f.catalog.BeginGC(ctx, meta.GCRound{Started: now, Cutoff: now})
	if err != nil {
		t.Fatal(err)
	}
	j, err := f.m.StartGC(ctx, api.GCRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if j = wait(t, f.m, j.ID); j.State != meta.JobFailed || !bytes.Contains([]byte(j.Error), []byte("running")) {
		t.Fatalf("gc while round %d runs: %s %q", r.Epoch, j.State, j.Error)
	}
	if _, err := f.m.StartGC(ctx, api.GCRequest{Grace: "soon"}); !errors.Is(err, api.ErrInvalid) {
		t.Fatalf("bad grace: %v", err)
	}
}

// TestGCHoldsBackForBackupsInFlight: a backup that found old, unreferenced
// chunks present (so it will not upload them) stays in flight across two
// collection rounds; the rounds must not sweep those chunks, or the
// restore point it commits would lack them.
func TestGCHoldsBackForBackupsInFlight(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	img := filepath.Join(f.dir, "vm.img")
	data := make([]byte, 6*chunk.BlockSize)
	rand.Read(data)
	if err := os.WriteFile(img, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.AddSource(ctx, api.AddSourceRequest{Name: "vm", Kind: "file", Config: map[string]string{"path": img}}); err != nil {
		t.Fatal(err)
	}
	first, _ := f.m.StartBackup(ctx, api.BackupRequest{Source: "vm"})
	first = wait(t, f.m, first.ID)
	if err := f.m.DeleteRestorePoint(ctx, first.RestorePoint); err != nil {
		t.Fatal(err)
	}
	// One new block: the other five are found present, then the new one's
	// upload waits at the gate.
	rand.Read(data[:4096])
	if err := os.WriteFile(img, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f.store.open = make(chan struct{})
	held, err := f.m.StartBackup(ctx, api.BackupRequest{Source: "vm"})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // let it reach the gate
	for range 2 {
		j, _ := f.m.StartGC(ctx, api.GCRequest{Grace: "0s"})
		if j = wait(t, f.m, j.ID); j.State != meta.JobSucceeded {
			t.Fatalf("gc: %s", j.Error)
		}
	}
	close(f.store.open)
	if held = wait(t, f.m, held.ID); held.State != meta.JobSucceeded {
		t.Fatalf("held backup: %s", held.Error)
	}
	v, _ := f.m.StartVerify(ctx, held.RestorePoint)
	if v = wait(t, f.m, v.ID); !v.Verify.OK {
		t.Fatalf("the held backup's restore point lost chunks to GC: %+v", v.Verify)
	}
}
