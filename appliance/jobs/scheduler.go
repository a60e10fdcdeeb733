package jobs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cairnhq/cairn/appliance/api"
	"github.com/cairnhq/cairn/appliance/policy"
	"github.com/cairnhq/cairn/cluster/meta"
)

// SchedulerOptions tune the scheduler; zero fields take the defaults.
type SchedulerOptions struct {
	Tick        time.Duration // how often the leader looks; default 5 s
	MaxAttempts int           // attempts per scheduled run; default 3
	RetryAfter  time.Duration // wait before the first retry of a failed attempt, doubling after; default 5 min, negative for none
	ObjectsTTL  time.Duration // how long a source's object list is reused; default 5 min
	// Verify and GC are the schedules of the cluster's own upkeep: verify
	// --all (which also scrubs every node) and a garbage-collection round
	// with the default grace. Empty runs neither.
	Verify, GC string
}

// Upkeep runs are recorded under this policy name and source, with the
// job kind as the object.
const (
	upkeepPolicy = "cluster-upkeep"
	upkeepSource = "cluster"
)

func (o SchedulerOptions) withDefaults() SchedulerOptions {
	if o.Tick <= 0 {
		o.Tick = 5 * time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 3
	}
	if o.RetryAfter < 0 {
		o.RetryAfter = 0
	} else if o.RetryAfter == 0 {
		o.RetryAfter = 5 * time.Minute
	}
	if o.ObjectsTTL <= 0 {
		o.ObjectsTTL = 5 * time.Minute
	}
	return o
}

// Scheduler turns policies' schedules into backups. Only the Raft leader
// runs passes; every decision goes through the replicated state, so a new
// leader carries on where the old one stopped:
//
//   - A due slot is claimed (meta.Run) before its job is queued; a slot is
//     claimed once, whoever leads. Due gives only the latest missed slot,
//     so a window missed while the cluster was down runs once.
//   - Each attempt is a queued backup job that a node's worker takes under
//     a lease (RunWorker), within the concurrency bounds per source and per
//     node; the leader interrupts jobs whose lease ran out.
//   - A claimed run is done once a restore point names its job; a job that
//     is no longer running cannot commit one, so a retried run never gets
//     two. An attempt whose job was interrupted (its node died, was declared
//     down or lost its lease) or never recorded (the leader died in
//     between) is retried at once; one that failed, after a wait that
//     doubles each time; up to MaxAttempts in all.
type Scheduler struct {
	m    *Manager
	opts SchedulerOptions

	since time.Time // when the scheduler was made

	mu      sync.Mutex
	objects map[string]cachedObjects // by source
	// leadSince is when Run saw this node become leader: renewals may have
	// failed while there was no leader, so leases are not expired until a
	// whole lease has passed since.
	leadSince time.Time
}

type cachedObjects struct {
	names []string
	at    time.Time
}

// NewScheduler returns the scheduler of m.
func (m *Manager) NewScheduler(opts SchedulerOptions) *Scheduler {
	return &Scheduler{m: m, opts: opts.withDefaults(), since: m.now(), objects: map[string]cachedObjects{}}
}

// Run passes every Tick while lead reports true, until ctx ends.
func (s *Scheduler) Run(ctx context.Context, lead func() bool) {
	tick := time.NewTicker(s.opts.Tick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if !lead() {
			s.mu.Lock()
			s.leadSince = time.Time{}
			s.mu.Unlock()
			continue
		}
		s.mu.Lock()
		if s.leadSince.IsZero() {
			s.leadSince = time.Now()
		}
		s.mu.Unlock()
		if _, err := s.Pass(ctx); err != nil && ctx.Err() == nil {
			s.m.log.Warn("scheduler pass", "err", err)
		}
	}
}

