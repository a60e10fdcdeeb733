package member

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/cairnhq/cairn/cluster/meta"
)

// Status is the cluster as its leader sees it.
type Status struct {
	ClusterID string       `json:"cluster_id"`
	Leader    string       `json:"leader"`
	Epoch     uint64       `json:"epoch"`
	Nodes     []NodeStatus `json:"nodes"`
	// UnderReplicatedChunks is what the last healing round left short of
	// its replica count; -1 before the first round.
	UnderReplicatedChunks int64 `json:"under_replicated_chunks"`
}

// NodeStatus is one member in a Status.
type NodeStatus struct {
	ID      string            `json:"id"`
	Address string            `json:"address"`
	API     string            `json:"api,omitempty"`
	State   string            `json:"state"`
	Healthy bool              `json:"healthy"`
	Voter   bool              `json:"voter"`
	Labels  map[string]string `json:"labels,omitempty"`
}

// Status returns the cluster as the leader sees it, asking the leader when
// this member does not lead.
func (m *Member) Status(ctx context.Context) (Status, error) {
	if m.catalog.IsLeader() {
		return m.localStatus(ctx)
	}
	addr := m.catalog.LeaderAddr()
	if addr == "" {
		return Status{}, errors.New("cluster status: no leader known")
	}
	b, err := m.call(ctx, "GET", addr, "/cairn/member/v1/status", nil)
	if err != nil {
		return Status{}, fmt.Errorf("cluster status from the leader: %w", err)
	}
	var st Status
	if err := json.Unmarshal(b, &st); err != nil {
		return Status{}, fmt.Errorf("cluster status from the leader: %w", err)
	}
	return st, nil
}

func (m *Member) localStatus(ctx context.Context) (Status, error) {
	ms, err := m.catalog.Membership(ctx)
	if err != nil {
		return Status{}, err
	}
	servers, err := m.catalog.Servers()
	if err != nil {
		return Status{}, err
	}
	ca, err := parseCertPEM(m.id.CACert)
	if err != nil {
		return Status{}, err
	}
	st := Status{Leader: m.catalog.Leader(), Epoch: ms.Epoch, ClusterID: clusterOf(ca.URIs), UnderReplicatedChunks: -1}
	m.mu.Lock()
	if m.healed {
		st.UnderReplicatedChunks = m.report.UnderReplicated
	}
	m.mu.Unlock()
	for _, n := range ms.Nodes {
		voter := servers[n.ID].Voter
		st.Nodes = append(st.Nodes, NodeStatus{ID: n.ID, Address: n.Address, API: n.API, State: n.State,
			Healthy: m.Healthy(n.ID), Voter: voter, Labels: n.Labels})
	}
	return st, nil
}

// Healthy reports whether member id answered a probe recently.
func (m *Member) Healthy(id string) bool {
	if id == m.id.NodeID {
		return true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.now().Sub(m.lastSeen[id]) < 3*m.cfg.Probe
}

// probeLoop checks every other member's health endpoint each Probe.
func (m *Member) probeLoop(ctx context.Context) {
	defer m.wg.Done()
	tick := time.NewTicker(m.cfg.Probe)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		ms, err := m.catalog.Membership(ctx)
		if err != nil {
			continue
		}
		for _, n := range ms.Nodes {
			if n.ID == m.id.NodeID {
				continue
			}
			go m.probe(ctx, n)
		}
	}
}

func (m *Member) probe(ctx context.Context, n meta.Node) {
	ctx, cancel := context.WithTimeout(ctx, 2*m.cfg.Probe)
	defer cancel()
	b, err := m.call(ctx, "GET", n.Address, "/cairn/member/v1/health", nil)
	if err != nil {
		return
	}
	var h healthReply
	if json.Unmarshal(b, &h) != nil || h.ID != n.ID {
		return
	}
	m.mu.Lock()
	m.lastSeen[n.ID] = m.now()
	m.mu.Unlock()
}

// leaderLoop keeps the membership true while this member leads: its own
// record, nodes declared down after DeadAfter without an answer and back
// up when they answer again, draining nodes removed once drained; then a
// healing round.
func (m *Member) leaderLoop(ctx context.Context) {
	defer m.wg.Done()
	tick := time.NewTicker(m.cfg.Probe)
	defer tick.Stop()
	var since time.Time // when this member became leader
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if !m.catalog.IsLeader() {
			since = time.Time{}
			continue
		}
		if since.IsZero() {
			since = m.now()
		}
		if err := m.tend(ctx, since); err != nil && ctx.Err() == nil {
			m.log.Warn("membership upkeep", "err", err)
		}
	}
}

