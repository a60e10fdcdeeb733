package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/appliance/api"
	"github.com/cairnhq/cairn/cluster/meta"
)

// flaky answers with connection errors first, then with the job done.
type flaky struct {
	fails int
	calls int
}

func (f *flaky) Job(ctx context.Context, id string) (meta.Job, error) {
	f.calls++
	if f.calls <= f.fails {
		return meta.Job{}, fmt.Errorf("%w to server: connection refused", api.ErrConnect)
	}
	return meta.Job{ID: id, Kind: meta.JobBackup, State: meta.JobSucceeded}, nil
}

func testApp() (*app, *bytes.Buffer) {
	var out bytes.Buffer
	a := newApp(&out, &out, func() bool { return false }, func() int { return 80 })
	a.pollMin, a.pollMax = time.Millisecond, time.Millisecond
	return a, &out
}

// TestFollowRidesOutRestarts: a few failed reads in a row (an appliance
// restarting) do not end a wait; many do, as a connection error.
func TestFollowRidesOutRestarts(t *testing.T) {
	a, _ := testApp()
	running := meta.Job{ID: "job-1", Kind: meta.JobBackup, State: meta.JobRunning}
	j, err := a.follow(context.Background(), &flaky{fails: maxPollFailures}, running)
	if err != nil || j.State != meta.JobSucceeded {
		t.Errorf("after %d failed reads: %+v, %v", maxPollFailures, j, err)
	}
	_, err = a.follow(context.Background(), &flaky{fails: maxPollFailures + 1}, running)
	if exitCode(err) != exitConnect {
		t.Errorf("after %d failed reads: %v (exit %d), want a connection error", maxPollFailures+1, err, exitCode(err))
	}
}

func TestExitCodeMapping(t *testing.T) {
	tests := []struct {
		err  error
		code int
	}{
		{nil, exitOK},
		{errors.New("job failed"), exitFailure},
		{usagef("bad"), exitUsage},
		{&api.Error{Status: 400, Code: api.CodeInvalid}, exitUsage},
		{&api.Error{Status: 401, Code: api.CodeUnauthorized}, exitUnauthorized},
		{&api.Error{Status: 404, Code: api.CodeNotFound}, exitNotFound},
		{&api.Error{Status: 409, Code: api.CodeExists}, exitConflict},
		{&api.Error{Status: 409, Code: api.CodeConflict}, exitConflict},
		{&api.Error{Status: 500, Code: api.CodeInternal}, exitFailure},
		{&api.Error{Status: 503, Code: api.CodeUnavailable}, exitFailure},
		{fmt.Errorf("list: %w", api.ErrConnect), exitConnect},
		{&interrupted{job: "j"}, exitInterrupted},
		{context.Canceled, exitInterrupted},
	}
	for _, tt := range tests {
		if got := exitCode(tt.err); got != tt.code {
			t.Errorf("exitCode(%v) = %d, want %d", tt.err, got, tt.code)
		}
	}
}

func TestHumanBytes(t *testing.T) {
	tests := map[int64]string{
		0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB",
		4 << 20: "4.0 MiB", 8 << 30: "8.0 GiB", 3 << 40: "3.0 TiB", 5 << 50: "5.0 PiB", 1 << 62: "4096.0 PiB",
	}
	for n, want := range tests {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestBarLine(t *testing.T) {
	j := meta.Job{Kind: meta.JobBackup, State: meta.JobRunning, Progress: meta.Progress{Done: 3 << 30, Total: 8 << 30}}
	line := barLine(j, 100<<20, 100)
	for _, want := range []string{"backup [", " 37%", "3.0 GiB / 8.0 GiB", "100.0 MiB/s", "ETA 51s"} {
		if !strings.Contains(line, want) {
			t.Errorf("bar %q lacks %q", line, want)
		}
	}
	if len(line) >= 100 {
		t.Errorf("bar %d wide on a 100-column terminal", len(line))
	}
	if narrow := barLine(j, 100<<20, 30); len(narrow) >= 30 {
		t.Errorf("bar %q overflows 30 columns", narrow)
	}
	j.Progress.Done = j.Progress.Total
	j.State = meta.JobSucceeded
	if done := barLine(j, 0, 100); !strings.Contains(done, "100%") || !strings.Contains(done, "succeeded") || strings.Contains(done, ">") {
		t.Errorf("finished bar %q", done)
	}
}

func TestRate(t *testing.T) {
	var r rate
	t0 := time.Unix(0, 0)
	if r.perSecond() != 0 {
		t.Error("rate known without samples")
	}
	for i := range 30 {
		r.add(t0.Add(time.Duration(i)*time.Second), int64(i)*(10<<20))
	}
	if got := r.perSecond(); got != 10<<20 {
		t.Errorf("rate %v, want 10 MiB/s", got)
	}
	if len(r.times) > 12 {
		t.Errorf("rate keeps %d samples, more than its window needs", len(r.times))
	}
}
