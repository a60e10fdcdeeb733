package meta

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// JobFilter selects jobs; empty fields match everything and a Limit of zero
// means no limit.
type JobFilter struct {
	Kind   string
	State  string
	Source string
	Object string
	Limit  int
}

func (f JobFilter) match(j Job) bool {
	return (f.Kind == "" || j.Kind == f.Kind) &&
		(f.State == "" || j.State == f.State) &&
		(f.Source == "" || j.Source == f.Source) &&
		(f.Object == "" || j.Object == f.Object)
}

func active(state string) bool { return state == JobQueued || state == JobRunning }

// PutJob inserts a job or replaces the one with the same ID. Its ID must be a
// valid name, its kind set, its state one of the Job states and its creation
// time set.
func (l *Local) PutJob(ctx context.Context, j Job) error {
	if err := checkJob(j); err != nil {
		return fmt.Errorf("put job %q: %w", j.ID, err)
	}
	err := l.update(ctx, func(tx *bolt.Tx) error { return putJob(tx, j) })
	if err != nil {
		return fmt.Errorf("put job %s: %w", j.ID, err)
	}
	return nil
}

func checkJob(j Job) error {
	if err := checkName("id", j.ID); err != nil {
		return err
	}
	if j.Kind == "" {
		return fmt.Errorf("no kind: %w", ErrInvalid)
	}
	switch j.State {
	case JobQueued, JobRunning, JobSucceeded, JobFailed, JobCanceled, JobInterrupted:
	default:
		return fmt.Errorf("state %q: %w", j.State, ErrInvalid)
	}
	if j.Created.IsZero() {
		return fmt.Errorf("no creation time: %w", ErrInvalid)
	}
	return nil
}

// putJob stores j and keeps the creation-time and active indexes in step.
func putJob(tx *bolt.Tx, j Job) error {
	index := tx.Bucket(bucketJobsIndex)
	var old Job
	switch err := get(tx, bucketJobs, j.ID, &old); {
	case err == nil:
		if err := index.Delete(jobKey(old)); err != nil {
			return err
		}
	case !errors.Is(err, ErrNotFound):
		return err
	}
	if err := put(tx, bucketJobs, j.ID, j); err != nil {
		return err
	}
	if err := index.Put(jobKey(j), []byte(j.ID)); err != nil {
		return err
	}
	if active(j.State) {
		return tx.Bucket(bucketJobsActive).Put([]byte(j.ID), nil)
	}
	return tx.Bucket(bucketJobsActive).Delete([]byte(j.ID))
}

// Job returns the job with the given ID; ErrNotFound if there is none.
func (l *Local) Job(ctx context.Context, id string) (Job, error) {
	var j Job
	err := l.view(ctx, func(tx *bolt.Tx) error {
		return get(tx, bucketJobs, id, &j)
	})
	if err != nil {
		return Job{}, fmt.Errorf("job %s: %w", id, err)
	}
	return j, nil
}

// Jobs returns the jobs f selects, newest first by creation time, then by ID
// descending. With a limit it stops reading once it has enough.
func (l *Local) Jobs(ctx context.Context, f JobFilter) ([]Job, error) {
	var out []Job
	err := l.view(ctx, func(tx *bolt.Tx) error {
		jobs := tx.Bucket(bucketJobs)
		var err error
		scanReverse(tx.Bucket(bucketJobsIndex).Cursor(), nil, func(id []byte) bool {
			var j Job
			v := jobs.Get(id)
			if v == nil {
				err = fmt.Errorf("index names missing job %s", id)
				return false
			}
			if err = decode(v, &j); err != nil {
				err = fmt.Errorf("decode job %s: %w", id, err)
				return false
			}
			if f.match(j) {
				out = append(out, j)
			}
			return f.Limit <= 0 || len(out) < f.Limit
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	return out, nil
}

// InterruptRunning marks every queued or running job interrupted, finished
// at now, with an error saying why, and returns them newest first. A daemon
// calls it as it starts: whatever those jobs were doing died with the
// previous process.
func (l *Local) InterruptRunning(ctx context.Context, node string, now time.Time) ([]Job, error) {
	var out []Job
	err := l.update(ctx, func(tx *bolt.Tx) error {
		jobs, err := activeJobs(tx)
		if err != nil {
			return err
		}
		for _, j := range jobs {
			if !j.runsOn(node) {
				continue
			}
			j = interrupted(j, now)
			if err := putJob(tx, j); err != nil {
				return fmt.Errorf("job %s: %w", j.ID, err)
			}
			out = append(out, j)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("interrupt running jobs: %w", err)
	}
	slices.SortFunc(out, compareJobs)
	return out, nil
}

// runsOn reports whether node runs j: a running job recorded without a
// node belongs to whichever node restarts first. A queued job that no node
// has taken runs nowhere yet.
func (j Job) runsOn(node string) bool {
	return j.Node == node || (j.Node == "" && j.State == JobRunning)
}

// interrupted returns j as a queued or running job whose node stopped.
func interrupted(j Job, now time.Time) Job {
	if j.State == JobRunning {
		j.Error = "interrupted: the node stopped while the job was running"
	} else {
		j.Error = "interrupted: the node stopped before the job started"
	}
	j.State = JobInterrupted
	j.Finished = now
	return j
}

// activeJobs returns the queued and running jobs, in ID order.
func activeJobs(tx *bolt.Tx) ([]Job, error) {
	var out []Job
	err := tx.Bucket(bucketJobsActive).ForEach(func(k, _ []byte) error {
		var j Job
		if err := get(tx, bucketJobs, string(k), &j); err != nil {
			return fmt.Errorf("active job %s: %w", k, err)
		}
		out = append(out, j)
		return nil
	})
	return out, err
}
