package metatest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/cluster/meta"
)

// testConcurrentUse checks read-after-write under concurrent writers: each
// writer sees its own commit as the latest of its object at once.
func testConcurrentUse(t *testing.T, open Opener) {
	ctx := context.Background()
	l := open(t)
	mustAddSource(t, l, "nas")
	const writers, each = 6, 8
	var wg sync.WaitGroup
	errs := make(chan error, writers*each*4)
	for w := range writers {
		wg.Go(func() {
			object := fmt.Sprintf("vm-%d", w)
			for i := range each {
				id := fmt.Sprintf("rp-%d-%02d", w, i)
				if err := l.CommitRestorePoint(ctx, testPoint(id, "nas", object, t0.Add(time.Duration(i)*time.Minute))); err != nil {
					errs <- err
				}
				if err := l.PutJob(ctx, meta.Job{ID: fmt.Sprintf("job-%d-%02d", w, i), Kind: meta.JobBackup, State: meta.JobSucceeded, Created: t0}); err != nil {
					errs <- err
				}
				latest, err := l.Latest(ctx, "nas", object)
				if err != nil {
					errs <- err
				} else if latest.ID != id {
					errs <- fmt.Errorf("latest of %s = %s right after committing %s", object, latest.ID, id)
				}
				if _, err := l.RestorePoints(ctx, meta.Filter{Source: "nas"}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	all, err := l.RestorePoints(ctx, meta.Filter{})
	if err != nil || len(all) != writers*each {
		t.Errorf("after concurrent commits: %d restore points, %v; want %d", len(all), err, writers*each)
	}
	jobs, err := l.Jobs(ctx, meta.JobFilter{})
	if err != nil || len(jobs) != writers*each {
		t.Errorf("after concurrent puts: %d jobs, %v; want %d", len(jobs), err, writers*each)
	}
}
