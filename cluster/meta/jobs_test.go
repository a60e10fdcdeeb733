package meta

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

func testJob(id string, created time.Time, state string) Job {
	return Job{ID: id, Kind: JobBackup, State: state, Source: "nas", Object: "vm-1", Created: created}
}

func TestPutJob(t *testing.T) {
	tests := []struct {
		name string
		job  Job
		want error
	}{
		{"queued", testJob("job-1", t0, JobQueued), nil},
		{"full record", Job{
			ID: "job-1", Kind: JobVerify, State: JobSucceeded, RestorePoint: "rp-1",
			Created: t0, Started: t0.Add(time.Second), Finished: t0.Add(time.Minute),
			Progress: Progress{Done: 10, Total: 10}, Messages: []string{"read everything: no change tracking"},
			Verify: &VerifyResult{OK: true, ChunksChecked: 3, BytesChecked: 12 << 20, Fingerprint: "ab"},
		}, nil},
		{"bad id", testJob("Job 1", t0, JobQueued), ErrInvalid},
		{"no kind", Job{ID: "job-1", State: JobQueued, Created: t0}, ErrInvalid},
		{"unknown state", testJob("job-1", t0, "paused"), ErrInvalid},
		{"no creation time", testJob("job-1", time.Time{}, JobQueued), ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			l, _ := openTest(t)
			err := l.PutJob(ctx, tt.job)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("PutJob = %v, want %v", err, tt.want)
			}
			got, gerr := l.Job(ctx, tt.job.ID)
			if tt.want != nil {
				if !errors.Is(gerr, ErrNotFound) {
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

func TestPutJobReplaces(t *testing.T) {
	ctx := context.Background()
	l, _ := openTest(t)
	j := testJob("job-1", t0, JobQueued)
	steps := []func(*Job){
		func(j *Job) { j.State = JobRunning; j.Started = t0.Add(time.Second) },
		func(j *Job) { j.Progress = Progress{Done: 5, Total: 10} },
		func(j *Job) { j.Created = t0.Add(-time.Hour) }, // a changed creation time moves it in the index
		func(j *Job) { j.State = JobSucceeded; j.Finished = t0.Add(time.Minute) },
	}
	if err := l.PutJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	for i, step := range steps {
		step(&j)
		if err := l.PutJob(ctx, j); err != nil {
			t.Fatal(err)
		}
		list, err := l.Jobs(ctx, JobFilter{})
		if err != nil || len(list) != 1 || !reflect.DeepEqual(list[0], j) {
			t.Fatalf("step %d: Jobs = %+v, %v; want just %+v", i, list, err, j)
		}
	}
	if got, err := l.InterruptRunning(ctx, t0.Add(time.Hour)); err != nil || len(got) != 0 {
		t.Errorf("a succeeded job was interrupted: %+v, %v", got, err)
	}
}

func TestJobNotFound(t *testing.T) {
	l, _ := openTest(t)
	if _, err := l.Job(context.Background(), "job-x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Job(job-x) = %v, want ErrNotFound", err)
	}
}

func TestJobsFilter(t *testing.T) {
	ctx := context.Background()
	l, _ := openTest(t)
	m := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }
	jobs := []Job{
		testJob("j-a", m(1), JobSucceeded),
		testJob("j-b", m(3), JobFailed),
		testJob("j-c", m(2), JobRunning),
		testJob("j-d", m(3), JobQueued), // same time as j-b: higher ID is newer
		{ID: "j-e", Kind: JobRestore, State: JobSucceeded, Source: "vc", Object: "vm-9", Created: m(0)},
		{ID: "j-f", Kind: JobVerify, State: JobSucceeded, RestorePoint: "rp-1", Created: m(5)},
	}
	for _, j := range jobs {
		if err := l.PutJob(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		f    JobFilter
		want []string
	}{
		{JobFilter{}, []string{"j-f", "j-d", "j-b", "j-c", "j-a", "j-e"}},
		{JobFilter{Limit: 2}, []string{"j-f", "j-d"}},
		{JobFilter{Limit: 100}, []string{"j-f", "j-d", "j-b", "j-c", "j-a", "j-e"}},
		{JobFilter{Kind: JobBackup}, []string{"j-d", "j-b", "j-c", "j-a"}},
		{JobFilter{Kind: JobBackup, Limit: 3}, []string{"j-d", "j-b", "j-c"}},
		{JobFilter{State: JobSucceeded}, []string{"j-f", "j-a", "j-e"}},
		{JobFilter{State: JobSucceeded, Limit: 1}, []string{"j-f"}},
		{JobFilter{Source: "vc"}, []string{"j-e"}},
		{JobFilter{Source: "nas", Object: "vm-1", State: JobRunning}, []string{"j-c"}},
		{JobFilter{Object: "vm-2"}, nil},
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

func TestInterruptRunning(t *testing.T) {
	ctx := context.Background()
	l, _ := openTest(t)
	m := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }
	running := testJob("j-run", m(1), JobRunning)
	running.Started = m(2)
	running.Progress = Progress{Done: 3, Total: 9}
	queued := testJob("j-queue", m(3), JobQueued)
	done := testJob("j-done", m(0), JobSucceeded)
	done.Finished = m(1)
	for _, j := range []Job{running, queued, done} {
		if err := l.PutJob(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	now := m(60)
	got, err := l.InterruptRunning(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	wantRun, wantQueue := running, queued
	wantRun.State, wantRun.Finished = JobInterrupted, now
	wantRun.Error = "interrupted: the node stopped while the job was running"
	wantQueue.State, wantQueue.Finished = JobInterrupted, now
	wantQueue.Error = "interrupted: the node stopped before the job started"
	if want := []Job{wantQueue, wantRun}; !reflect.DeepEqual(got, want) {
		t.Fatalf("InterruptRunning = %+v\nwant %+v", got, want)
	}
	for _, want := range []Job{wantRun, wantQueue, done} {
		if stored, err := l.Job(ctx, want.ID); err != nil || !reflect.DeepEqual(stored, want) {
			t.Errorf("stored %s = %+v, %v\nwant %+v", want.ID, stored, err, want)
		}
		if stored, _ := l.Job(ctx, want.ID); !stored.Done() {
			t.Errorf("%s is not done after InterruptRunning", want.ID)
		}
	}
	if again, err := l.InterruptRunning(ctx, m(61)); err != nil || len(again) != 0 {
		t.Errorf("second InterruptRunning = %+v, %v; want nothing", again, err)
	}
}

func TestJobCopies(t *testing.T) {
	ctx := context.Background()
	l, _ := openTest(t)
	j := testJob("job-1", t0, JobRunning)
	j.Messages = []string{"first"}
	if err := l.PutJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	j.Messages[0] = "changed after put"
	got, _ := l.Job(ctx, "job-1")
	got.Messages[0] = "changed after read"
	list, _ := l.Jobs(ctx, JobFilter{})
	if list[0].Messages[0] != "first" {
		t.Errorf("stored message = %q, want %q", list[0].Messages[0], "first")
	}
}
