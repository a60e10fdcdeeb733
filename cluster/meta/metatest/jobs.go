package metatest

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/cairnhq/cairn/cluster/meta"
)

func testJob(id string, created time.Time, state string) meta.Job {
	return meta.Job{ID: id, Kind: meta.JobBackup, State: state, Source: "nas", Object: "vm-1", Created: created}
}

func testPutJob(t *testing.T, open Opener) {
	tests := []struct {
		name string
		job  meta.Job
		want error
	}{
		{"queued", testJob("job-1", t0, meta.JobQueued), nil},
		{"full record", meta.Job{
			ID: "job-1", Kind: meta.JobVerify, State: meta.JobSucceeded, RestorePoint: "rp-1",
			Created: t0, Started: t0.Add(time.Second), Finished: t0.Add(time.Minute),
			Progress: meta.Progress{Done: 10, Total: 10}, Messages: []string{"read everything: no change tracking"},
			Verify: &meta.VerifyResult{OK: true, ChunksChecked: 3, BytesChecked: 12 << 20, Fingerprint: "ab"},
		}, nil},
		{"bad id", testJob("Job 1", t0, meta.JobQueued), meta.ErrInvalid},
		{"no kind", meta.Job{ID: "job-1", State: meta.JobQueued, Created: t0}, meta.ErrInvalid},
		{"unknown state", testJob("job-1", t0, "paused"), meta.ErrInvalid},
		{"no creation time", testJob("job-1", time.Time{}, meta.JobQueued), meta.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			l := open(t)
			err := l.PutJob(ctx, tt.job)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("PutJob = %v, want %v", err, tt.want)
			}
			got, gerr := l.Job(ctx, tt.job.ID)
			if tt.want != nil {
				if !errors.Is(gerr, meta.ErrNotFound) {
					t.Errorf("refused job is stored: %v", gerr)
				}
				return
			}
			if gerr != nil || !reflect.DeepEqual(got, tt.job) {
				t.Errorf("Job = %+v, %v\nwant %+v", got, gerr, tt.job)
			}
		})
	}
}

func testPutJobReplaces(t *testing.T, open Opener) {
	ctx := context.Background()
	l := open(t)
	j := testJob("job-1", t0, meta.JobQueued)
	steps := []func(*meta.Job){
		func(j *meta.Job) { j.State = meta.JobRunning; j.Started = t0.Add(time.Second) },
		func(j *meta.Job) { j.Progress = meta.Progress{Done: 5, Total: 10} },
		func(j *meta.Job) { j.Created = t0.Add(-time.Hour) }, // a changed creation time moves it in the index
		func(j *meta.Job) { j.State = meta.JobSucceeded; j.Finished = t0.Add(time.Minute) },
	}
	if err := l.PutJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	for i, step := range steps {
		step(&j)
		if err := l.PutJob(ctx, j); err != nil {
			t.Fatal(err)
		}
		list, err := l.Jobs(ctx, meta.JobFilter{})
		if err != nil || len(list) != 1 || !reflect.DeepEqual(list[0], j) {
			t.Fatalf("step %d: Jobs = %+v, %v; want just %+v", i, list, err, j)
		}
	}
	if got, err := l.InterruptRunning(ctx, "n1", t0.Add(time.Hour)); err != nil || len(got) != 0 {
		t.Errorf("a succeeded job was interrupted: %+v, %v", got, err)
	}
}

func testJobNotFound(t *testing.T, open Opener) {
	l := open(t)
	if _, err := l.Job(context.Background(), "job-x"); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("Job(job-x) = %v, want ErrNotFound", err)
	}
}

