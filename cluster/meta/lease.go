package meta

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Leases: a queued job is taken by one node (TakeJob), which must renew
// its lease while the job runs (RenewLease); the leader interrupts jobs
// whose lease ran out (ExpireLeases), and a job is canceled from any node
// (CancelJob) by a flag its node sees at the next renewal. A restore point
// whose job is no longer running is refused at commit, so a node that lost
// its lease cannot add a second restore point for a run already retried.

type takeJobBody struct {
	ID   string    `json:"id"`
	Node string    `json:"node"`
	Now  time.Time `json:"now"`
	// Until is the lease's end.
	Until time.Time `json:"until"`
	// PerSource and PerNode bound the backups running at once of the job's
	// source (cluster-wide) and on the node; zero is no bound.
	PerSource int `json:"per_source,omitempty"`
	PerNode   int `json:"per_node,omitempty"`
}

type renewLeaseBody struct {
	ID    string    `json:"id"`
	Node  string    `json:"node"`
	Until time.Time `json:"until"`
}

type cancelJobBody struct {
	ID  string    `json:"id"`
	Now time.Time `json:"now"`
}

type expireLeasesBody struct {
	Now time.Time `json:"now"`
}

func jobResult(j Job, err error) Result {
	if err != nil {
		return Result{Err: err}
	}
	return Result{Jobs: []Job{j}}
}

// ErrBusy is wrapped by TakeJob's refusal when a concurrency bound is
// reached; the job stays queued.
var ErrBusy = fmt.Errorf("busy: %w", ErrConflict)

func (s *state) takeJob(c takeJobBody) (Job, error) {
	j, ok := s.jobs[c.ID]
	switch {
	case !ok:
		return Job{}, fmt.Errorf("job %s: %w", c.ID, ErrNotFound)
	case j.State != JobQueued:
		return Job{}, fmt.Errorf("job %s is %s, not queued: %w", c.ID, j.State, ErrConflict)
	case !ValidName(c.Node) || c.Now.IsZero() || !c.Until.After(c.Now):
		return Job{}, fmt.Errorf("take job %s: want a node and a lease ending after now: %w", c.ID, ErrInvalid)
	}
	if j.Kind == JobBackup {
		source, node := 0, 0
		for id := range s.active {
			o := s.jobs[id]
			if o.State != JobRunning || o.Kind != JobBackup {
				continue
			}
			if o.Source == j.Source {
				source++
				if o.Object == j.Object {
					return Job{}, fmt.Errorf("take job %s: job %s is backing up %s/%s already: %w", c.ID, o.ID, o.Source, o.Object, ErrBusy)
				}
			}
			if o.Node == c.Node {
				node++
			}
		}
		if c.PerSource > 0 && source >= c.PerSource {
			return Job{}, fmt.Errorf("take job %s: %d backups of source %s run already: %w", c.ID, source, j.Source, ErrBusy)
		}
		if c.PerNode > 0 && node >= c.PerNode {
			return Job{}, fmt.Errorf("take job %s: %d backups run on node %s already: %w", c.ID, node, c.Node, ErrBusy)
		}
	}
	j.State, j.Node, j.Started, j.Lease = JobRunning, c.Node, c.Now, c.Until
	s.jobs[j.ID] = j
	return cloneJob(j), nil
}

func (s *state) renewLease(c renewLeaseBody) (Job, error) {
	j, ok := s.jobs[c.ID]
	switch {
	case !ok:
		return Job{}, fmt.Errorf("job %s: %w", c.ID, ErrNotFound)
	case j.State != JobRunning || j.Node != c.Node:
		return Job{}, fmt.Errorf("renew the lease of job %s: it is %s on node %q, not running on %s: %w",
			c.ID, j.State, j.Node, c.Node, ErrConflict)
	}
	if c.Until.After(j.Lease) {
		j.Lease = c.Until
	}
	s.jobs[j.ID] = j
	return cloneJob(j), nil
}

