package replica_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/peer"
	"github.com/cairnhq/cairn/cluster/peer/peertest"
	"github.com/cairnhq/cairn/cluster/placement"
	"github.com/cairnhq/cairn/cluster/replica"
	"github.com/cairnhq/cairn/cluster/store"
	"github.com/cairnhq/cairn/cluster/store/storetest"
)

// cluster is N in-process nodes, each a Local store in its own directory
// served over mutual TLS on 127.0.0.1. Node n1 is the writer: it reaches its
// own store directly and the others through peer clients.
type cluster struct {
	t       testing.TB
	ca      *peertest.CA
	served  map[string]*peertest.Node
	stores  map[string]*store.Local
	dirs    map[string]string
	clients map[string]*peer.Client
	m       placement.Map
}

const self = "n1"

func newCluster(t testing.TB, n int, sync bool) *cluster {
	c := &cluster{
		t: t, ca: peertest.NewCA(t, "c1"),
		served: map[string]*peertest.Node{}, stores: map[string]*store.Local{},
		dirs: map[string]string{}, clients: map[string]*peer.Client{},
		m: placement.Map{Epoch: 1},
	}
	for i := 1; i <= n; i++ {
		c.add(fmt.Sprintf("n%d", i), sync)
	}
	return c
}

// add starts a node and puts it in the map (not yet given to any Store).
func (c *cluster) add(id string, sync bool) {
	dir := c.t.TempDir()
	st, err := store.Open(dir, store.Options{NoSync: !sync})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { st.Close() })
	c.stores[id], c.dirs[id] = st, dir
	n := peertest.Serve(c.t, c.ca, id, st, peer.ServerOptions{})
	c.served[id] = n
	c.clients[id] = n.Client(c.t, self, peer.ClientOptions{})
	c.m.Nodes = append(c.m.Nodes, placement.Node{ID: id, Weight: 1})
}

// nodes reaches n1 directly and the rest over the network.
func (c *cluster) nodes(id string) (store.Store, error) {
	if id == self {
		return c.stores[id], nil
	}
	cl, ok := c.clients[id]
	if !ok {
		return nil, fmt.Errorf("no such node %s", id)
	}
	return cl, nil
}

func (c *cluster) store(opts replica.Options) *replica.Store {
	s, err := replica.New(c.m, c.nodes, opts)
	if err != nil {
		c.t.Fatal(err)
	}
	return s
}

// count returns how many chunks node id holds.
func (c *cluster) count(id string) int {
	n := 0
	if err := c.stores[id].Walk(context.Background(), func(chunk.ID, store.Info) error { n++; return nil }); err != nil {
		c.t.Fatal(err)
	}
	return n
}

// exactlyOnOwners fails unless every chunk is on each of its owners under m
// and on no other node.
func (c *cluster) exactlyOnOwners(m placement.Map, cs []storetest.Chunk) {
	c.t.Helper()
	ids := make([]chunk.ID, len(cs))
	for i, ch := range cs {
		ids[i] = ch.ID
	}
	for id, st := range c.stores {
		has, err := st.Has(context.Background(), ids)
		if err != nil {
			c.t.Fatal(err)
		}
		bad := 0
		for i, ok := range has {
			if ok != m.IsOwner(ids[i], id) {
				bad++
			}
		}
		if bad > 0 {
			c.t.Fatalf("node %s: %d of %d chunks where the map does not put them", id, bad, len(ids))
		}
	}
}

// ingest puts chunks through s in batches.
func ingest(t testing.TB, s *replica.Store, cs []storetest.Chunk) {
	t.Helper()
	const batch = 250
	for lo := 0; lo < len(cs); lo += batch {
		part := cs[lo:min(lo+batch, len(cs))]
		ids := make([]chunk.ID, len(part))
		sealed := make([][]byte, len(part))
		for i, ch := range part {
			ids[i], sealed[i] = ch.ID, ch.Sealed
		}
		stored, err := s.PutBatch(context.Background(), ids, sealed)
		if err != nil {
			t.Fatal(err)
		}
		for i, ok := range stored {
			if !ok {
				t.Fatalf("new chunk %s reported as already stored", ids[i].Short())
			}
		}
	}
}

// readAll checks that every chunk reads back through s.
func readAll(t testing.TB, s *replica.Store, cs []storetest.Chunk) {
	t.Helper()
	for _, ch := range cs {
		got, err := s.Get(context.Background(), ch.ID)
		if err != nil {
			t.Fatalf("get %s: %v", ch.ID.Short(), err)
		}
		if !bytes.Equal(got, ch.Sealed) {
			t.Fatalf("get %s: wrong bytes", ch.ID.Short())
		}
	}
}

// rot flips a byte of id's sealed bytes where node's store keeps them on
// disk, as bit rot would.
func (c *cluster) rot(node string, ch storetest.Chunk) {
	c.t.Helper()
	segs, err := filepath.Glob(filepath.Join(c.dirs[node], "segments", "*"))
	if err != nil || len(segs) == 0 {
		c.t.Fatalf("segments of %s: %v %v", node, segs, err)
	}
	sort.Strings(segs)
	for _, p := range segs {
		b, err := os.ReadFile(p)
		if err != nil {
			c.t.Fatal(err)
		}
		if i := bytes.Index(b, ch.Sealed); i >= 0 {
			off := i + len(ch.Sealed)/2
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err == nil {
				_, err = f.WriteAt([]byte{b[off] ^ 0x08}, int64(off))
				err = errors.Join(err, f.Close())
			}
			if err != nil {
				c.t.Fatal(err)
			}
			return
		}
	}
	c.t.Fatalf("chunk %s not found in the segments of %s", ch.ID.Short(), node)
}
