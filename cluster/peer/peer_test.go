package peer_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/peer"
	"github.com/cairnhq/cairn/cluster/peer/peertest"
	"github.com/cairnhq/cairn/cluster/store"
	"github.com/cairnhq/cairn/cluster/store/storetest"
)

// served returns a client, as node "n2", of st served as node "n1".
func served(t *testing.T, st store.Store, sopts peer.ServerOptions, copts peer.ClientOptions) (*peer.Client, *peertest.Node) {
	t.Helper()
	ca := peertest.NewCA(t, "c1")
	n := peertest.Serve(t, ca, "n1", st, sopts)
	return n.Client(t, "n2", copts), n
}

// remote is a Client whose Close also closes the store behind it, so the
// conformance suite's fresh store per subtest is released.
type remote struct {
	*peer.Client
	st store.Store
}

func (r remote) Close() error {
	err := r.Client.Close()
	r.st.Close()
	return err
}

func TestConformanceMemory(t *testing.T) {
	storetest.RunClock(t, func(t *testing.T, now func() time.Time) store.Store {
		st := store.NewMemory(store.Options{Now: now})
		c, _ := served(t, st, peer.ServerOptions{}, peer.ClientOptions{})
		return remote{c, st}
	})
}

func TestConformanceLocal(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		st, err := store.Open(t.TempDir(), store.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		c, _ := served(t, st, peer.ServerOptions{}, peer.ClientOptions{})
		return remote{c, st}
	})
}

// TestSmallBatches runs the suite with requests split far more finely than
// the server allows, so every batched call goes as many requests.
func TestSmallBatches(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		st := store.NewMemory(store.Options{})
		c, _ := served(t, st, peer.ServerOptions{MaxBatchIDs: 3}, peer.ClientOptions{BatchIDs: 2, BatchBytes: 1})
		return remote{c, st}
	})
}

