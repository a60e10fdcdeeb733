package replica_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/peer"
	"github.com/cairnhq/cairn/cluster/peer/peertest"
	"github.com/cairnhq/cairn/cluster/placement"
	"github.com/cairnhq/cairn/cluster/replica"
	"github.com/cairnhq/cairn/cluster/store"
	"github.com/cairnhq/cairn/cluster/store/storetest"
)

// TestConformance holds a Store over three nodes (one local, two over the
// network, Memory stores) to the store.Store contract.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		ca := peertest.NewCA(t, "c1")
		m := placement.Map{Epoch: 1}
		local := store.NewMemory(store.Options{})
		stores := map[string]store.Store{"n1": local}
		for _, id := range []string{"n2", "n3"} {
			mem := store.NewMemory(store.Options{})
			t.Cleanup(func() { mem.Close() })
			stores[id] = peertest.Serve(t, ca, id, mem, peer.ServerOptions{}).Client(t, "n1", peer.ClientOptions{})
		}
		for _, id := range []string{"n1", "n2", "n3"} {
			m.Nodes = append(m.Nodes, placement.Node{ID: id, Weight: 1})
		}
		s, err := replica.New(m, func(id string) (store.Store, error) { return stores[id], nil }, replica.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { local.Close() })
		return s
	})
}

func chunks(t testing.TB, seed uint64, n int) []storetest.Chunk {
	return storetest.NewMaker(t, 3, seed).Chunks(t, n, 512)
}

// TestNodeDown: reads fail over, writes fail naming the node (or succeed
// with fewer acks and leave a deficit Scan sees), and Repair makes it whole
// once the node is back.
func TestNodeDown(t *testing.T) {
	c := newCluster(t, 4, false)
	s := c.store(replica.Options{})
	cs := chunks(t, 1, 2000)
	ingest(t, s, cs)
	total := 0
	for id := range c.stores {
		total += c.count(id)
	}
	if total != 3*len(cs) {
		t.Fatalf("%d copies of %d chunks, want 3 each", total, len(cs))
	}
	c.exactlyOnOwners(c.m, cs)

	const down = "n2"
	c.served[down].Stop()
	readAll(t, s, cs)

	ctx := context.Background()
	var onDown storetest.Chunk
	for _, ch := range chunks(t, 2, 100) {
		if c.m.IsOwner(ch.ID, down) {
			onDown = ch
			break
		}
	}
	_, err := s.Put(ctx, onDown.ID, onDown.Sealed)
	if !errors.Is(err, replica.ErrShort) || !strings.Contains(err.Error(), "node "+down) {
		t.Fatalf("put to an owner that is down: %v, want ErrShort naming %s", err, down)
	}
	t.Logf("put with %s down: %v", down, err)
	if _, err := s.Has(ctx, []chunk.ID{cs[0].ID, onDown.ID}); !errors.Is(err, replica.ErrShort) {
		t.Fatalf("has with an owner down: %v, want ErrShort", err)
	}

	// Two acks of three: writes go on, and the deficit is visible.
	two := c.store(replica.Options{MinAcks: 2})
	more := chunks(t, 3, 300)
	ingest(t, two, more)
	var fresh storetest.Chunk // never written
	for _, ch := range chunks(t, 8, 100) {
		if c.m.IsOwner(ch.ID, down) {
			fresh = ch
			break
		}
	}
	has, err := two.Has(ctx, []chunk.ID{more[0].ID, fresh.ID})
	if err != nil || !has[0] || has[1] {
		t.Fatalf("has with MinAcks 2 and an owner down: %v %v, want [true false]", has, err)
	}
	var p replica.Progress
	err = two.Scan(ctx, &p, nil)
	if !errors.Is(err, replica.ErrUnavailable) || !strings.Contains(err.Error(), down) {
		t.Fatalf("scan with a node down: %v, want ErrUnavailable naming %s", err, down)
	}
	owned := 0 // chunks with a replica on the node that is down
	var short []storetest.Chunk
	for _, ch := range append(cs, more...) {
		if c.m.IsOwner(ch.ID, down) {
			owned++
		}
	}
	owned++ // onDown, stored on the owners that were up
	short = append(short, onDown)
	for _, ch := range more {
		if c.m.IsOwner(ch.ID, down) {
			short = append(short, ch)
		}
	}
	if got := p.UnderReplicated.Load(); got != int64(owned) {
		t.Fatalf("scan with %s down: %d under-replicated, want the %d it owns", down, got, owned)
	}

	c.served[down].Start(t)
	p = replica.Progress{}
	if err := two.Scan(ctx, &p, nil); err != nil {
		t.Fatal(err)
	}
	if got := p.UnderReplicated.Load(); got != int64(len(short)) {
		t.Fatalf("scan after %s came back: %d under-replicated, want the %d written while it was down", down, got, len(short))
	}
	p = replica.Progress{}
	if err := s.Repair(ctx, &p); err != nil {
		t.Fatal(err)
	}
	if p.Copied.Load() != int64(len(short)) || p.Deleted.Load() != 0 || p.Failed.Load() != 0 {
		t.Fatalf("repair copied %d, deleted %d, failed %d; want %d, 0, 0", p.Copied.Load(), p.Deleted.Load(), p.Failed.Load(), len(short))
	}
	c.exactlyOnOwners(c.m, append(append(cs, more...), onDown))
	p = replica.Progress{}
	if err := s.Scan(ctx, &p, nil); err != nil || p.UnderReplicated.Load() != 0 || p.Scanned.Load() != int64(len(cs)+len(more)+1) {
		t.Fatalf("scan after repair: %v, %d of %d under-replicated", err, p.UnderReplicated.Load(), p.Scanned.Load())
	}
	t.Logf("%d chunks: %d owned by the stopped node, %d written on two acks and repaired", len(cs)+len(more), owned, len(short))
}

