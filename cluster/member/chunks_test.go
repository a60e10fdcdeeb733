package member

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/meta"
	"github.com/cairnhq/cairn/cluster/store"
)

// holders counts, for each chunk, the members whose local store holds it.
func holders(t *testing.T, ids []chunk.ID, stores ...store.Store) map[int]int {
	t.Helper()
	count := map[int]int{} // copies → chunks with that many
	for _, id := range ids {
		n := 0
		for _, st := range stores {
			if has, err := st.Has(context.Background(), []chunk.ID{id}); err == nil && has[0] {
				n++
			}
		}
		count[n]++
	}
	return count
}

// threeMembers starts a cluster of three members over memory stores.
func threeMembers(t *testing.T) ([]*Member, []*store.Memory) {
	t.Helper()
	ctx := context.Background()
	base := t.TempDir()
	stores := []*store.Memory{store.NewMemory(store.Options{}), store.NewMemory(store.Options{}), store.NewMemory(store.Options{})}
	var ms []*Member
	for i := range 3 {
		cfg := Config{Dir: filepath.Join(base, fmt.Sprint(i)), Listen: "127.0.0.1:0", Store: stores[i], Raft: fastRaft(),
			Probe: 100e6, DeadAfter: 800e6, HealEvery: 200e6}
		if i > 0 {
			tok, _, err := ms[0].IssueJoinToken(ctx)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Join, cfg.Token = ms[0].Address(), tok
		}
		m, err := Start(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		m.SetSecret(make([]byte, 32))
		if err := m.Ready(ctx); err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	poll(t, "every member maps three nodes", func() bool {
		for _, m := range ms {
			if len(m.chunks.store.Map().Nodes) != 3 {
				return false
			}
		}
		return true
	})
	return ms, stores
}

func putChunks(t *testing.T, m *Member, n int, tag string) []chunk.ID {
	t.Helper()
	key, err := chunk.NewKey(chunk.KeyID{1}, make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	var ids []chunk.ID
	for i := range n {
		plain := []byte(fmt.Sprintf("%s chunk %d", tag, i))
		id := key.Sum(plain)
		sealed, err := key.Seal(nil, id, plain)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Chunks().Put(context.Background(), id, sealed); err != nil {
			t.Fatalf("put through %s: %v", m.ID(), err)
		}
		ids = append(ids, id)
	}
	return ids
}

// TestRemoveDrainsFirst: a removed member's chunks move to the others
// before it leaves the membership and Raft, and nothing is lost.
func TestRemoveDrainsFirst(t *testing.T) {
	ctx := context.Background()
	ms, stores := threeMembers(t)
	ids := putChunks(t, ms[0], 50, "drain")
	gone := ms[2]
	if err := ms[1].Remove(ctx, gone.ID()); err != nil {
		t.Fatal(err)
	}
	poll(t, "the drained member leaves", func() bool {
		st := statusOf(t, ms[0])
		servers, err := ms[0].Catalog().Servers()
		_, inRaft := servers[gone.ID()]
		return len(st.Nodes) == 2 && err == nil && !inRaft
	})
	if got := holders(t, ids, stores[0], stores[1]); got[2] != len(ids) {
		t.Fatalf("copies per chunk on the remaining two: %v, want all %d on both", got, len(ids))
	}
	if got := holders(t, ids, stores[2]); got[0] != len(ids) {
		t.Fatalf("the drained member still holds chunks: %v", got)
	}
	if err := ms[0].Remove(ctx, "node-nobody"); !errors.Is(err, meta.ErrNotFound) {
		t.Fatalf("remove an unknown node: %v, want ErrNotFound", err)
	}
}

// TestChunksSurviveAMember: chunks written through any member land on
// three nodes; with one member stopped, writes still succeed on two and
// reads fail over; once it is back, healing brings every chunk back to
// three copies.
func TestChunksSurviveAMember(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	stores := []*store.Memory{store.NewMemory(store.Options{}), store.NewMemory(store.Options{}), store.NewMemory(store.Options{})}
	startWith := func(i int, listen, join, token string) *Member {
		m, err := Start(ctx, Config{Dir: filepath.Join(base, fmt.Sprint(i)), Listen: listen, Join: join, Token: token,
			Store: stores[i], Raft: fastRaft(), Probe: 100e6, DeadAfter: 800e6, HealEvery: 200e6})
		if err != nil {
			t.Fatal(err)
		}
		m.SetSecret(make([]byte, 32))
		return m
	}
	m0 := startWith(0, "127.0.0.1:0", "", "")
	defer func() { m0.Close() }()
	if _, err := m0.Catalog().WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	var ms []*Member
	ms = append(ms, m0)
	for i := 1; i < 3; i++ {
		tok, _, err := m0.IssueJoinToken(ctx)
		if err != nil {
			t.Fatal(err)
		}
		m := startWith(i, "127.0.0.1:0", m0.Address(), tok)
		ms = append(ms, m)
	}
	defer func() {
		for _, m := range ms[1:] {
			m.Close()
		}
	}()
	for _, m := range ms {
		if err := m.Ready(ctx); err != nil {
			t.Fatal(err)
		}
	}
	poll(t, "every member maps three nodes", func() bool {
		for _, m := range ms {
			if len(m.chunks.store.Map().Nodes) != 3 {
				return false
			}
		}
		return true
	})

	key, err := chunk.NewKey(chunk.KeyID{1}, make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	put := func(m *Member, n int, tag string) []chunk.ID {
		var ids []chunk.ID
		for i := range n {
			plain := []byte(fmt.Sprintf("%s chunk %d", tag, i))
			id := key.Sum(plain)
			sealed, err := key.Seal(nil, id, plain)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := m.Chunks().Put(ctx, id, sealed); err != nil {
				t.Fatalf("put through %s: %v", m.ID(), err)
			}
			ids = append(ids, id)
		}
		return ids
	}
	first := put(ms[1], 60, "first")
	if got := holders(t, first, stores[0], stores[1], stores[2]); got[3] != 60 {
		t.Fatalf("copies per chunk: %v, want all 60 on 3 nodes", got)
	}

	leader := ms[0].Catalog().Leader()
	vi := 2
	if ms[vi].ID() == leader {
		vi = 1
	}
	victim := ms[vi]
	addr, dir := victim.Address(), victim.cfg.Dir
	victim.Close()
	writer := ms[3-vi]
	second := put(writer, 40, "second") // two owners of three acknowledge
	for _, id := range first[:10] {
		if _, err := writer.Chunks().Get(ctx, id); err != nil {
			t.Fatalf("read with a member down: %v", err)
		}
	}
	poll(t, "the stopped member is declared down", func() bool {
		state, _ := nodeState(statusOf(t, writer), victim.ID())
		return state == meta.NodeDown
	})

	back, err := Start(ctx, Config{Dir: dir, Listen: addr, Store: stores[vi], Raft: fastRaft(), Probe: 100e6, DeadAfter: 800e6, HealEvery: 200e6})
	if err != nil {
		t.Fatal(err)
	}
	ms[vi] = back
	all := append(append([]chunk.ID{}, first...), second...)
	poll(t, "every chunk is back on three nodes", func() bool {
		return holders(t, all, stores[0], stores[1], stores[2])[3] == len(all)
	})
	poll(t, "status reports nothing under-replicated", func() bool {
		st := statusOf(t, writer)
		return st.UnderReplicatedChunks == 0 && len(st.Nodes) == 3
	})
}
