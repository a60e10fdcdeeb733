package member

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/meta"
	"github.com/cairnhq/cairn/cluster/peer"
	"github.com/cairnhq/cairn/cluster/placement"
	"github.com/cairnhq/cairn/cluster/replica"
	"github.com/cairnhq/cairn/cluster/store"
)

// WriteAcks is how many owners must hold a chunk before a write counts:
// two of the (by default) three. A backup goes on when one owner dies
// mid-way, and the leader's healing round copies the third replica as soon
// as the owner is back or declared down; a restore point therefore commits
// with every chunk on at least two nodes. With one or two nodes, every
// owner must acknowledge.
const WriteAcks = 2

// chunks is the member's view of the cluster's chunk stores: its own store
// directly, every other member's through a peer client.
type chunks struct {
	self  string
	local store.Store
	log   *slog.Logger

	mu      sync.Mutex
	clients map[string]*peer.Client // by node ID
	addrs   map[string]string       // node ID → address the client dials
	store   *replica.Store
}

// placementMap turns the replicated membership into a placement map.
func placementMap(ms meta.Membership) placement.Map {
	m := placement.Map{Epoch: ms.Epoch}
	for _, n := range ms.Nodes {
		st := placement.Healthy
		switch n.State {
		case meta.NodeDraining:
			st = placement.Draining
		case meta.NodeDown:
			st = placement.Dead
		}
		m.Nodes = append(m.Nodes, placement.Node{ID: n.ID, Weight: 1, Labels: n.Labels, State: st})
	}
	return m
}