// Pass looks once: it interrupts jobs whose lease ran out, settles claimed
// runs, retries failed attempts and queues the slots that are due. It
// returns the jobs it queued or started (upkeep runs on the leader).
func (s *Scheduler) Pass(ctx context.Context) ([]meta.Job, error) {
	now := s.m.now()
	c := s.m.catalog
	var started []meta.Job
	var errs []error
	s.mu.Lock()
	settled := s.leadSince.IsZero() || time.Since(s.leadSince) >= s.m.lease
	s.mu.Unlock()
	var expired []meta.Job
	var err error
	if settled {
		if expired, err = c.ExpireLeases(ctx, now); err != nil {
			errs = append(errs, err)
		}
	}
	for _, j := range expired {
		s.m.log.Warn("job interrupted: its node stopped renewing its lease", "job", j.ID, "node", j.Node, "kind", j.Kind,
			"source", j.Source, "object", j.Object)
	}
	runs, err := c.Runs(ctx)
	if err != nil {
		return nil, err
	}
	latest := map[string]time.Time{} // policy/source/object → newest slot
	for _, r := range runs {
		k := r.Policy + "/" + r.Source + "/" + r.Object
		if r.Slot.After(latest[k]) {
			latest[k] = r.Slot
		}
		if r.State != meta.RunClaimed {
			continue
		}
		if err := s.settle(ctx, r, now); err != nil {
			errs = append(errs, err)
		}
	}
	// Retries first: they are older.
	runs, err = c.Runs(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range runs {
		if r.State != meta.RunClaimed || r.Job != "" || now.Before(r.NextTry) {
			continue
		}
		if j, err := s.attempt(ctx, r, now); err != nil {
			errs = append(errs, err)
		} else if j.ID != "" {
			started = append(started, j)
		}
	}
	for _, u := range []struct{ kind, spec string }{{meta.JobVerify, s.opts.Verify}, {meta.JobGC, s.opts.GC}} {
		if u.spec == "" {
			continue
		}
		sched, err := policy.ParseSchedule(u.spec)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s schedule: %w", u.kind, err))
			continue
		}
		last := latest[upkeepPolicy+"/"+upkeepSource+"/"+u.kind]
		if last.IsZero() {
			last = s.since // the first slot after this scheduler started
		}
		if due, slot := policy.Due(sched, last, now); due {
			r := meta.Run{Policy: upkeepPolicy, Source: upkeepSource, Object: u.kind, Slot: slot, State: meta.RunClaimed}
			if err := c.ClaimRun(ctx, r); err == nil {
				if j, err := s.attempt(ctx, r, now); err != nil {
					errs = append(errs, err)
				} else if j.ID != "" {
					started = append(started, j)
				}
			} else if !errors.Is(err, meta.ErrExists) {
				errs = append(errs, err)
			}
		}
	}
	policies, err := c.Policies(ctx)
	if err != nil {
		return started, err
	}
	for _, p := range policies {
		if p.Schedule == "" {
			continue
		}
		sched, err := policy.ParseSchedule(p.Schedule)
		if err != nil {
			errs = append(errs, fmt.Errorf("policy %s: %w", p.Name, err))
			continue
		}
		for _, target := range p.Targets {
			objects, err := s.objectsOf(ctx, target, now)
			if err != nil {
				errs = append(errs, fmt.Errorf("policy %s: %w", p.Name, err))
				continue
			}
			source, _, _ := strings.Cut(target, "/")
			for _, object := range objects {
				if owner, err := c.PolicyFor(ctx, source, object); err != nil || owner.Name != p.Name {
					continue // an object's own policy wins over its source's
				}
				last := latest[p.Name+"/"+source+"/"+object]
				if last.IsZero() {
					last = p.Created // a new policy waits for its first slot
				}
				due, slot := policy.Due(sched, last, now)
				if !due {
					continue
				}
				r := meta.Run{Policy: p.Name, Source: source, Object: object, Slot: slot, State: meta.RunClaimed}
				if err := c.ClaimRun(ctx, r); errors.Is(err, meta.ErrExists) {
					continue
				} else if err != nil {
					errs = append(errs, err)
					continue
				}
				j, err := s.attempt(ctx, r, now)
				if err != nil {
					errs = append(errs, err)
				} else if j.ID != "" {
					started = append(started, j)
				}
			}
		}
	}
	return started, errors.Join(errs...)
}