func testJobsFilter(t *testing.T, open Opener) {
	ctx := context.Background()
	l := open(t)
	m := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }
	jobs := []meta.Job{
		testJob("j-a", m(1), meta.JobSucceeded),
		testJob("j-b", m(3), meta.JobFailed),
		testJob("j-c", m(2), meta.JobRunning),
		testJob("j-d", m(3), meta.JobQueued), // same time as j-b: higher ID is newer
		{ID: "j-e", Kind: meta.JobRestore, State: meta.JobSucceeded, Source: "vc", Object: "vm-9", Created: m(0)},
		{ID: "j-f", Kind: meta.JobVerify, State: meta.JobSucceeded, RestorePoint: "rp-1", Created: m(5)},
	}
	for _, j := range jobs {
		if err := l.PutJob(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		f    meta.JobFilter
		want []string
	}{
		{meta.JobFilter{}, []string{"j-f", "j-d", "j-b", "j-c", "j-a", "j-e"}},
		{meta.JobFilter{Limit: 2}, []string{"j-f", "j-d"}},
		{meta.JobFilter{Limit: 100}, []string{"j-f", "j-d", "j-b", "j-c", "j-a", "j-e"}},
		{meta.JobFilter{Kind: meta.JobBackup}, []string{"j-d", "j-b", "j-c", "j-a"}},
		{meta.JobFilter{Kind: meta.JobBackup, Limit: 3}, []string{"j-d", "j-b", "j-c"}},
		{meta.JobFilter{State: meta.JobSucceeded}, []string{"j-f", "j-a", "j-e"}},
		{meta.JobFilter{State: meta.JobSucceeded, Limit: 1}, []string{"j-f"}},
		{meta.JobFilter{Source: "vc"}, []string{"j-e"}},
		{meta.JobFilter{Source: "nas", Object: "vm-1", State: meta.JobRunning}, []string{"j-c"}},
		{meta.JobFilter{Object: "vm-2"}, nil},
	}
	for _, tt := range tests {
		got, err := l.Jobs(ctx, tt.f)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, j := range got {
			ids = append(ids, j.ID)
		}
		if !reflect.DeepEqual(ids, tt.want) {
			t.Errorf("Jobs(%+v) = %v, want %v", tt.f, ids, tt.want)
		}
	}
}

func testInterruptRunning(t *testing.T, open Opener) {
	ctx := context.Background()
	l := open(t)
	m := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }
	running := testJob("j-run", m(1), meta.JobRunning)
	running.Started = m(2)
	running.Progress = meta.Progress{Done: 3, Total: 9}
	queued := testJob("j-queue", m(3), meta.JobQueued)
	done := testJob("j-done", m(0), meta.JobSucceeded)
	done.Finished = m(1)
	elsewhere := testJob("j-other", m(4), meta.JobRunning)
	elsewhere.Node = "n2"
	queued.Node = "n1"
	for _, j := range []meta.Job{running, queued, done, elsewhere} {
		if err := l.PutJob(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	now := m(60)
	got, err := l.InterruptRunning(ctx, "n1", now)
	if err != nil {
		t.Fatal(err)
	}
	wantRun, wantQueue := running, queued
	wantRun.State, wantRun.Finished = meta.JobInterrupted, now
	wantRun.Error = "interrupted: the node stopped while the job was running"
	wantQueue.State, wantQueue.Finished = meta.JobInterrupted, now
	wantQueue.Error = "interrupted: the node stopped before the job started"
	if want := []meta.Job{wantQueue, wantRun}; !reflect.DeepEqual(got, want) {
		t.Fatalf("InterruptRunning = %+v\nwant %+v", got, want)
	}
	for _, want := range []meta.Job{wantRun, wantQueue, done, elsewhere} {
		if stored, err := l.Job(ctx, want.ID); err != nil || !reflect.DeepEqual(stored, want) {
			t.Errorf("stored %s = %+v, %v\nwant %+v", want.ID, stored, err, want)
		}
		if stored, _ := l.Job(ctx, want.ID); stored.Done() == (want.ID == elsewhere.ID) {
			t.Errorf("%s: done = %v after interrupting node n1's jobs", want.ID, stored.Done())
		}
	}
	if again, err := l.InterruptRunning(ctx, "n1", m(61)); err != nil || len(again) != 0 {
		t.Errorf("second InterruptRunning = %+v, %v; want nothing", again, err)
	}
}

func testJobCopies(t *testing.T, open Opener) {
	ctx := context.Background()
	l := open(t)
	j := testJob("job-1", t0, meta.JobRunning)
	j.Messages = []string{"first"}
	if err := l.PutJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	j.Messages[0] = "changed after put"
	got, _ := l.Job(ctx, "job-1")
	got.Messages[0] = "changed after read"
	list, _ := l.Jobs(ctx, meta.JobFilter{})
	if list[0].Messages[0] != "first" {
		t.Errorf("stored message = %q, want %q", list[0].Messages[0], "first")
	}
}
