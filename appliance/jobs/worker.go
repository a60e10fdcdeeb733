package jobs

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/cairnhq/cairn/appliance/api"
	"github.com/cairnhq/cairn/cluster/meta"
)

// WorkerOptions tune a node's worker; zero fields take the defaults.
type WorkerOptions struct {
	Tick      time.Duration // how often the worker looks for queued jobs; default 2 s
	PerSource int           // backups of one source running at once, cluster-wide; default 2
	PerNode   int           // backups running at once on this node; default 4
}

func (o WorkerOptions) withDefaults() WorkerOptions {
	if o.Tick <= 0 {
		o.Tick = 2 * time.Second
	}
	if o.PerSource <= 0 {
		o.PerSource = 2
	}
	if o.PerNode <= 0 {
		o.PerNode = 4
	}
	return o
}

// RunWorker takes queued jobs (the scheduler's backups) for this node
// until ctx ends. Every node runs one: whichever node takes a job first runs
// it under a lease (see Manager.launch), within the concurrency bounds,
// which the catalog checks as it hands the job out. A pass takes one job;
// after taking one, the worker looks again within a short random pause
// rather than a whole Tick, so a queue drains quickly and the jobs of one
// slot spread over the nodes instead of all going to the first to look.
func (m *Manager) RunWorker(ctx context.Context, opts WorkerOptions) {
	opts = opts.withDefaults()
	pause := opts.Tick
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = opts.Tick
		started, err := m.Work(ctx, opts)
		if err != nil && ctx.Err() == nil {
			m.log.Warn("worker pass", "err", err)
		}
		if len(started) > 0 {
			pause = min(opts.Tick, 100*time.Millisecond+rand.N(200*time.Millisecond))
		}
	}
}

// Work takes and starts the oldest queued job this node may run now, if
// any, and returns it.
func (m *Manager) Work(ctx context.Context, opts WorkerOptions) ([]meta.Job, error) {
	opts = opts.withDefaults()
	queued, err := m.catalog.Jobs(ctx, meta.JobFilter{State: meta.JobQueued})
	if err != nil {
		return nil, err
	}
	slices.Reverse(queued) // oldest first
	var errs []error
	for _, q := range queued {
		now := m.now()
		j, err := m.catalog.TakeJob(ctx, q.ID, m.node, now, now.Add(m.lease), opts.PerSource, opts.PerNode)
		switch {
		case errors.Is(err, meta.ErrConflict) || errors.Is(err, meta.ErrNotFound):
			continue // busy, or another node took it first
		case err != nil:
			errs = append(errs, err)
			continue
		}
		if j, err = m.runTaken(ctx, j); err != nil {
			errs = append(errs, err)
			continue
		}
		return []meta.Job{j}, errors.Join(errs...)
	}
	return nil, errors.Join(errs...)
}

// runTaken starts a job this node took; one that cannot start is recorded
// as failed.
func (m *Manager) runTaken(ctx context.Context, j meta.Job) (meta.Job, error) {
	var err error
	if j.Kind == meta.JobBackup {
		var started meta.Job
		if started, err = m.startBackup(ctx, api.BackupRequest{Source: j.Source, Object: j.Object}, &j); err == nil {
			return started, nil
		}
	} else {
		err = fmt.Errorf("a queued %s job cannot be run by a worker", j.Kind)
	}
	j.State, j.Error, j.Finished, j.Lease = meta.JobFailed, err.Error(), m.now(), time.Time{}
	if perr := m.catalog.PutJob(context.WithoutCancel(ctx), j); perr != nil {
		err = errors.Join(err, perr)
	}
	return j, fmt.Errorf("start queued job %s: %w", j.ID, err)
}

// enqueue records a queued backup of a scheduled run, for a worker to take.
func (m *Manager) enqueue(ctx context.Context, r meta.Run) (meta.Job, error) {
	if _, _, err := m.source(ctx, r.Source); err != nil {
		return meta.Job{}, err
	}
	j := meta.Job{ID: meta.NewID("job", m.now(), m.rand), Kind: meta.JobBackup, State: meta.JobQueued,
		Source: r.Source, Object: r.Object, Policy: r.Policy, Slot: r.Slot, Created: m.now()}
	if err := m.catalog.PutJob(ctx, j); err != nil {
		return meta.Job{}, fmt.Errorf("queue the backup of %s/%s: %w", r.Source, r.Object, err)
	}
	return j, nil
}
