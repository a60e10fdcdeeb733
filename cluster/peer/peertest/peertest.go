// Package peertest runs stores behind real peer servers on 127.0.0.1 with
// mutual TLS from a throwaway cluster CA, for tests of the layers that move
// chunks between nodes.
package peertest

import (
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/cluster/node"
	"github.com/cairnhq/cairn/cluster/peer"
	"github.com/cairnhq/cairn/cluster/store"
)

// CA is a test cluster's certificate authority.
type CA struct {
	ca *node.CA
}

// NewCA makes the CA of cluster clusterID.
func NewCA(t testing.TB, clusterID string) *CA {
	t.Helper()
	ca, err := node.NewCA(clusterID, time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{ca: ca}
}

func (c *CA) issue(t testing.TB, nodeID string) (cert, key []byte) {
	t.Helper()
	cert, key, err := c.ca.Issue(nodeID, []string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// ServerTLS is node nodeID's server configuration.
func (c *CA) ServerTLS(t testing.TB, nodeID string) *tls.Config {
	t.Helper()
	cert, key := c.issue(t, nodeID)
	cfg, err := node.ServerTLS(c.ca.CertPEM(), cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// ClientTLS is node nodeID's client configuration.
func (c *CA) ClientTLS(t testing.TB, nodeID string) *tls.Config {
	t.Helper()
	cert, key := c.issue(t, nodeID)
	cfg, err := node.ClientTLS(c.ca.CertPEM(), cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Node is a store served to the cluster at Addr.
type Node struct {
	ID    string
	Addr  string
	Store store.Store
	ca    *CA
	opts  peer.ServerOptions

	mu   sync.Mutex
	srv  *peer.Server
	done chan error
}

// Serve serves st as node nodeID on a free loopback port until the test
// ends. The store is not closed.
func Serve(t testing.TB, ca *CA, nodeID string, st store.Store, opts peer.ServerOptions) *Node {
	t.Helper()
	n := &Node{ID: nodeID, Store: st, ca: ca, opts: opts}
	n.start(t, "127.0.0.1:0")
	t.Cleanup(n.Stop)
	return n
}

func (n *Node) start(t testing.TB, addr string) {
	t.Helper()
	var ln net.Listener
	var err error
	// The port was ours a moment ago; a restart may briefly race the
	// kernel releasing it.
	for try := 0; try < 50; try++ {
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	opts := n.opts
	if opts.ErrorLog == nil {
		opts.ErrorLog = log.New(io.Discard, "", 0)
	}
	srv := peer.NewServer(n.Store, opts)
	done := make(chan error, 1)
	cfg := n.ca.ServerTLS(t, n.ID)
	go func() { done <- srv.Serve(ln, cfg) }()
	n.mu.Lock()
	n.Addr, n.srv, n.done = ln.Addr().String(), srv, done
	n.mu.Unlock()
}

// Stop closes the node's server, cutting its connections, as a crash would
// for its peers. The store stays open.
func (n *Node) Stop() {
	n.mu.Lock()
	srv, done := n.srv, n.done
	n.srv = nil
	n.mu.Unlock()
	if srv == nil {
		return
	}
	srv.Close()
	if err := <-done; err != nil && !errors.Is(err, net.ErrClosed) {
		log.Printf("peertest: node %s: %v", n.ID, err)
	}
}

// Start serves the node again at its old address after Stop.
func (n *Node) Start(t testing.TB) {
	t.Helper()
	n.start(t, n.Addr)
}

// Client returns a client of the node as node from sees it, closed when the
// test ends.
func (n *Node) Client(t testing.TB, from string, opts peer.ClientOptions) *peer.Client {
	t.Helper()
	c, err := peer.NewClient(n.ID, n.Addr, n.ca.ClientTLS(t, from), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