func (m *Member) tend(ctx context.Context, since time.Time) error {
	ms, err := m.catalog.Membership(ctx)
	if err != nil {
		return err
	}
	self := meta.Node{ID: m.id.NodeID, Address: m.cfg.Advertise, API: m.cfg.API, State: meta.NodeActive, Labels: m.cfg.Labels}
	nodes := map[string]meta.Node{}
	for _, n := range ms.Nodes {
		nodes[n.ID] = n
	}
	if old, ok := nodes[self.ID]; ok {
		if old.State == meta.NodeDraining {
			self.State = old.State
		}
	}
	servers, err := m.catalog.Servers()
	if err != nil {
		return err
	}
	if old, ok := nodes[self.ID]; !ok || old.Address != self.Address || old.API != self.API || old.State != self.State || !maps.Equal(old.Labels, self.Labels) {
		if servers[self.ID].Address != self.Address {
			if err := m.catalog.AddVoter(ctx, self.ID, self.Address); err != nil {
				return err
			}
		}
		if err := m.catalog.SetNode(ctx, self); err != nil {
			return err
		}
	}
	now := m.now()
	for _, id := range slices.Sorted(maps.Keys(nodes)) {
		n := nodes[id]
		if id == self.ID {
			continue
		}
		healthy := m.Healthy(id)
		if s, ok := servers[id]; healthy && ok && !s.Voter && n.State == meta.NodeActive {
			m.log.Info("promoting a caught-up member to voter", "node", id)
			if err := m.catalog.AddVoter(ctx, id, n.Address); err != nil {
				return err
			}
		}
		switch {
		case n.State == meta.NodeActive && !healthy && now.Sub(m.seenOrSince(id, since)) > m.cfg.DeadAfter:
			m.log.Warn("node declared down: its chunks will be re-replicated", "node", id, "unreachable_for", now.Sub(m.seenOrSince(id, since)).Round(time.Second).String())
			n.State = meta.NodeDown
			if err := m.catalog.SetNode(ctx, n); err != nil {
				return err
			}
			// Its running jobs end here: they hold nothing any more (a
			// running backup would hold back garbage collection forever).
			if jobs, err := m.catalog.InterruptRunning(ctx, id, now); err != nil {
				return err
			} else if len(jobs) > 0 {
				m.log.Warn("jobs of a node declared down are interrupted", "node", id, "jobs", len(jobs))
			}
		case n.State == meta.NodeDown && healthy:
			m.log.Info("node is back", "node", id)
			n.State = meta.NodeActive
			if err := m.catalog.SetNode(ctx, n); err != nil {
				return err
			}
		}
	}
	return m.heal(ctx)
}

// seenOrSince is when member id last answered, or when this member began
// to lead if it has not heard from it since: a new leader gives every
// member a full DeadAfter before declaring it down.
func (m *Member) seenOrSince(id string, since time.Time) time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t := m.lastSeen[id]; t.After(since) {
		return t
	}
	return since
}

func (m *Member) heal(ctx context.Context) error {
	m.mu.Lock()
	h := m.healer
	due := m.now().Sub(m.lastHeal) >= m.cfg.HealEvery
	if due {
		m.lastHeal = m.now()
	}
	m.mu.Unlock()
	if !due {
		return nil
	}
	ms, err := m.catalog.Membership(ctx)
	if err != nil {
		return err
	}
	var rep HealReport
	if h != nil {
		if rep, err = h.Heal(ctx, ms); err != nil {
			return fmt.Errorf("heal: %w", err)
		}
	} else {
		for _, n := range ms.Nodes {
			if n.State == meta.NodeDraining {
				rep.Drained = append(rep.Drained, n.ID)
			}
		}
	}
	m.mu.Lock()
	m.report, m.healed = rep, true
	m.mu.Unlock()
	for _, id := range rep.Drained {
		m.log.Info("node drained: removing it", "node", id)
		if err := m.catalog.RemoveNode(ctx, id); err != nil && !errors.Is(err, meta.ErrNotFound) {
			return err
		}
		if _, err := m.catalog.InterruptRunning(ctx, id, m.now()); err != nil {
			return err
		}
		if err := m.catalog.RemoveServer(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// Remove starts removing a member: it drains (its chunks move to the
// others), then leaves the membership and the Raft configuration.
func (m *Member) Remove(ctx context.Context, id string) error {
	ms, err := m.catalog.Membership(ctx)
	if err != nil {
		return err
	}
	for _, n := range ms.Nodes {
		if n.ID != id {
			continue
		}
		if len(ms.Nodes) == 1 {
			return fmt.Errorf("node %s is the only member: %w", id, meta.ErrConflict)
		}
		n.State = meta.NodeDraining
		return m.catalog.SetNode(ctx, n)
	}
	return fmt.Errorf("node %s: %w", id, meta.ErrNotFound)
}
