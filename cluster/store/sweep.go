package store

import (
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cairnhq/cairn/cluster/chunk"
)

// Sweeper is a store garbage collection can sweep; Local and Memory are.
//
// Sweep visits every chunk and, in one transaction per batch so that a
// concurrent Put or Has either happens before it (and the chunk is kept)
// or after it (and finds the chunk gone, so its writer uploads it again):
//
//   - a chunk live reports is kept (and revived if it was tombstoned);
//   - a chunk tombstoned before purgeBefore, and not referenced since, is
//     deleted: it stayed unreferenced through a whole collection round;
//   - any other chunk last referenced before cutoff is tombstoned.
//
// Deleted space comes back on compaction.
type Sweeper interface {
	Sweep(ctx context.Context, live func(chunk.ID) bool, cutoff, purgeBefore time.Time) (SweepStats, error)
}

// SweepStats counts what a sweep did.
type SweepStats struct {
	Scanned      int64 `json:"scanned"`
	Live         int64 `json:"live"`
	Tombstoned   int64 `json:"tombstoned"`
	Revived      int64 `json:"revived"`
	Deleted      int64 `json:"deleted"`
	DeletedBytes int64 `json:"deleted_bytes"` // sealed bytes
}

// Add sums two sweeps' counts.
func (a SweepStats) Add(b SweepStats) SweepStats {
	return SweepStats{a.Scanned + b.Scanned, a.Live + b.Live, a.Tombstoned + b.Tombstoned,
		a.Revived + b.Revived, a.Deleted + b.Deleted, a.DeletedBytes + b.DeletedBytes}
}

var (
	_ Sweeper = (*Local)(nil)
	_ Sweeper = (*Memory)(nil)
)

// Sweep collects garbage; see Sweeper.
func (s *Local) Sweep(ctx context.Context, live func(chunk.ID) bool, cutoff, purgeBefore time.Time) (SweepStats, error) {
	var st SweepStats
	if !s.gate.enter() {
		return st, ErrClosed
	}
	defer s.gate.leave()
	cut, purge := cutoff.UnixNano(), purgeBefore.UnixNano()
	err := s.pages(ctx, func(page []paged) error {
		now := s.opts.Now().UnixNano()
		var delta map[uint64]segStat
		var batch SweepStats
		err := s.db.Update(func(tx *bolt.Tx) error {
			batch = SweepStats{}
			x := newTxn(tx)
			for _, p := range page {
				// Read again inside the transaction: the page is a snapshot.
				e, ok, err := x.get(p.id)
				if err != nil {
					return err
				}
				if !ok {
					continue
				}
				batch.Scanned++
				switch {
				case live(p.id):
					batch.Live++
					if e.lastRef < 0 {
						batch.Revived++
						e.lastRef = now
						if err := x.touch(p.id, e); err != nil {
							return err
						}
					}
				case e.lastRef < 0 && -e.lastRef < purge:
					batch.Deleted++
					batch.DeletedBytes += int64(e.size)
					if err := x.remove(p.id, e); err != nil {
						return err
					}
				case e.lastRef >= 0 && e.lastRef < cut:
					batch.Tombstoned++
					e.lastRef = -now
					if err := x.touch(p.id, e); err != nil {
						return err
					}
				}
			}
			delta = x.delta
			return x.finish()
		})
		if err != nil {
			return err
		}
		s.applyDelta(delta)
		st = st.Add(batch)
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("sweep: %w", err)
	}
	return st, nil
}

// Sweep collects garbage; see Sweeper.
func (s *Memory) Sweep(ctx context.Context, live func(chunk.ID) bool, cutoff, purgeBefore time.Time) (SweepStats, error) {
	var st SweepStats
	if err := s.begin(ctx); err != nil {
		return st, fmt.Errorf("sweep: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return st, ErrClosed
	}
	now := s.now()
	for id, e := range s.m {
		st.Scanned++
		switch {
		case live(id):
			st.Live++
			if e.tomb {
				st.Revived++
				e.lastRef, e.tomb = now, false
			}
		case e.tomb && e.lastRef.Before(purgeBefore):
			st.Deleted++
			st.DeletedBytes += int64(len(e.sealed))
			delete(s.m, id)
		case !e.tomb && e.lastRef.Before(cutoff):
			st.Tombstoned++
			e.lastRef, e.tomb = now, true
		}
	}
	return st, nil
}
