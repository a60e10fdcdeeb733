package peer

import (
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
)

// ErrUnknownNode: the pool has no address for the node.
var ErrUnknownNode = errors.New("no address for node")

// Pool keeps one Client per peer node, made on first use from the address
// it was told, and remade when that address changes. Safe for concurrent
// use.
type Pool struct {
	cfg  *tls.Config
	opts ClientOptions

	mu      sync.Mutex
	addrs   map[string]string
	clients map[string]*Client
	closed  bool
}

// NewPool returns an empty pool whose clients dial with cfg
// (node.ClientTLS) and opts.
func NewPool(cfg *tls.Config, opts ClientOptions) *Pool {
	return &Pool{cfg: cfg, opts: opts, addrs: map[string]string{}, clients: map[string]*Client{}}
}

// SetAddr records where node listens. A client made for an older address
// is closed; requests already under way on it finish.
func (p *Pool) SetAddr(nodeID, addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.addrs[nodeID] == addr {
		return
	}
	p.addrs[nodeID] = addr
	if c := p.clients[nodeID]; c != nil {
		c.Close()
		delete(p.clients, nodeID)
	}
}

// Remove forgets node and closes its client.
func (p *Pool) Remove(nodeID string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.addrs, nodeID)
	if c := p.clients[nodeID]; c != nil {
		c.Close()
		delete(p.clients, nodeID)
	}
}

// Client returns the client of node, making it if need be.
func (p *Pool) Client(nodeID string) (*Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, fmt.Errorf("peer %s: pool closed", nodeID)
	}
	if c := p.clients[nodeID]; c != nil {
		return c, nil
	}
	addr, ok := p.addrs[nodeID]
	if !ok {
		return nil, fmt.Errorf("peer %s: %w", nodeID, ErrUnknownNode)
	}
	c, err := NewClient(nodeID, addr, p.cfg, p.opts)
	if err != nil {
		return nil, err
	}
	p.clients[nodeID] = c
	return c, nil
}

// Close closes every client; later Client calls fail.
func (p *Pool) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for id, c := range p.clients {
		c.Close()
		delete(p.clients, id)
	}
	return nil
}