func (s *state) cancelJob(c cancelJobBody) (Job, error) {
	j, ok := s.jobs[c.ID]
	switch {
	case !ok:
		return Job{}, fmt.Errorf("job %s: %w", c.ID, ErrNotFound)
	case j.State == JobQueued:
		j.State, j.Error, j.Finished = JobCanceled, "canceled before it started", c.Now
		delete(s.active, j.ID)
	case j.State == JobRunning:
		j.CancelRequested = true
	default:
		return cloneJob(j), fmt.Errorf("cancel job %s: it has already %s: %w", c.ID, j.State, ErrConflict)
	}
	s.jobs[j.ID] = j
	return cloneJob(j), nil
}

// expireLeases interrupts the running jobs whose lease ended before now.
func (s *state) expireLeases(now time.Time) []Job {
	var out []Job
	for _, id := range slices.Sorted(maps.Keys(s.active)) {
		j := s.jobs[id]
		if j.State != JobRunning || j.Lease.IsZero() || !j.Lease.Before(now) {
			continue
		}
		j.State, j.Finished = JobInterrupted, now
		j.Error = fmt.Sprintf("interrupted: node %s stopped renewing the job's lease (it ended %s)", j.Node, j.Lease.UTC().Format(time.RFC3339))
		s.jobs[id] = j
		delete(s.active, id)
		out = append(out, cloneJob(j))
	}
	slices.SortFunc(out, compareJobs)
	return out
}

// finishJob records the final state of a job that runs on j.Node; a job
// that was interrupted, canceled or taken over meanwhile keeps its record.
func (s *state) finishJob(j Job) error {
	if err := checkJob(j); err != nil {
		return err
	}
	old, ok := s.jobs[j.ID]
	switch {
	case !ok:
		return fmt.Errorf("job %s: %w", j.ID, ErrNotFound)
	case old.State != JobRunning || old.Node != j.Node:
		return fmt.Errorf("finish job %s: it is %s on node %q, not running on %q: %w", j.ID, old.State, old.Node, j.Node, ErrConflict)
	case !j.Done():
		return fmt.Errorf("finish job %s: state %s is not final: %w", j.ID, j.State, ErrInvalid)
	}
	return s.putJob(j)
}

// FinishJob records a job's final state if it still runs on j.Node;
// ErrConflict if the cluster ended it otherwise meanwhile (interrupted,
// its lease expired).
func (c *catalog) FinishJob(ctx context.Context, j Job) error {
	if _, err := c.apply(ctx, FinishJobCommand, putJobBody{Job: j}); err != nil {
		return fmt.Errorf("finish job %s: %w", j.ID, err)
	}
	return nil
}

// TakeJob starts a queued job on node with a lease until until; ErrBusy
// (an ErrConflict) when perSource backups of its source or perNode on the
// node run already, ErrConflict when it is no longer queued.
func (c *catalog) TakeJob(ctx context.Context, id, node string, now, until time.Time, perSource, perNode int) (Job, error) {
	res, err := c.apply(ctx, TakeJobCommand, takeJobBody{ID: id, Node: node, Now: now, Until: until, PerSource: perSource, PerNode: perNode})
	if err != nil {
		return Job{}, err
	}
	return res.Jobs[0], nil
}

// RenewLease extends the lease of a job running on node and returns the
// job (see CancelRequested); ErrConflict once it no longer runs there.
func (c *catalog) RenewLease(ctx context.Context, id, node string, until time.Time) (Job, error) {
	res, err := c.apply(ctx, RenewLeaseCommand, renewLeaseBody{ID: id, Node: node, Until: until})
	if err != nil {
		return Job{}, err
	}
	return res.Jobs[0], nil
}

// CancelJob cancels a queued job at once and asks the node of a running one
// to stop it; ErrConflict for a job that has ended.
func (c *catalog) CancelJob(ctx context.Context, id string, now time.Time) (Job, error) {
	res, err := c.apply(ctx, CancelJobCommand, cancelJobBody{ID: id, Now: now})
	if err != nil {
		return Job{}, err
	}
	return res.Jobs[0], nil
}

// ExpireLeases interrupts the running jobs whose lease ended before now and
// returns them.
func (c *catalog) ExpireLeases(ctx context.Context, now time.Time) ([]Job, error) {
	res, err := c.apply(ctx, ExpireLeasesCommand, expireLeasesBody{Now: now})
	if err != nil {
		return nil, fmt.Errorf("expire job leases: %w", err)
	}
	return res.Jobs, nil
}