// node returns the store of node id: the local one, or a client.
func (m *Member) node(id string) (store.Store, error) {
	c := m.chunks
	if id == c.self {
		return c.local, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	addr, ok := c.addrs[id]
	if !ok {
		return nil, fmt.Errorf("node %s is not a member", id)
	}
	if cl := c.clients[id]; cl != nil {
		return cl, nil
	}
	cl, err := peer.NewClient(id, addr, m.dial.Clone(), peer.ClientOptions{})
	if err != nil {
		return nil, err
	}
	c.clients[id] = cl
	return cl, nil
}

// refreshChunks brings the placement map and the peer addresses up to the
// membership's epoch.
func (m *Member) refreshChunks(ctx context.Context) error {
	ms, err := m.catalog.Membership(ctx)
	if err != nil {
		return err
	}
	c := m.chunks
	c.mu.Lock()
	for _, n := range ms.Nodes {
		if old, ok := c.addrs[n.ID]; ok && old != n.Address {
			if cl := c.clients[n.ID]; cl != nil {
				cl.Close()
				delete(c.clients, n.ID)
			}
		}
		c.addrs[n.ID] = n.Address
	}
	c.mu.Unlock()
	pm := placementMap(ms)
	if pm.Epoch == c.store.Map().Epoch && len(pm.Nodes) == len(c.store.Map().Nodes) {
		return nil
	}
	return c.store.SetMap(pm)
}

// Chunks returns the cluster's chunk store: writes go to a chunk's owners
// (WriteAcks of them must acknowledge), reads fail over between replicas.
// Nil if the member was started without a local store.
//
// Has and Put that cannot reach enough owners (replica.ErrShort) wait and
// try again for up to DeadAfter and a little more: an owner that died is
// then declared down, the placement map leaves it out, and the write goes
// to the owners that are left instead of failing the backup.
func (m *Member) Chunks() store.Store {
	if m.chunks == nil {
		return nil
	}
	return patient{Store: m.chunks.store, wait: m.cfg.DeadAfter + 5*m.cfg.Probe}
}

// patient is the replicated store riding out a membership change.
type patient struct {
	*replica.Store
	wait time.Duration
}

func (p patient) retry(ctx context.Context, op func() error) error {
	deadline := time.Now().Add(p.wait)
	for {
		err := op()
		if !errors.Is(err, replica.ErrShort) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (p patient) Has(ctx context.Context, ids []chunk.ID) (out []bool, err error) {
	err = p.retry(ctx, func() error { out, err = p.Store.Has(ctx, ids); return err })
	return out, err
}

func (p patient) Put(ctx context.Context, id chunk.ID, sealed []byte) (stored bool, err error) {
	err = p.retry(ctx, func() error { stored, err = p.Store.Put(ctx, id, sealed); return err })
	return stored, err
}

func (p patient) PutBatch(ctx context.Context, ids []chunk.ID, sealed [][]byte) (stored []bool, err error) {
	err = p.retry(ctx, func() error { stored, err = p.Store.PutBatch(ctx, ids, sealed); return err })
	return stored, err
}

// quarantine deletes one node's corrupt copy and puts a good copy from
// another replica in its place; with no good copy left, the next backup
// that meets the data stores it again.
func (m *Member) quarantine(node string, id chunk.ID, cause error) {
	m.log.Warn("corrupt chunk copy: replacing it from a replica", "node", node, "chunk", id.String(), "err", cause)
	m.repairs.Add(1)
	go func() {
		defer m.repairs.Done()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		st, err := m.node(node)
		if err == nil {
			err = st.Delete(ctx, []chunk.ID{id})
		}
		if err != nil {
			m.log.Error("delete corrupt chunk copy", "node", node, "chunk", id.String(), "err", err)
			return
		}
		good, err := m.chunks.store.Get(ctx, id)
		if err != nil {
			m.log.Error("no good copy of a corrupt chunk is left: the next backup of its data stores it again", "chunk", id.String(), "err", err)
			return
		}
		if _, err := st.Put(ctx, id, good); err != nil {
			m.log.Error("replace corrupt chunk copy", "node", node, "chunk", id.String(), "err", err)
			return
		}
		m.repaired.Add(1)
		m.log.Info("corrupt chunk copy replaced from a replica", "node", node, "chunk", id.String())
	}()
}

// Repaired counts the corrupt copies this member has replaced from a
// replica since it started.
func (m *Member) Repaired() int64 { return m.repaired.Load() }

// WaitRepairs waits until the repairs of corrupt copies found so far are
// done.
func (m *Member) WaitRepairs(ctx context.Context) error {
	done := make(chan struct{})
	go func() { m.repairs.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// chunkHealer is the Healer of the member's own chunk data.
type chunkHealer struct{ m *Member }

// Heal re-replicates what is short, moves what the map no longer puts
// where it is, drains draining nodes, and counts what is still short.
func (h chunkHealer) Heal(ctx context.Context, ms meta.Membership) (HealReport, error) {
	m := h.m
	if err := m.refreshChunks(ctx); err != nil {
		return HealReport{}, err
	}
	st := m.chunks.store
	var rep HealReport
	var errs []error
	for _, n := range ms.Nodes {
		if n.State != meta.NodeDraining {
			continue
		}
		if err := st.Drain(ctx, n.ID, nil); err != nil {
			errs = append(errs, err)
			continue
		}
		rep.Drained = append(rep.Drained, n.ID)
	}
	p := new(replica.Progress)
	if err := st.Rebalance(ctx, p); err != nil {
		errs = append(errs, err)
	}
	if p.Copied.Load() > 0 || p.Deleted.Load() > 0 {
		m.log.Info("healing round", "copied", p.Copied.Load(), "deleted", p.Deleted.Load(), "failed", p.Failed.Load())
	}
	if p.UnderReplicated.Load() == 0 && len(errs) == 0 {
		return rep, nil // nothing was short: no need to look again
	}
	left := new(replica.Progress)
	if err := st.Scan(ctx, left, nil); err != nil {
		errs = append(errs, err)
	}
	rep.UnderReplicated = left.UnderReplicated.Load()
	return rep, errors.Join(errs...)
}

func (c *chunks) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cl := range c.clients {
		cl.Close()
	}
	c.clients = nil
}

// mapLoop keeps the placement map at the membership's epoch on every
// member, leader or not, so writers place chunks as the leader does.
func (m *Member) mapLoop(ctx context.Context) {
	defer m.wg.Done()
	tick := time.NewTicker(m.cfg.Probe / 2)
	defer tick.Stop()
	for {
		if err := m.refreshChunks(ctx); err != nil && ctx.Err() == nil {
			m.log.Debug("refresh placement map", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