func TestRefusesForeignCertificate(t *testing.T) {
	st := &counting{Store: store.NewMemory(store.Options{})}
	ca := peertest.NewCA(t, "c1")
	n := peertest.Serve(t, ca, "n1", st, peer.ServerOptions{})
	ctx := context.Background()

	// Same cluster name, another CA: the impostor trusts the real CA, so
	// only its own certificate is at stake.
	other := peertest.NewCA(t, "c1")
	cfg := other.ClientTLS(t, "n2")
	cfg.RootCAs = ca.ClientTLS(t, "n9").RootCAs
	c, err := peer.NewClient("n1", n.Addr, cfg, peer.ClientOptions{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Has(ctx, []chunk.ID{{1}}); !errors.Is(err, peer.ErrUnavailable) {
		t.Errorf("has with another CA's certificate: %v, want a refused connection", err)
	}
	if got := st.calls.Load(); got != 0 {
		t.Errorf("the store was called %d times", got)
	}

	// A client that meant another node refuses this one.
	wrong, err := peer.NewClient("n3", n.Addr, ca.ClientTLS(t, "n2"), peer.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer wrong.Close()
	_, err = wrong.Has(ctx, []chunk.ID{{1}})
	if err == nil || !strings.Contains(err.Error(), "server is node n1, not n3") {
		t.Errorf("client of n3 talking to n1: %v", err)
	}

	// And the genuine article gets through.
	good := n.Client(t, "n2", peer.ClientOptions{})
	if _, err := good.Has(ctx, []chunk.ID{{1}}); err != nil {
		t.Fatalf("has from a cluster node: %v", err)
	}
	if got := st.calls.Load(); got != 1 {
		t.Errorf("store called %d times, want 1", got)
	}
}

func TestPutRefusesCorruptBatchWhole(t *testing.T) {
	st := store.NewMemory(store.Options{})
	c, _ := served(t, st, peer.ServerOptions{}, peer.ClientOptions{})
	mk := storetest.NewMaker(t, 1, 1)
	cs := mk.Chunks(t, 4, 2000)
	ids := []chunk.ID{cs[0].ID, cs[1].ID, cs[2].ID, cs[3].ID}
	bad := bytes.Clone(cs[2].Sealed)
	bad[100] ^= 1 // as if flipped in transit
	ctx := context.Background()
	_, err := c.PutBatch(ctx, ids, [][]byte{cs[0].Sealed, cs[1].Sealed, bad, cs[3].Sealed})
	if !errors.Is(err, chunk.ErrCorrupt) || !strings.Contains(err.Error(), cs[2].ID.Short()) {
		t.Fatalf("put with a corrupt chunk: %v, want ErrCorrupt naming %s", err, cs[2].ID.Short())
	}
	if has, _ := st.Has(ctx, ids); has[0] || has[1] || has[3] {
		t.Fatalf("a refused batch left chunks behind: %v", has)
	}
	stored, err := c.PutBatch(ctx, ids, [][]byte{cs[0].Sealed, cs[1].Sealed, cs[2].Sealed, cs[3].Sealed})
	if err != nil || !stored[0] || !stored[3] {
		t.Fatalf("put of the good batch: %v, %v", stored, err)
	}
	if _, err := c.Put(ctx, chunk.Zero, cs[0].Sealed); err == nil {
		t.Fatal("put under the zero id accepted")
	}
}

func TestClientRefusesCorruptReply(t *testing.T) {
	mem := store.NewMemory(store.Options{})
	c, _ := served(t, &rotting{Store: mem}, peer.ServerOptions{}, peer.ClientOptions{})
	mk := storetest.NewMaker(t, 1, 2)
	a, b := mk.Chunk(t, 3000), mk.Chunk(t, 10)
	ctx := context.Background()
	if _, err := c.PutBatch(ctx, []chunk.ID{a.ID, b.ID}, [][]byte{a.Sealed, b.Sealed}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, a.ID); !errors.Is(err, chunk.ErrCorrupt) {
		t.Fatalf("get of bytes damaged on the way: %v, want ErrCorrupt", err)
	}
	var got []error
	err := c.GetBatch(ctx, []chunk.ID{a.ID, b.ID, {9}}, func(id chunk.ID, sealed []byte, err error) error {
		got = append(got, err)
		return nil
	})
	if err != nil || len(got) != 3 {
		t.Fatalf("get batch: %v, %d answers", err, len(got))
	}
	if !errors.Is(got[0], chunk.ErrCorrupt) || !errors.Is(got[1], chunk.ErrCorrupt) || !errors.Is(got[2], store.ErrNotFound) {
		t.Fatalf("get batch answers %v", got)
	}
}

func TestGetBatch(t *testing.T) {
	mem := store.NewMemory(store.Options{})
	c, _ := served(t, mem, peer.ServerOptions{}, peer.ClientOptions{BatchIDs: 3})
	mk := storetest.NewMaker(t, 1, 3)
	cs := mk.Chunks(t, 7, 5000)
	ctx := context.Background()
	var ids []chunk.ID
	for i, ch := range cs {
		ids = append(ids, ch.ID)
		if i != 4 {
			mem.Put(ctx, ch.ID, ch.Sealed)
		}
	}
	mem.Corrupt(cs[5].ID, 77)
	i := 0
	err := c.GetBatch(ctx, ids, func(id chunk.ID, sealed []byte, err error) error {
		switch {
		case id != ids[i]:
			t.Errorf("answer %d is for %s, want %s", i, id.Short(), ids[i].Short())
		case i == 4:
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("missing chunk: %v", err)
			}
		case i == 5:
			if !errors.Is(err, chunk.ErrCorrupt) || !strings.Contains(err.Error(), "peer n1") {
				t.Errorf("chunk corrupt on the peer: %v", err)
			}
		case err != nil || !bytes.Equal(sealed, cs[i].Sealed):
			t.Errorf("chunk %d: %v", i, err)
		}
		i++
		return nil
	})
	if err != nil || i != len(ids) {
		t.Fatalf("get batch: %v after %d answers", err, i)
	}
	stop := errors.New("enough")
	i = 0
	err = c.GetBatch(ctx, ids, func(chunk.ID, []byte, error) error { i++; return stop })
	if err != stop || i != 1 {
		t.Fatalf("get batch stopped by fn: %v after %d answers", err, i)
	}
}

func TestLimits(t *testing.T) {
	st := &counting{Store: store.NewMemory(store.Options{}), block: make(chan struct{})}
	c, _ := served(t, st, peer.ServerOptions{MaxBatchIDs: 4, MaxConcurrent: 2}, peer.ClientOptions{BatchIDs: 10})
	ctx := context.Background()
	if _, err := c.Has(ctx, make([]chunk.ID, 5)); !errors.Is(err, peer.ErrRefused) {
		t.Fatalf("has of 5 ids from a server that takes 4: %v, want ErrRefused", err)
	}

	// Eight callers, two slots: the store never sees more than two.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := c.Has(ctx, []chunk.ID{{1}}); err != nil {
				t.Error(err)
			}
		})
	}
	deadline := time.Now().Add(5 * time.Second)
	for st.inside.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // would a third get in?
	if got := st.inside.Load(); got != 2 {
		t.Errorf("%d requests inside the store at once, want 2", got)
	}
	close(st.block)
	wg.Wait()
	if got := st.most.Load(); got != 2 {
		t.Errorf("at most %d requests at once, want 2", got)
	}
}

