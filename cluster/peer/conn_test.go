package peer_test

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
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

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	n atomic.Int32
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// TestOneConnection: a client's requests, sequential or concurrent, share
// one connection.
func TestOneConnection(t *testing.T) {
	ca := peertest.NewCA(t, "c1")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: ln}
	srv := peer.NewServer(store.NewMemory(store.Options{}), peer.ServerOptions{ErrorLog: log.New(io.Discard, "", 0)})
	go srv.Serve(cl, ca.ServerTLS(t, "n1"))
	defer srv.Close()
	c, err := peer.NewClient("n1", ln.Addr().String(), ca.ClientTLS(t, "n2"), peer.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if _, err := c.Has(ctx, []chunk.ID{{1}}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for range 5 {
				if _, err := c.Has(ctx, []chunk.ID{{1}}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if got := cl.n.Load(); got != 1 {
		t.Fatalf("161 requests took %d connections, want 1", got)
	}
}

// TestTimeout: a peer that does not answer fails the call after the
// client's timeout, naming the peer; the caller's own deadline is honoured
// too.
func TestTimeout(t *testing.T) {
	st := &counting{Store: store.NewMemory(store.Options{}), block: make(chan struct{})}
	defer close(st.block)
	c, _ := served(t, st, peer.ServerOptions{}, peer.ClientOptions{Timeout: 200 * time.Millisecond})
	start := time.Now()
	_, err := c.Has(context.Background(), []chunk.ID{{1}})
	if !errors.Is(err, peer.ErrUnavailable) || !strings.Contains(err.Error(), "peer n1") {
		t.Fatalf("has from a hung peer: %v, want ErrUnavailable naming n1", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("timed out after %v, want about 200ms", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	if _, err := c.Has(ctx, []chunk.ID{{1}}); !errors.Is(err, context.Canceled) {
		t.Fatalf("has cancelled by the caller: %v, want context.Canceled", err)
	}
}

// stuck holds every Put until release is closed.
type stuck struct {
	store.Store
	entered chan struct{}
	release chan struct{}
}

func (s *stuck) Put(ctx context.Context, id chunk.ID, sealed []byte) (bool, error) {
	s.entered <- struct{}{}
	<-s.release
	return s.Store.Put(ctx, id, sealed)
}

// TestPutsDoNotStarveReads: with one request slot, a put stuck in the store
// does not keep a Has out.
func TestPutsDoNotStarveReads(t *testing.T) {
	st := &stuck{Store: store.NewMemory(store.Options{}), entered: make(chan struct{}, 1), release: make(chan struct{})}
	c, _ := served(t, st, peer.ServerOptions{MaxConcurrent: 1}, peer.ClientOptions{Timeout: 5 * time.Second})
	ctx := context.Background()
	ch := storetest.NewMaker(t, 1, 11).Chunk(t, 100)
	done := make(chan error, 1)
	go func() {
		_, err := c.Put(ctx, ch.ID, ch.Sealed)
		done <- err
	}()
	<-st.entered
	if _, err := c.Has(ctx, []chunk.ID{ch.ID}); err != nil {
		t.Fatalf("has while a put is stuck: %v", err)
	}
	close(st.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestBusyPutRetried: a put over the server's memory budget is refused as
// busy and retried by the client until room frees up.
func TestBusyPutRetried(t *testing.T) {
	st := &stuck{Store: store.NewMemory(store.Options{}), entered: make(chan struct{}, 2), release: make(chan struct{})}
	// The smallest budget: one body of the largest chunk.
	c, _ := served(t, st, peer.ServerOptions{PutBudget: 1, MaxBatchBytes: 1}, peer.ClientOptions{Timeout: 20 * time.Second})
	ctx := context.Background()
	mk := storetest.NewMaker(t, 1, 12)
	big := []storetest.Chunk{mk.Chunk(t, 9<<20), mk.Chunk(t, 9<<20)}
	done := make(chan error, 2)
	for _, ch := range big {
		go func() {
			_, err := c.Put(ctx, ch.ID, ch.Sealed)
			done <- err
		}()
	}
	<-st.entered // one holds the budget; the other is refused, and waits
	select {
	case <-st.entered:
		t.Fatal("two puts of 9 MiB inside a budget of about 16 MiB")
	case err := <-done:
		t.Fatalf("a put finished while the first was stuck: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(st.release)
	for range big {
		if err := <-done; err != nil {
			t.Fatalf("put: %v", err)
		}
	}
	for _, ch := range big {
		if got, err := c.Get(ctx, ch.ID); err != nil || len(got) != len(ch.Sealed) {
			t.Fatalf("get %s: %v", ch.ID.Short(), err)
		}
	}
}
