package member

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/cairnhq/cairn/cluster/meta"
)

func fastRaft() *raft.Config {
	c := raft.DefaultConfig()
	c.HeartbeatTimeout = 400 * time.Millisecond
	c.ElectionTimeout = 400 * time.Millisecond
	c.LeaderLeaseTimeout = 200 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	return c
}

func start(t *testing.T, dir, join, token string) *Member {
	t.Helper()
	return startAt(t, dir, "127.0.0.1:0", join, token)
}

func startAt(t *testing.T, dir, listen, join, token string) *Member {
	t.Helper()
	m, err := Start(context.Background(), Config{Dir: dir, Listen: listen, Join: join, Token: token,
		API: "127.0.0.1:9", Raft: fastRaft(), Probe: 100 * time.Millisecond, DeadAfter: 600 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	m.SetSecret([]byte("0123456789abcdef0123456789abcdef"))
	return m
}

// poll retries cond until it holds or the deadline passes.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func statusOf(t *testing.T, m *Member) Status {
	t.Helper()
	st, err := m.Status(context.Background())
	if err != nil {
		return Status{}
	}
	return st
}

func nodeState(st Status, id string) (string, bool) {
	for _, n := range st.Nodes {
		if n.ID == id {
			return n.State, n.Healthy
		}
	}
	return "", false
}

func TestClusterLifecycle(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	m1 := start(t, filepath.Join(base, "n1"), "", "")
	defer func() { m1.Close() }()
	if _, err := m1.Catalog().WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	poll(t, "the first member registers itself", func() bool { return len(statusOf(t, m1).Nodes) == 1 })

	token, _, err := m1.IssueJoinToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m2 := start(t, filepath.Join(base, "n2"), m1.Address(), token)
	defer func() { m2.Close() }()
	if string(m2.JoinedSecret()) != "0123456789abcdef0123456789abcdef" {
		t.Fatal("the joining node did not receive the appliance secret")
	}

	// A used token is refused, and so is one whose fingerprint names
	// another cluster; neither leaves anything behind.
	if _, err := Start(ctx, Config{Dir: filepath.Join(base, "again"), Listen: "127.0.0.1:0", Join: m1.Address(), Token: token}); err == nil || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("second use of a token: %v", err)
	}
	forged := token[:strings.LastIndex(token, ".")+1] + strings.Repeat("ab", 32)
	if _, err := Start(ctx, Config{Dir: filepath.Join(base, "forged"), Listen: "127.0.0.1:0", Join: m1.Address(), Token: forged}); err == nil || !strings.Contains(err.Error(), "does not match the join token") {
		t.Fatalf("token naming another cluster: %v", err)
	}

	// The third node joins through a follower, which passes the request on.
	token3, _, err := m2.IssueJoinToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	follower := m2
	if m2.Catalog().IsLeader() {
		follower = m1
	}
	m3 := start(t, filepath.Join(base, "n3"), follower.Address(), token3)
	defer func() { m3.Close() }()

	poll(t, "three healthy members", func() bool {
		st := statusOf(t, m3)
		if len(st.Nodes) != 3 {
			return false
		}
		for _, n := range st.Nodes {
			if !n.Healthy || n.State != meta.NodeActive || !n.Voter {
				return false
			}
		}
		return st.Leader != ""
	})

	// A write on any member is readable there at once.
	for i, m := range []*Member{m1, m2, m3} {
		name := "src" + string(rune('a'+i))
		if err := m.Catalog().AddSource(ctx, meta.Source{Name: name, Kind: "file", Tenant: "t"}); err != nil {
			t.Fatalf("write through %s: %v", m.ID(), err)
		}
		if _, err := m.Catalog().Source(ctx, name); err != nil {
			t.Fatalf("read own write on %s: %v", m.ID(), err)
		}
	}

	// A member that stops is declared down after DeadAfter, and active
	// again when it comes back.
	leaderID := statusOf(t, m1).Leader
	victim := m3
	if victim.ID() == leaderID {
		victim = m2
	}
	victimID, victimDir, victimAddr := victim.ID(), victim.cfg.Dir, victim.Address()
	// A job the victim was running when it stopped.
	if err := victim.Catalog().PutJob(ctx, meta.Job{ID: "job-on-victim", Kind: meta.JobBackup, State: meta.JobRunning,
		Node: victimID, Created: time.Now(), Started: time.Now()}); err != nil {
		t.Fatal(err)
	}
	victim.Close()
	watcher := m1
	if watcher == victim {
		watcher = m2
	}
	poll(t, "the stopped member is declared down", func() bool {
		state, healthy := nodeState(statusOf(t, watcher), victimID)
		return state == meta.NodeDown && !healthy
	})
	poll(t, "the down node's running job is interrupted", func() bool {
		j, err := watcher.Catalog().Job(ctx, "job-on-victim")
		return err == nil && j.State == meta.JobInterrupted
	})
	back := startAt(t, victimDir, victimAddr, "", "")
	defer back.Close()
	if back.ID() != victimID {
		t.Fatalf("restarted member has ID %s, want %s", back.ID(), victimID)
	}
	poll(t, "the member is back", func() bool {
		state, healthy := nodeState(statusOf(t, watcher), victimID)
		return state == meta.NodeActive && healthy
	})
	if _, err := back.Catalog().Source(ctx, "srcc"); err != nil && !errors.Is(err, meta.ErrNotFound) {
		t.Fatal(err)
	}
	poll(t, "the restarted member catches up", func() bool {
		_, err := back.Catalog().Source(ctx, "srcc")
		return err == nil
	})
}