func TestPeerDown(t *testing.T) {
	c, n := served(t, store.NewMemory(store.Options{}), peer.ServerOptions{}, peer.ClientOptions{Timeout: 5 * time.Second})
	ctx := context.Background()
	mk := storetest.NewMaker(t, 1, 4)
	ch := mk.Chunk(t, 100)
	if _, err := c.Put(ctx, ch.ID, ch.Sealed); err != nil {
		t.Fatal(err)
	}
	n.Stop()
	_, err := c.Get(ctx, ch.ID)
	if !errors.Is(err, peer.ErrUnavailable) || !strings.Contains(err.Error(), "peer n1 ("+n.Addr+")") {
		t.Fatalf("get from a stopped peer: %v, want ErrUnavailable naming n1 at %s", err, n.Addr)
	}
	n.Start(t)
	if got, err := c.Get(ctx, ch.ID); err != nil || !bytes.Equal(got, ch.Sealed) {
		t.Fatalf("get after the peer came back: %v", err)
	}
}

// counting counts calls of Has and, if block is set, holds them until it
// is closed.
type counting struct {
	store.Store
	calls, inside, most atomic.Int32
	block               chan struct{}
}

func (c *counting) Has(ctx context.Context, ids []chunk.ID) ([]bool, error) {
	c.calls.Add(1)
	n := c.inside.Add(1)
	defer c.inside.Add(-1)
	for {
		m := c.most.Load()
		if n <= m || c.most.CompareAndSwap(m, n) {
			break
		}
	}
	if c.block != nil {
		<-c.block
	}
	return c.Store.Has(ctx, ids)
}

// rotting damages every chunk it hands out, after its own checks.
type rotting struct{ store.Store }

func (r *rotting) Get(ctx context.Context, id chunk.ID) ([]byte, error) {
	b, err := r.Store.Get(ctx, id)
	if err == nil {
		b[len(b)/2] ^= 0x40
	}
	return b, err
}

func TestPool(t *testing.T) {
	ca := peertest.NewCA(t, "c1")
	a := peertest.Serve(t, ca, "n1", store.NewMemory(store.Options{}), peer.ServerOptions{})
	b := peertest.Serve(t, ca, "n1", store.NewMemory(store.Options{}), peer.ServerOptions{}) // n1 moved
	p := peer.NewPool(ca.ClientTLS(t, "n2"), peer.ClientOptions{})
	defer p.Close()
	ctx := context.Background()
	if _, err := p.Client("n1"); !errors.Is(err, peer.ErrUnknownNode) {
		t.Fatalf("client of a node without an address: %v", err)
	}
	p.SetAddr("n1", a.Addr)
	c1, err := p.Client("n1")
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := p.Client("n1"); again != c1 {
		t.Fatal("a second Client call made a second client")
	}
	mk := storetest.NewMaker(t, 1, 9)
	ch := mk.Chunk(t, 100)
	if _, err := c1.Put(ctx, ch.ID, ch.Sealed); err != nil {
		t.Fatal(err)
	}
	p.SetAddr("n1", b.Addr)
	if _, err := c1.Has(ctx, nil); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("client of the old address after a move: %v, want ErrClosed", err)
	}
	c2, err := p.Client("n1")
	if err != nil {
		t.Fatal(err)
	}
	if has, err := c2.Has(ctx, []chunk.ID{ch.ID}); err != nil || has[0] {
		t.Fatalf("has on the new address: %v %v, want [false]", has, err)
	}
	p.Remove("n1")
	if _, err := p.Client("n1"); !errors.Is(err, peer.ErrUnknownNode) {
		t.Fatalf("client of a removed node: %v", err)
	}
}