// TestRebalance adds a node: about 1/n of the replicas move to it, and
// each is deleted from its old node only once every owner holds it.
func TestRebalance(t *testing.T) {
	c := newCluster(t, 4, false)
	s := c.store(replica.Options{})
	cs := chunks(t, 4, 2000)
	ingest(t, s, cs)
	old := c.m

	c.add("n5", false)
	c.m.Epoch = 2
	if err := s.SetMap(c.m); err != nil {
		t.Fatal(err)
	}
	readAll(t, s, cs[:200]) // before any move: read from the old owners
	var p replica.Progress
	if err := s.Rebalance(context.Background(), &p); err != nil {
		t.Fatal(err)
	}
	replicas := 3 * len(cs)
	moved := float64(p.Copied.Load()) / float64(replicas)
	t.Logf("adding a 5th node moved %d of %d replicas (%.3f, ideal 0.200)", p.Copied.Load(), replicas, moved)
	if moved < 0.17 || moved > 0.23 {
		t.Fatalf("moved %.3f of the replicas, want about 1/5", moved)
	}
	if p.Deleted.Load() != p.Copied.Load() || int64(c.count("n5")) != p.Copied.Load() || p.Failed.Load() != 0 {
		t.Fatalf("copied %d, deleted %d, n5 holds %d, failed %d", p.Copied.Load(), p.Deleted.Load(), c.count("n5"), p.Failed.Load())
	}
	c.exactlyOnOwners(c.m, cs)
	readAll(t, s, cs)

	// An older map is refused.
	if err := s.SetMap(old); !errors.Is(err, replica.ErrStaleMap) {
		t.Fatalf("set an older map: %v, want ErrStaleMap", err)
	}
}

// TestDrain empties a node being removed; everything stays readable with
// full replica count.
func TestDrain(t *testing.T) {
	c := newCluster(t, 5, false)
	s := c.store(replica.Options{})
	cs := chunks(t, 5, 2000)
	ingest(t, s, cs)
	ctx := context.Background()
	if err := s.Drain(ctx, "n3", nil); err == nil || !strings.Contains(err.Error(), "draining") {
		t.Fatalf("drain of a healthy node: %v", err)
	}
	held := c.count("n3")
	c.m.Nodes[2].State = placement.Draining
	c.m.Epoch = 2
	if err := s.SetMap(c.m); err != nil {
		t.Fatal(err)
	}
	var p replica.Progress
	if err := s.Drain(ctx, "n3", &p); err != nil {
		t.Fatal(err)
	}
	if c.count("n3") != 0 || p.Deleted.Load() != int64(held) || p.Copied.Load() != int64(held) {
		t.Fatalf("n3 held %d: now %d, copied %d, deleted %d", held, c.count("n3"), p.Copied.Load(), p.Deleted.Load())
	}
	t.Logf("drained %d chunks off n3", held)
	c.exactlyOnOwners(c.m, cs)
	readAll(t, s, cs)
	p = replica.Progress{}
	if err := s.Scan(ctx, &p, nil); err != nil || p.UnderReplicated.Load() != 0 || p.Misplaced.Load() != 0 {
		t.Fatalf("scan after drain: %v, %d under-replicated, %d misplaced", err, p.UnderReplicated.Load(), p.Misplaced.Load())
	}
}

