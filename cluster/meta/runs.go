package meta

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Run is one scheduled backup of one object: the slot a policy's schedule
// made due, and the attempts at it. The scheduler claims a run through
// Raft before it starts a job for it, so a slot is claimed once however
// leaders change; a failed attempt is retried on the same run.
type Run struct {
	Policy   string    `json:"policy"`
	Source   string    `json:"source"`
	Object   string    `json:"object"`
	Slot     time.Time `json:"slot"`
	Job      string    `json:"job,omitempty"` // the latest attempt's job
	Attempts int       `json:"attempts"`
	// State is RunClaimed while an attempt may be running, RunDone once a
	// restore point came of it, RunFailed when it ran out of attempts.
	State string `json:"state"`
	// NextTry is when a failed attempt may be retried.
	NextTry time.Time `json:"next_try,omitzero"`
	Error   string    `json:"error,omitempty"`
}

// Run states.
const (
	RunClaimed = "claimed"
	RunDone    = "done"
	RunFailed  = "failed"
)

func (r Run) key() string {
	return r.Policy + "\x00" + r.Source + "\x00" + r.Object + "\x00" + r.Slot.UTC().Format(time.RFC3339Nano)
}

type putRunBody struct {
	Run   Run  `json:"run"`
	Claim bool `json:"claim"` // refuse if the run exists
}

func checkRun(r Run) error {
	if err := checkName("policy name", r.Policy); err != nil {
		return err
	}
	if err := checkName("source name", r.Source); err != nil {
		return err
	}
	if r.Object == "" || r.Slot.IsZero() {
		return fmt.Errorf("run without object or slot: %w", ErrInvalid)
	}
	switch r.State {
	case RunClaimed, RunDone, RunFailed:
		return nil
	}
	return fmt.Errorf("run state %q: %w", r.State, ErrInvalid)
}

// putRun records a run; with claim, only if no run has that slot yet, and
// always keeping only the latest slots of each object (older runs are
// forgotten once a later slot of the same object is done or failed).
func (s *state) putRun(r Run, claim bool) error {
	if err := checkRun(r); err != nil {
		return err
	}
	k := r.key()
	if _, ok := s.runs[k]; ok && claim {
		return fmt.Errorf("run of %s/%s at %s: %w", r.Source, r.Object, r.Slot.UTC().Format(time.RFC3339), ErrExists)
	}
	if !claim {
		if _, ok := s.runs[k]; !ok {
			return fmt.Errorf("run of %s/%s at %s: %w", r.Source, r.Object, r.Slot.UTC().Format(time.RFC3339), ErrNotFound)
		}
	}
	s.runs[k] = r
	// Forget finished runs older than the newest finished one of the same
	// policy and object: the scheduler needs only the latest slot.
	for ok, o := range s.runs {
		if ok != k && o.Policy == r.Policy && o.Source == r.Source && o.Object == r.Object &&
			o.State != RunClaimed && r.State != RunClaimed && o.Slot.Before(r.Slot) {
			delete(s.runs, ok)
		}
	}
	return nil
}

// ClaimRun records a new run; ErrExists if its slot was claimed before,
// by this leader or an earlier one.
func (c *catalog) ClaimRun(ctx context.Context, r Run) error {
	if _, err := c.apply(ctx, PutRunCommand, putRunBody{Run: r, Claim: true}); err != nil {
		return fmt.Errorf("claim run: %w", err)
	}
	return nil
}

// UpdateRun replaces a claimed run's record.
func (c *catalog) UpdateRun(ctx context.Context, r Run) error {
	if _, err := c.apply(ctx, PutRunCommand, putRunBody{Run: r}); err != nil {
		return fmt.Errorf("update run: %w", err)
	}
	return nil
}

// Runs lists the recorded runs, oldest slot first.
func (c *catalog) Runs(ctx context.Context) ([]Run, error) {
	var out []Run
	err := c.read(ctx, func(st *state) {
		for _, k := range slices.Sorted(maps.Keys(st.runs)) {
			out = append(out, st.runs[k])
		}
	})
	slices.SortStableFunc(out, func(a, b Run) int { return a.Slot.Compare(b.Slot) })
	return out, err
}
