package meta

import (
	"context"
	"fmt"
	"time"
)

// GC round states.
const (
	GCRunning = "running"
	GCDone    = "done"
	GCFailed  = "failed"
)

// GCStaleAfter is how long a running round may go without ending before
// another may begin: its node died mid-way.
const GCStaleAfter = 6 * time.Hour

// GCRound is one garbage-collection round, kept in the replicated state so
// that one round runs at a time in the whole cluster and each knows the
// previous one: a chunk tombstoned before a round began is deleted by it.
type GCRound struct {
	Epoch    uint64    `json:"epoch"`
	State    string    `json:"state"`
	Job      string    `json:"job,omitempty"`
	Started  time.Time `json:"started"`
	Cutoff   time.Time `json:"cutoff"`
	Finished time.Time `json:"finished,omitzero"`
	// BytesReclaimed is what the round's compactions gave back.
	BytesReclaimed int64  `json:"bytes_reclaimed"`
	Error          string `json:"error,omitempty"`
}

type beginGCBody struct {
	Round GCRound `json:"round"`
}

type endGCBody struct {
	Round GCRound `json:"round"`
}

// beginGC starts round r as the next epoch, unless one is running and
// not stale.
func (s *state) beginGC(r GCRound) (GCRound, error) {
	if r.Started.IsZero() || r.Cutoff.After(r.Started) {
		return GCRound{}, fmt.Errorf("gc round needs a start and a cutoff not after it: %w", ErrInvalid)
	}
	if cur := s.gc; cur.State == GCRunning && r.Started.Sub(cur.Started) < GCStaleAfter {
		return GCRound{}, fmt.Errorf("gc round %d (job %s) is running since %s: %w", cur.Epoch, cur.Job, cur.Started.Format(time.RFC3339), ErrConflict)
	}
	r.Epoch = s.gc.Epoch + 1
	r.State = GCRunning
	r.Finished, r.BytesReclaimed, r.Error = time.Time{}, 0, ""
	s.gc = r
	return r, nil
}

// endGC records how round r.Epoch ended.
func (s *state) endGC(r GCRound) error {
	if s.gc.Epoch != r.Epoch || s.gc.State != GCRunning {
		return fmt.Errorf("gc round %d is not the running one: %w", r.Epoch, ErrConflict)
	}
	if r.State != GCDone && r.State != GCFailed {
		return fmt.Errorf("gc round ends %q: want %s or %s: %w", r.State, GCDone, GCFailed, ErrInvalid)
	}
	cur := s.gc
	cur.State, cur.Finished, cur.BytesReclaimed, cur.Error = r.State, r.Finished, r.BytesReclaimed, r.Error
	s.gc = cur
	return nil
}

// BeginGC starts the next garbage-collection round and returns it with its
// epoch; ErrConflict while another round runs.
func (c *catalog) BeginGC(ctx context.Context, r GCRound) (GCRound, error) {
	res, err := c.apply(ctx, BeginGCCommand, beginGCBody{Round: r})
	if err != nil {
		return GCRound{}, fmt.Errorf("begin gc round: %w", err)
	}
	return res.GC, nil
}

// EndGC records the end of the running round (Epoch, State, Finished,
// BytesReclaimed and Error of r).
func (c *catalog) EndGC(ctx context.Context, r GCRound) error {
	if _, err := c.apply(ctx, EndGCCommand, endGCBody{Round: r}); err != nil {
		return fmt.Errorf("end gc round %d: %w", r.Epoch, err)
	}
	return nil
}

// LastGC returns the latest garbage-collection round; a zero round if none
// ran yet.
func (c *catalog) LastGC(ctx context.Context) (GCRound, error) {
	var r GCRound
	if err := c.read(ctx, func(st *state) { r = st.gc }); err != nil {
		return GCRound{}, err
	}
	return r, nil
}