// TestCorruptCopy: a copy rotten on disk is skipped by Get and reported;
// once quarantined, Repair puts a good copy back.
func TestCorruptCopy(t *testing.T) {
	c := newCluster(t, 3, false)
	var mu sync.Mutex
	var reports []string
	s := c.store(replica.Options{Corrupt: func(node string, id chunk.ID, err error) {
		mu.Lock()
		defer mu.Unlock()
		if !errors.Is(err, chunk.ErrCorrupt) {
			t.Errorf("report for %s on %s is not ErrCorrupt: %v", id.Short(), node, err)
		}
		reports = append(reports, node+" "+id.Short())
	}})
	cs := chunks(t, 6, 20)
	ingest(t, s, cs)
	ctx := context.Background()
	ch := cs[7]
	primary := c.m.Owners(ch.ID)[0]
	other := c.m.Owners(ch.ID)[1]
	c.rot(primary, ch)
	if _, err := c.stores[primary].Get(ctx, ch.ID); !errors.Is(err, chunk.ErrCorrupt) {
		t.Fatalf("test setup: the rotten copy reads %v", err)
	}
	got, err := s.Get(ctx, ch.ID)
	if err != nil || !bytes.Equal(got, ch.Sealed) {
		t.Fatalf("get with a rotten primary copy: %v", err)
	}
	if len(reports) != 1 || reports[0] != primary+" "+ch.ID.Short() {
		t.Fatalf("reports %v, want one for %s on %s", reports, ch.ID.Short(), primary)
	}

	// A copy that passes the CRC but not the caller's own check (it would
	// not unseal) is skipped too.
	_, err = s.GetVerified(ctx, ch.ID, func(b []byte) error {
		return errors.New("key gone")
	})
	if err == nil || errors.Is(err, chunk.ErrCorrupt) {
		t.Fatalf("verify failing for want of a key: %v, want that error and no failover", err)
	}
	calls := 0
	got, err = s.GetVerified(ctx, ch.ID, func(b []byte) error {
		if calls++; calls == 1 {
			return chunk.ErrCorrupt
		}
		return nil
	})
	if err != nil || !bytes.Equal(got, ch.Sealed) || calls != 2 || len(reports) != 4 {
		t.Fatalf("verify rejecting the first good copy: %v after %d calls, reports %v", err, calls, reports)
	}
	if reports[3] != other+" "+ch.ID.Short() {
		t.Fatalf("reports %v, want the last for %s", reports, other)
	}

	// Quarantine: the caller deletes the bad copy; Repair restores it.
	if err := c.stores[primary].Delete(ctx, []chunk.ID{ch.ID}); err != nil {
		t.Fatal(err)
	}
	var p replica.Progress
	if err := s.Repair(ctx, &p); err != nil || p.Copied.Load() != 1 {
		t.Fatalf("repair: %v, copied %d, want 1", err, p.Copied.Load())
	}
	if got, err := c.stores[primary].Get(ctx, ch.ID); err != nil || !bytes.Equal(got, ch.Sealed) {
		t.Fatalf("primary copy after repair: %v", err)
	}

	// Every copy rotten: Get says so.
	for _, n := range c.m.Owners(ch.ID) {
		c.rot(n, ch)
	}
	if _, err := s.Get(ctx, ch.ID); !errors.Is(err, chunk.ErrCorrupt) {
		t.Fatalf("get with every copy rotten: %v, want ErrCorrupt", err)
	}
}

// TestHasHeals: a chunk short of a replica is absent to Has (by default),
// so the writer uploads it again, which heals it.
func TestHasHeals(t *testing.T) {
	c := newCluster(t, 3, false)
	s := c.store(replica.Options{})
	cs := chunks(t, 7, 3)
	ingest(t, s, cs)
	ctx := context.Background()
	ids := []chunk.ID{cs[0].ID, cs[1].ID, cs[2].ID}
	if err := c.stores["n3"].Delete(ctx, ids[1:2]); err != nil {
		t.Fatal(err)
	}
	has, err := s.Has(ctx, ids)
	if err != nil || !has[0] || has[1] || !has[2] {
		t.Fatalf("has with one replica missing: %v %v, want [true false true]", has, err)
	}
	if h, err := c.store(replica.Options{MinAcks: 2}).Has(ctx, ids); err != nil || !h[1] {
		t.Fatalf("has with MinAcks 2 and one replica missing: %v %v", h, err)
	}
	if stored, err := s.Put(ctx, cs[1].ID, cs[1].Sealed); err != nil || stored {
		t.Fatalf("put again: stored %v, %v; want false (the primary had it)", stored, err)
	}
	if has, _ := s.Has(ctx, ids); !has[1] {
		t.Fatal("the second put did not heal the missing replica")
	}
}
