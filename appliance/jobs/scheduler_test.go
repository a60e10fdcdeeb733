package jobs_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnhq/cairn/appliance/api"
	"github.com/cairnhq/cairn/appliance/jobs"
	"github.com/cairnhq/cairn/appliance/keys"
	"github.com/cairnhq/cairn/cluster/meta"
	"github.com/cairnhq/cairn/plugins"
	"github.com/cairnhq/cairn/plugins/file"
)

// clock is a settable time shared by the two managers of a test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// pointsByHour counts restore points by the hour their backup started in:
// the test's clock stands still while a pass's jobs run.
func pointsByHour(t *testing.T, c *meta.Memory) map[string]int {
	t.Helper()
	rps, err := c.RestorePoints(context.Background(), meta.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, rp := range rps {
		out[rp.Time.UTC().Format("15")]++
	}
	return out
}

// TestSchedulerExactlyOnce: two appliance nodes share the replicated
// catalog; the leader runs the scheduler. Each hourly slot makes exactly
// one restore point: when the leader dies while a slot's backup runs, the
// next leader retries that run once and claims nothing twice; a window
// missed during downtime runs once; two passes at the same instant start
// one job.
func TestSchedulerExactlyOnce(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t) // its manager stays idle; A and B are the nodes
	master, _, err := keys.Load(filepath.Join(f.dir, "master.key"), nil, true)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Date(2026, 11, 22, 9, 30, 0, 0, time.UTC)}
	node := func(name string) *jobs.Manager {
		m, err := jobs.New(ctx, f.catalog, keys.NewRing(master, f.catalog, nil), f.store, []plugins.Kind{file.Kind()},
			jobs.Options{Node: name, Now: clk.now, Secrets: keys.NewSecrets(master, nil), Collector: memCollector{f.store.Memory}})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	a, b := node("a"), node("b")
	defer b.Close()
	opts := jobs.SchedulerOptions{} // retries wait 5 min, but not after an interruption
	sa, sb := a.NewScheduler(opts), b.NewScheduler(opts)

	img := f.image(t, "vm.img", 5<<20)
	if _, err := a.AddSource(ctx, api.AddSourceRequest{Name: "vm", Kind: "file", Config: map[string]string{"path": img}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreatePolicy(ctx, api.PolicyRequest{Name: "hourly", Schedule: "hourly :00", KeepLast: 100}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.AssignPolicy(ctx, "hourly", "vm"); err != nil {
		t.Fatal(err)
	}
	// pass runs the scheduler's pass and then m's worker, and waits for
	// every job they started.
	pass := func(s *jobs.Scheduler, m *jobs.Manager) []meta.Job {
		t.Helper()
		js, err := s.Pass(ctx)
		if err != nil {
			t.Fatal(err)
		}
		taken, err := m.Work(ctx, jobs.WorkerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range append(taken, js...) {
			if j.State != meta.JobQueued {
				wait(t, m, j.ID)
			}
		}
		return js
	}

	// Nothing is due before the first slot after the policy was made.
	if js := pass(sa, a); len(js) != 0 {
		t.Fatalf("started %d jobs before the first slot", len(js))
	}
	clk.set(time.Date(2026, 11, 22, 10, 0, 5, 0, time.UTC))
	if js := pass(sa, a); len(js) != 1 {
		t.Fatalf("10:00: started %d jobs, want 1", len(js))
	}
	pass(sa, a) // settles the run
	if js := pass(sa, a); len(js) != 0 {
		t.Fatalf("10:00 ran again: %d jobs", len(js))
	}

	// 11:00: A starts the slot's backup and dies with it in flight.
	clk.set(time.Date(2026, 11, 22, 11, 0, 5, 0, time.UTC))
	f.store.open = make(chan struct{})
	js, err := sa.Pass(ctx)
	if err != nil || len(js) != 1 || js[0].State != meta.JobQueued {
		t.Fatalf("11:00 on A: %v %v", js, err)
	}
	if taken, err := a.Work(ctx, jobs.WorkerOptions{}); err != nil || len(taken) != 1 {
		t.Fatalf("A's worker took %v: %v", taken, err)
	}
	time.Sleep(50 * time.Millisecond)
	a.Close() // the job is recorded interrupted, as when its node is declared down
	close(f.store.open)
	if j, _ := f.catalog.Job(ctx, js[0].ID); j.State != meta.JobInterrupted {
		t.Fatalf("the killed leader's job is %s", j.State)
	}
	// B leads now: it retries the 11:00 run once, then nothing more.
	pass(sb, b)
	pass(sb, b)
	pass(sb, b)

	// Down from 11:30 to 16:10: the missed windows run once.
	clk.set(time.Date(2026, 11, 22, 16, 10, 0, 0, time.UTC))
	if js := pass(sb, b); len(js) != 1 {
		t.Fatalf("after downtime: %d jobs, want 1", len(js))
	}
	pass(sb, b)

	// Upkeep on a schedule of its own: a GC round at 16:30 and a verify of
	// everything at 16:45, once each.
	up := b.NewScheduler(jobs.SchedulerOptions{Verify: "daily 16:45", GC: "daily 16:30"})
	clk.set(time.Date(2026, 11, 22, 16, 31, 0, 0, time.UTC))
	ups, err := up.Pass(ctx)
	if err != nil || len(ups) != 1 || ups[0].Kind != meta.JobGC {
		t.Fatalf("16:31 upkeep: %+v %v", ups, err)
	}
	wait(t, b, ups[0].ID)
	clk.set(time.Date(2026, 11, 22, 16, 50, 0, 0, time.UTC))
	ups, err = up.Pass(ctx)
	if err != nil || len(ups) != 1 || ups[0].Kind != meta.JobVerify {
		t.Fatalf("16:50 upkeep: %+v %v", ups, err)
	}
	if v := wait(t, b, ups[0].ID); v.State != meta.JobSucceeded || !v.Verify.OK || v.Verify.RestorePoints != 3 {
		t.Fatalf("scheduled verify: %s %+v", v.State, v.Verify)
	}
	if ups, _ = up.Pass(ctx); len(ups) != 0 {
		t.Fatalf("upkeep ran twice: %+v", ups)
	}

	// Two passes at the same instant (an old leader that has not noticed it
	// lost the lead, and the new one) claim the slot once.
	clk.set(time.Date(2026, 11, 22, 17, 0, 1, 0, time.UTC))
	c := node("c")
	defer c.Close()
	sc := c.NewScheduler(opts)
	var wg sync.WaitGroup
	var n1, n2 []meta.Job
	wg.Go(func() { n1, _ = sb.Pass(ctx) })
	wg.Go(func() { n2, _ = sc.Pass(ctx) })
	wg.Wait()
	if len(n1)+len(n2) != 1 {
		t.Fatalf("17:00 from two passes: %d + %d jobs", len(n1), len(n2))
	}
	// Both workers look; one takes the job.
	var t1, t2 []meta.Job
	wg.Go(func() { t1, _ = b.Work(ctx, jobs.WorkerOptions{}) })
	wg.Go(func() { t2, _ = c.Work(ctx, jobs.WorkerOptions{}) })
	wg.Wait()
	if len(t1)+len(t2) != 1 {
		t.Fatalf("17:00 taken by two workers: %d + %d jobs", len(t1), len(t2))
	}
	for _, j := range t1 {
		wait(t, b, j.ID)
	}
	for _, j := range t2 {
		wait(t, c, j.ID)
	}
	pass(sb, b)

	got := pointsByHour(t, f.catalog)
	want := map[string]int{"10": 1, "11": 1, "16": 1, "17": 1}
	if len(got) != len(want) {
		t.Fatalf("restore points by slot: %v, want %v", got, want)
	}
	for slot, n := range want {
		if got[slot] != n {
			t.Fatalf("restore points by slot: %v, want %v", got, want)
		}
	}
	runs, _ := f.catalog.Runs(ctx)
	for _, r := range runs {
		if r.State != meta.RunDone {
			t.Fatalf("run %s is %s: %s", r.Slot.Format("15:04"), r.State, r.Error)
		}
	}
}

// partitioned is a node's view of the catalog that can lose its lease
// renewals, as a node cut off from the leader does, while its other writes
// still arrive (late).
type partitioned struct {
	*meta.Memory
	cut atomic.Bool
}

func (p *partitioned) RenewLease(ctx context.Context, id, node string, until time.Time) (meta.Job, error) {
	if p.cut.Load() {
		return meta.Job{}, errors.New("no leader: partitioned")
	}
	return p.Memory.RenewLease(ctx, id, node, until)
}

// TestLeaseExpiryFencesTheOldNode: node A takes a scheduled backup and
// stops renewing its lease; the leader (B) interrupts the job when the
// lease runs out and retries the run on B. When A's backup gets going
// again, its restore point is refused: the slot gets exactly one. A cancel
// made on B reaches a job running on A through A's lease.
func TestLeaseExpiryFencesTheOldNode(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	master, _, err := keys.Load(filepath.Join(f.dir, "master.key"), nil, true)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Date(2026, 11, 22, 9, 30, 0, 0, time.UTC)}
	cut := &partitioned{Memory: f.catalog}
	node := func(name string, c jobs.Catalog) *jobs.Manager {
		m, err := jobs.New(ctx, c, keys.NewRing(master, f.catalog, nil), f.store, []plugins.Kind{file.Kind()},
			jobs.Options{Node: name, Now: clk.now, Secrets: keys.NewSecrets(master, nil), Lease: 600 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Close)
		return m
	}
	a, b := node("a", cut), node("b", f.catalog)
	sb := b.NewScheduler(jobs.SchedulerOptions{})
	for _, name := range []string{"vm", "db"} {
		img := f.image(t, name+".img", 5<<20)
		if _, err := b.AddSource(ctx, api.AddSourceRequest{Name: name, Kind: "file", Config: map[string]string{"path": img}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.CreatePolicy(ctx, api.PolicyRequest{Name: "hourly", Schedule: "hourly :00", KeepLast: 100}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AssignPolicy(ctx, "hourly", "vm"); err != nil {
		t.Fatal(err)
	}

	clk.set(time.Date(2026, 11, 22, 10, 0, 5, 0, time.UTC))
	f.store.open = make(chan struct{}) // hold every Put
	if js, err := sb.Pass(ctx); err != nil || len(js) != 1 {
		t.Fatalf("10:00: %v %v", js, err)
	}
	taken, err := a.Work(ctx, jobs.WorkerOptions{})
	if err != nil || len(taken) != 1 || taken[0].Node != "a" || taken[0].Lease.IsZero() {
		t.Fatalf("A's worker took %+v: %v", taken, err)
	}
	old := taken[0]
	cut.cut.Store(true)
	clk.set(clk.now().Add(time.Second)) // past A's lease
	if _, err := sb.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if j, _ := f.catalog.Job(ctx, old.ID); j.State != meta.JobInterrupted || !strings.Contains(j.Error, "lease") {
		t.Fatalf("A's job after its lease ran out: %s %q", j.State, j.Error)
	}
	retry, err := b.Work(ctx, jobs.WorkerOptions{})
	if err != nil || len(retry) != 1 || retry[0].Slot != old.Slot {
		t.Fatalf("B's worker took %+v: %v", retry, err)
	}
	close(f.store.open) // both backups run on
	if j := wait(t, b, retry[0].ID); j.State != meta.JobSucceeded {
		t.Fatalf("the retry: %s %s", j.State, j.Error)
	}
	if j := wait(t, a, old.ID); j.State != meta.JobInterrupted {
		t.Fatalf("A's late job ended as %s (%s), want its interrupted record kept", j.State, j.Error)
	}
	if rps, _ := f.catalog.RestorePoints(ctx, meta.Filter{}); len(rps) != 1 || rps[0].Job != retry[0].ID {
		t.Fatalf("restore points %+v, want exactly the retry's", rps)
	}
	sb.Pass(ctx)
	if runs, _ := f.catalog.Runs(ctx); len(runs) != 1 || runs[0].State != meta.RunDone || runs[0].Attempts != 2 {
		t.Fatalf("runs %+v", runs)
	}

	// Cancel from B reaches a job running on A through its lease.
	cut.cut.Store(false)
	f.store.open = make(chan struct{})
	running, err := a.StartBackup(ctx, api.BackupRequest{Source: "db"})
	if err != nil {
		t.Fatal(err)
	}
	if j, err := b.CancelJob(ctx, running.ID); err != nil || !j.CancelRequested {
		t.Fatalf("cancel from B: %+v %v", j, err)
	}
	if j := wait(t, a, running.ID); j.State != meta.JobCanceled {
		t.Fatalf("A's job canceled from B ended %s (%s)", j.State, j.Error)
	}
	close(f.store.open)
}
