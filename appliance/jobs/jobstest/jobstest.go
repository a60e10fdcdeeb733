// Package jobstest holds what tests of the job manager and of plugins
// driven through it share.
package jobstest

import (
	"context"
	"testing"
	"time"

	"github.com/cairnhq/cairn/cluster/meta"
)

// Jobs is the part of the job manager Wait needs.
type Jobs interface {
	Job(ctx context.Context, id string) (meta.Job, error)
}

// Wait polls job id until it is done and returns it; it fails the test if
// the job cannot be read or is not done within limit.
func Wait(t testing.TB, m Jobs, id string, limit time.Duration) meta.Job {
	t.Helper()
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		j, err := m.Job(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if j.Done() {
			return j
		}
	}
	t.Fatalf("job %s did not finish within %s", id, limit)
	return meta.Job{}
}
