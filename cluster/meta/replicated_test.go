package meta_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/cairnhq/cairn/cluster/meta"
	"github.com/cairnhq/cairn/cluster/meta/metatest"
)

// fastRaft shortens Raft's timeouts so elections take milliseconds.
func fastRaft() *raft.Config {
	c := raft.DefaultConfig()
	c.HeartbeatTimeout = 50 * time.Millisecond
	c.ElectionTimeout = 50 * time.Millisecond
	c.LeaderLeaseTimeout = 50 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	return c
}

// waitLeader waits, up to a deadline, until r knows a leader.
func waitLeader(t *testing.T, r *meta.Replicated) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := r.WaitLeader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func openReplicated(t *testing.T, dir string, opts meta.ReplicatedOptions) *meta.Replicated {
	t.Helper()
	if opts.Config == nil {
		opts.Config = fastRaft()
	}
	r, err := meta.OpenReplicated(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestReplicatedConformance(t *testing.T) {
	metatest.Run(t, func(t *testing.T) metatest.Catalog {
		_, trans := raft.NewInmemTransport("")
		r := openReplicated(t, t.TempDir(), meta.ReplicatedOptions{ID: "n1", Transport: trans, Bootstrap: true})
		if id := waitLeader(t, r); id != "n1" {
			t.Fatalf("leader of a one-member cluster = %q", id)
		}
		return r
	})
}

// TestReplicatedReopen runs a one-member cluster on loopback TCP, restarts
// it and finds what it wrote.
func TestReplicatedReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// Snapshot at once and keep no log behind it, so the reopened member
	// can only find its state through the snapshot.
	cfg := fastRaft()
	cfg.SnapshotThreshold = 1
	cfg.SnapshotInterval = 20 * time.Millisecond
	cfg.TrailingLogs = 0
	opts := meta.ReplicatedOptions{ID: "n1", Bootstrap: true, Config: cfg}
	r, err := meta.OpenReplicated(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	waitLeader(t, r)
	src := meta.Source{Name: "nas", Kind: "file", Tenant: "acme", Created: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)}
	if err := r.AddSource(ctx, src); err != nil {
		t.Fatal(err)
	}
	if err := r.SetNode(ctx, meta.Node{ID: "n1", Address: r.Addr(), State: meta.NodeActive}); err != nil {
		t.Fatal(err)
	}
	pollSnapshot(t, dir, 2)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.AddSource(ctx, src); !errors.Is(err, meta.ErrClosed) {
		t.Errorf("AddSource after Close = %v, want ErrClosed", err)
	}
	if _, err := r.Sources(ctx); !errors.Is(err, meta.ErrClosed) {
		t.Errorf("Sources after Close = %v, want ErrClosed", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}

	r = openReplicated(t, dir, opts)
	waitLeader(t, r)
	if got, err := r.Source(ctx, "nas"); err != nil || got.Tenant != "acme" {
		t.Errorf("source after reopen = %+v, %v", got, err)
	}
	if m, err := r.Membership(ctx); err != nil || m.Epoch != 1 || len(m.Nodes) != 1 {
		t.Errorf("membership after reopen = %+v, %v", m, err)
	}
}

// TestReplicatedThreeMembers elects a leader among three members, writes
// through it, sees the write on the followers, stops the leader and writes
// through the next one.
func TestReplicatedThreeMembers(t *testing.T) {
	ctx := context.Background()
	members := threeMembers(t, nil)

	leader := pollLeader(t, members)
	addSource := func(r *meta.Replicated, name string) error {
		return r.AddSource(ctx, meta.Source{Name: name, Kind: "file", Tenant: "acme"})
	}
	if err := addSource(members[leader], "first"); err != nil {
		t.Fatal(err)
	}
	for id, r := range members {
		if id == leader {
			continue
		}
		if err := addSource(r, "on-follower"); !errors.Is(err, meta.ErrNotLeader) {
			t.Errorf("write on follower %s = %v, want ErrNotLeader", id, err)
		}
		pollSource(t, r, "first")
	}

	members[leader].Close()
	delete(members, leader)
	next := pollLeader(t, members)
	if next == leader {
		t.Fatalf("stopped member %s still leads", leader)
	}
	if err := addSource(members[next], "second"); err != nil {
		t.Fatal(err)
	}
	for _, r := range members {
		pollSource(t, r, "second")
		pollSource(t, r, "first")
	}
}

// threeMembers bootstraps a cluster of three members, n1 to n3, over
// raft's in-memory transport, with forward as their Forwarder.
func threeMembers(t *testing.T, forward meta.Forwarder) map[string]*meta.Replicated {
	t.Helper()
	ids := []string{"n1", "n2", "n3"}
	trans := map[string]*raft.InmemTransport{}
	for _, id := range ids {
		_, trans[id] = raft.NewInmemTransport(raft.ServerAddress(id))
	}
	for _, a := range ids {
		for _, b := range ids {
			if a != b {
				trans[a].Connect(raft.ServerAddress(b), trans[b])
			}
		}
	}
	members := map[string]*meta.Replicated{}
	for _, id := range ids {
		var peers []meta.Peer
		for _, p := range ids {
			if p != id {
				peers = append(peers, meta.Peer{ID: p, Address: p})
			}
		}
		members[id] = openReplicated(t, filepath.Join(t.TempDir(), id), meta.ReplicatedOptions{
			ID: id, Transport: trans[id], Bootstrap: true, Peers: peers, Forward: forward,
		})
	}
	return members
}

// pollLeader waits, up to a deadline, until every member agrees on a leader
// among them, and returns it after waiting for it to be ready.
func pollLeader(t *testing.T, members map[string]*meta.Replicated) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		agreed := ""
		for _, r := range members {
			id := r.Leader()
			if id == "" || (agreed != "" && id != agreed) {
				agreed = ""
				break
			}
			agreed = id
		}
		if l, ok := members[agreed]; ok {
			waitLeader(t, l)
			return agreed
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no leader agreed among %d members within the deadline", len(members))
	return ""
}

// pollSource waits, up to a deadline, until r has applied the source.
func pollSource(t *testing.T, r *meta.Replicated, name string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := r.Source(context.Background(), name); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal(fmt.Errorf("source %s did not reach member within the deadline", name))
}

// pollSnapshot waits, up to a deadline, until the member in dir has written
// a snapshot covering at least n commands after its bootstrap entry.
func pollSnapshot(t *testing.T, dir string, n uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		metas, _ := filepath.Glob(filepath.Join(dir, "snapshots", "*", "meta.json"))
		for _, m := range metas {
			b, err := os.ReadFile(m)
			if err != nil {
				continue
			}
			var sm struct{ Index uint64 }
			if json.Unmarshal(b, &sm) == nil && sm.Index >= n+1 {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no snapshot of %d commands in %s within the deadline", n, dir)
}

// TestReplicatedForwarding holds a follower's writes to the package
// contract: they reach the leader through the Forwarder (here a JSON round
// trip, as over the network), are readable on the follower as soon as the
// write returns, and the leader's refusals keep their kind.
func TestReplicatedForwarding(t *testing.T) {
	ctx := context.Background()
	var members map[string]*meta.Replicated
	forward := func(ctx context.Context, addr string, cmd []byte) (meta.Result, uint64, error) {
		if err := meta.CheckCommand(cmd); err != nil {
			t.Errorf("forwarded a command the leader would refuse: %v", err)
		}
		res, index, err := members[addr].ApplyCommand(ctx, cmd)
		b, _ := json.Marshal(meta.EncodeResult(res, index, err))
		w, perr := meta.ParseWireResult(b)
		if perr != nil {
			return meta.Result{}, 0, perr
		}
		if w.Kind == "not_leader" {
			return meta.Result{}, 0, meta.ErrNotLeader
		}
		res, index = w.Decode()
		return res, index, nil
	}
	members = threeMembers(t, forward)
	leader := pollLeader(t, members)
	for id, r := range members {
		if id == leader {
			continue
		}
		name := "from-" + id
		if err := r.AddSource(ctx, meta.Source{Name: name, Kind: "file", Tenant: "acme"}); err != nil {
			t.Fatalf("write through follower %s: %v", id, err)
		}
		if _, err := r.Source(ctx, name); err != nil {
			t.Fatalf("follower %s cannot read its own write at once: %v", id, err)
		}
		err := r.AddSource(ctx, meta.Source{Name: name, Kind: "file", Tenant: "acme"})
		if !errors.Is(err, meta.ErrExists) {
			t.Fatalf("duplicate through follower %s: %v, want ErrExists", id, err)
		}
	}
	if err := meta.CheckCommand([]byte{byte(meta.AddSourceCommand), 1, '{'}); !errors.Is(err, meta.ErrInvalid) {
		t.Fatalf("a body that does not decode: %v, want ErrInvalid", err)
	}
	if err := meta.CheckCommand([]byte{77}); !errors.Is(err, meta.ErrInvalid) {
		t.Fatalf("an unknown type: %v, want ErrInvalid", err)
	}
	if err := meta.CheckCommand([]byte{77 | byte(meta.IgnoreUnknown)}); err != nil {
		t.Fatalf("an unknown optional type: %v, want nil", err)
	}
}
