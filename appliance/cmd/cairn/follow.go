package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cairnhq/cairn/appliance/api"
	"github.com/cairnhq/cairn/cluster/meta"
)

// maxPollFailures is how many reads of a followed job in a row may fail to
// connect before following gives up: a restarting appliance should not end
// a long wait.
const maxPollFailures = 5

// jobReader is what following a job needs from the API.
type jobReader interface {
	Job(ctx context.Context, id string) (meta.Job, error)
}

// follow reads a job until it finishes, about four times a second at first
// and backing off to once a second, showing progress and the job's
// messages on stderr. Canceling ctx (Ctrl-C) stops following, not the job.
func (a *app) follow(ctx context.Context, c jobReader, j meta.Job) (meta.Job, error) {
	p := a.newProgress()
	interval := a.pollMin
	failures := 0
	for {
		p.show(j)
		if j.Done() {
			p.end(j)
			return j, nil
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			p.stop()
			return j, &interrupted{job: j.ID}
		case <-t.C:
		}
		next, err := c.Job(ctx, j.ID)
		switch {
		case ctx.Err() != nil:
			p.stop()
			return j, &interrupted{job: j.ID}
		case errors.Is(err, api.ErrConnect) && failures < maxPollFailures:
			failures++
			interval = a.pollMax
			continue
		case err != nil:
			p.stop()
			return j, fmt.Errorf("follow job %s: %w", j.ID, err)
		}
		failures = 0
		j = next
		interval = min(interval*3/2, a.pollMax)
	}
}

// jobFailed is the error for a followed job that did not succeed.
func jobFailed(j meta.Job) error {
	msg := fmt.Sprintf("%s job %s %s", j.Kind, j.ID, j.State)
	if j.Error != "" {
		msg += ": " + j.Error
	}
	return errors.New(msg)
}
