package e2e

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairnhq/cairn/cluster/meta"
)

// TestSchedulesSurviveLeaderKill is the lifecycle issue's exactly-once
// evidence: three cairnd processes, a policy running every 10 s on three
// sources, and the leader SIGKILLed while a slot's jobs run, one of them on
// the leader itself. A new leader carries on (the killed node's job is
// interrupted and retried), the old one restarts, and in the end every
// source has exactly one restore point for every slot: none missed, none
// twice.
func TestSchedulesSurviveLeaderKill(t *testing.T) {
	const every = 10 * time.Second
	dir := t.TempDir()
	nodes, byID := startCluster(t, dir, 3, "--schedule-tick", "500ms", "--job-lease", "6s")
	sources := []string{"web", "db", "mail"}
	for _, name := range sources {
		img := filepath.Join(dir, name+".img")
		randomImage(t, img, 64<<20) // a backup takes a second or more
		nodes[0].ok("source", "add", "file", name, "--path", img)
	}
	nodes[1].ok("policy", "create", "often", "--schedule", "every 10s", "--keep-last", "1000")
	for _, name := range sources {
		nodes[2].ok("policy", "assign", "often", name)
	}
	ctx := context.Background()
	// Slots are keyed by their Unix second: times that went through JSON
	// and times from this process's clock compare unequal as map keys.
	slotOf := func(via *node) map[string]map[int64][]string {
		t.Helper()
		jobs, err := via.client.Jobs(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		slot := map[string]int64{}
		for _, j := range jobs {
			if j.Policy == "often" {
				slot[j.ID] = j.Slot.Unix()
			}
		}
		rps, err := via.client.RestorePoints(ctx, meta.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]map[int64][]string{}
		for _, rp := range rps {
			s, ok := slot[rp.Job]
			if !ok {
				t.Fatalf("restore point %s was made by job %s, not by the schedule", rp.ID, rp.Job)
			}
			if out[rp.Source] == nil {
				out[rp.Source] = map[int64][]string{}
			}
			out[rp.Source][s] = append(out[rp.Source][s], rp.ID)
		}
		return out
	}
	waitFor(t, "the first scheduled restore points", time.Minute, func() bool {
		return len(slotOf(nodes[0])) == len(sources)
	})

	// Kill the leader while a slot's jobs are due and it runs one of them
	// itself (it claimed the slot and queued the jobs; any node's worker
	// takes them): at the first slot where it does, within three.
	st, _ := nodes[0].status(t)
	leader := byID[st.Leader]
	var next time.Time
	var victim string // the job running on the leader when it died
	for try := 0; try < 3 && victim == ""; try++ {
		next = time.Now().Truncate(every).Add(every)
		time.Sleep(time.Until(next))
		for end := time.Now().Add(every / 2); victim == "" && time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			jobs, err := leader.client.Jobs(ctx, 20)
			if err != nil {
				t.Fatal(err)
			}
			for _, j := range jobs {
				if j.Policy == "often" && j.State == meta.JobRunning && j.Node == st.Leader && j.Slot.Equal(next) {
					victim = j.ID
				}
			}
			if victim == "" && time.Now().After(end.Add(-60*time.Millisecond)) {
				for _, j := range jobs {
					if j.Slot.Equal(next) {
						t.Logf("slot %s: job %s of %s on %s (leader %s): %s", next.Format("15:04:05"), j.ID, j.Source, j.Node, st.Leader, j.State)
					}
				}
			}
		}
	}
	leader.kill()
	var survivor *node
	took := waitFor(t, "a new leader", 15*time.Second, func() bool {
		for _, n := range nodes {
			if n == leader {
				continue
			}
			if st, ok := n.status(t); ok && st.Leader != "" && byID[st.Leader] != leader {
				survivor = n
				return true
			}
		}
		return false
	})
	t.Logf("leader killed in slot %s, running job %q; a new one after %s", next.Format("15:04:05"), victim, took.Round(10*time.Millisecond))
	time.Sleep(5 * time.Second)
	leader.restart(t)

	// Four more slots, then every slot up to the last must be done once.
	last := next.Add(4 * every)
	time.Sleep(time.Until(last))
	var got map[string]map[int64][]string
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		got = slotOf(survivor)
		done := 0
		for _, name := range sources {
			if len(got[name][last.Unix()]) > 0 {
				done++
			}
		}
		if done == len(sources) {
			break
		}
		if time.Now().After(deadline) {
			jobs, _ := survivor.client.Jobs(ctx, 0)
			for _, j := range jobs {
				t.Logf("job %s %s/%s slot %s on %q: %s %s", j.ID, j.Source, j.Object, j.Slot.Format("15:04:05"), j.Node, j.State, j.Error)
			}
			t.Fatalf("waited 2m for every source's restore point of slot %s", last.Format("15:04:05"))
		}
	}
	for _, name := range sources {
		first := last.Unix()
		for s := range got[name] {
			first = min(first, s)
		}
		for s := first; s <= last.Unix(); s += int64(every / time.Second) {
			if ids := got[name][s]; len(ids) != 1 {
				t.Errorf("source %s, slot %s: %d restore points %v, want exactly 1", name, time.Unix(s, 0).Format("15:04:05"), len(ids), ids)
			}
		}
		if len(got[name][next.Unix()]) == 0 {
			t.Errorf("source %s: the slot the leader died in (%s) has no restore point", name, next.Format("15:04:05"))
		}
	}
	jobs, err := survivor.client.Jobs(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	retried := 0
	for _, j := range jobs {
		if j.Policy == "often" && j.State == meta.JobInterrupted {
			retried++
			t.Logf("interrupted and retried: job %s of %s at %s on %s: %s", j.ID, j.Source, j.Slot.Format("15:04:05"), j.Node, j.Error)
		}
	}
	t.Logf("%d scheduled jobs in all, %d interrupted by the kill and retried", len(jobs), retried)
	if victim != "" && retried == 0 {
		t.Errorf("job %s ran on the killed leader, yet no job was interrupted and retried", victim)
	}
}
