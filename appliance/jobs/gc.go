package jobs

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cairnhq/cairn/appliance/api"
	"github.com/cairnhq/cairn/appliance/index"
	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/meta"
	"github.com/cairnhq/cairn/cluster/store"
)

// DefaultGCGrace is how long a chunk must have gone unreferenced before
// garbage collection tombstones it, unless a run says otherwise. Running
// backups hold back the cutoff on their own (see StartGC); the grace
// covers clock differences between nodes and writers the catalog cannot
// see.
const DefaultGCGrace = time.Hour

// Collector sweeps every node's chunk store against a live set and
// returns the summed counts and the bytes compaction gave back; the
// cluster member is one (through an adapter in cairnd).
type Collector interface {
	Sweep(ctx context.Context, live *store.LiveSet, cutoff, purgeBefore time.Time) (store.SweepStats, int64, error)
}

// StartGC starts a garbage-collection round:
//
//  1. it begins the cluster's next GC epoch in Raft (one round at a time)
//     with a cutoff of now - grace, held back further to the start of the
//     oldest running backup: everything a running backup stored or found
//     present was referenced after its start, so it is never swept;
//  2. it marks every chunk every restore point references (index nodes
//     and data), failing the round on any chunk it cannot read — a sweep
//     with an incomplete mark would delete live data;
//  3. every node tombstones its chunks unreferenced since the cutoff and
//     deletes those tombstoned by an earlier round and not referenced
//     since, then compacts (no node sweeps while the cluster is degraded).
//
// So space comes back in the second round after its restore points go.
func (m *Manager) StartGC(ctx context.Context, req api.GCRequest) (meta.Job, error) {
	if m.collector == nil {
		return meta.Job{}, invalid("this appliance has no garbage collector")
	}
	grace := DefaultGCGrace
	if req.Grace != "" {
		g, err := time.ParseDuration(req.Grace)
		if err != nil || g < 0 {
			return meta.Job{}, invalid("grace %q: want a duration such as 1h or 0s", req.Grace)
		}
		grace = g
	}
	res := &meta.GCResult{}
	return m.start(meta.Job{Kind: meta.JobGC}, func() (int64, int64) { return 0, 0 },
		func(ctx context.Context, l *live) error {
			defer func() {
				l.mu.Lock()
				l.job.GC = res
				l.mu.Unlock()
			}()
			return m.runGC(ctx, l.job.ID, grace, res)
		})
}

func (m *Manager) runGC(ctx context.Context, job string, grace time.Duration, res *meta.GCResult) (err error) {
	now := m.now()
	cutoff := now.Add(-grace)
	running, err := m.catalog.Jobs(ctx, meta.JobFilter{Kind: meta.JobBackup, State: meta.JobRunning})
	if err != nil {
		return err
	}
	for _, j := range running {
		if j.Started.Before(cutoff) {
			cutoff = j.Started
		}
	}
	round, err := m.catalog.BeginGC(ctx, meta.GCRound{Job: job, Started: now, Cutoff: cutoff})
	if err != nil {
		return err
	}
	res.Epoch = round.Epoch
	defer func() {
		end := meta.GCRound{Epoch: round.Epoch, State: meta.GCDone, Finished: m.now(), BytesReclaimed: res.BytesReclaimed}
		if err != nil {
			end.State, end.Error = meta.GCFailed, err.Error()
		}
		if eerr := m.catalog.EndGC(context.WithoutCancel(ctx), end); eerr != nil {
			err = errors.Join(err, eerr)
		}
	}()

	live, err := m.mark(ctx, res)
	if err != nil {
		return fmt.Errorf("mark: %w", err)
	}
	st, reclaimed, err := m.collector.Sweep(ctx, live, cutoff, round.Started)
	res.Scanned, res.Tombstoned, res.Revived = st.Scanned, st.Tombstoned, st.Revived
	res.Deleted, res.DeletedBytes, res.BytesReclaimed = st.Deleted, st.DeletedBytes, reclaimed
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	m.log.Info("garbage collection round done", "epoch", round.Epoch, "live_chunks", res.LiveChunks,
		"tombstoned", res.Tombstoned, "deleted", res.Deleted, "bytes_reclaimed", res.BytesReclaimed)
	return nil
}

// mark returns the set of every chunk a restore point references.
func (m *Manager) mark(ctx context.Context, res *meta.GCResult) (*store.LiveSet, error) {
	points, err := m.catalog.RestorePoints(ctx, meta.Filter{})
	if err != nil {
		return nil, err
	}
	res.RestorePoints = len(points)
	seen := map[chunk.ID]struct{}{}
	visited := func(id chunk.ID) bool { _, ok := seen[id]; return ok }
	add := func(id chunk.ID) { seen[id] = struct{}{} }
	for _, rp := range points {
		key, err := m.keys.Tenant(ctx, rp.Tenant)
		if err != nil {
			return nil, fmt.Errorf("restore point %s: tenant key: %w", rp.ID, err)
		}
		load := func(ctx context.Context, id chunk.ID) ([]byte, error) {
			sealed, err := m.store.Get(ctx, id)
			if err != nil {
				return nil, err
			}
			return key.Unseal(nil, id, sealed)
		}
		for _, d := range rp.Disks {
			if err := index.Refs(ctx, load, d.Root, visited, add); err != nil {
				return nil, fmt.Errorf("restore point %s disk %s: %w", rp.ID, d.Key, err)
			}
		}
	}
	var seed [8]byte
	rand.Read(seed[:])
	live := store.NewLiveSet(len(seen), binary.LittleEndian.Uint64(seed[:]))
	for id := range seen {
		live.Add(id)
	}
	res.LiveChunks = int64(len(seen))
	return live, nil
}

// DeleteRestorePoint forgets a restore point; its chunks go in later
// garbage-collection rounds once nothing else references them.
func (m *Manager) DeleteRestorePoint(ctx context.Context, id string) error {
	if err := m.catalog.DeleteRestorePoint(ctx, id, m.now()); err != nil {
		return err
	}
	m.log.Info("restore point deleted", "restore_point", id)
	return nil
}