// settle brings a claimed run up to date with its job.
func (s *Scheduler) settle(ctx context.Context, r meta.Run, now time.Time) error {
	c := s.m.catalog
	if r.Job == "" {
		return nil // waiting for a retry
	}
	points, err := c.RestorePoints(ctx, meta.Filter{Source: r.Source, Object: r.Object})
	if err != nil {
		return err
	}
	for _, rp := range points {
		if rp.Job == r.Job {
			r.State, r.Error = meta.RunDone, ""
			return c.UpdateRun(ctx, r)
		}
	}
	j, err := c.Job(ctx, r.Job)
	switch {
	case errors.Is(err, meta.ErrNotFound):
		j = meta.Job{State: meta.JobFailed, Error: "the job was never recorded"}
	case err != nil:
		return err
	case !j.Done():
		return nil
	case j.State == meta.JobSucceeded && r.Policy == upkeepPolicy:
		r.State, r.Error = meta.RunDone, ""
		return c.UpdateRun(ctx, r)
	}
	r.Error = fmt.Sprintf("attempt %d: %s: %s", r.Attempts, j.State, j.Error)
	if r.Attempts >= s.opts.MaxAttempts {
		r.State = meta.RunFailed
		s.m.log.Error("scheduled backup failed for good", "policy", r.Policy, "source", r.Source, "object", r.Object,
			"slot", r.Slot, "err", r.Error)
	} else {
		r.Job = ""
		r.NextTry = now.Add(s.opts.RetryAfter << max(0, r.Attempts-1))
		if j.State == meta.JobInterrupted {
			// Its node stopped, not the backup: try again at once.
			r.NextTry = now
		}
		s.m.log.Warn("scheduled backup will be retried", "policy", r.Policy, "source", r.Source, "object", r.Object,
			"slot", r.Slot, "next_try", r.NextTry, "err", r.Error)
	}
	return c.UpdateRun(ctx, r)
}

// attempt queues a backup (or starts an upkeep job) for a claimed run and
// records it on the run.
func (s *Scheduler) attempt(ctx context.Context, r meta.Run, now time.Time) (meta.Job, error) {
	r.Attempts++
	var j meta.Job
	var err error
	switch {
	case r.Policy == upkeepPolicy && r.Object == meta.JobVerify:
		j, err = s.m.StartVerifyAll(ctx)
	case r.Policy == upkeepPolicy && r.Object == meta.JobGC:
		j, err = s.m.StartGC(ctx, api.GCRequest{})
	default:
		j, err = s.m.enqueue(ctx, r)
	}
	if err != nil {
		r.Error = fmt.Sprintf("attempt %d: %v", r.Attempts, err)
		if r.Attempts >= s.opts.MaxAttempts {
			r.State = meta.RunFailed
		} else {
			r.NextTry = now.Add(s.opts.RetryAfter << max(0, r.Attempts-1))
		}
		return meta.Job{}, s.m.catalog.UpdateRun(ctx, r)
	}
	r.Job = j.ID
	s.m.log.Info("scheduled job recorded", "policy", r.Policy, "source", r.Source, "object", r.Object,
		"slot", r.Slot, "attempt", r.Attempts, "job", j.ID)
	return j, s.m.catalog.UpdateRun(ctx, r)
}

// objectsOf lists what a target covers: one object, or every object of a
// source (asked of its plugin at most once per ObjectsTTL).
func (s *Scheduler) objectsOf(ctx context.Context, target string, now time.Time) ([]string, error) {
	source, object, ok := strings.Cut(target, "/")
	if ok {
		return []string{object}, nil
	}
	s.mu.Lock()
	cached, hit := s.objects[source]
	s.mu.Unlock()
	if hit && now.Sub(cached.at) < s.opts.ObjectsTTL {
		return cached.names, nil
	}
	objs, err := s.m.Objects(ctx, source)
	if err != nil {
		return nil, fmt.Errorf("list objects of %s: %w", source, err)
	}
	names := make([]string, len(objs))
	for i, o := range objs {
		names[i] = o.Name
	}
	s.mu.Lock()
	s.objects[source] = cachedObjects{names: names, at: now}
	s.mu.Unlock()
	return names, nil
}
