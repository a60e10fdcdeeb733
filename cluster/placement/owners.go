package placement

import (
	"slices"

	"github.com/cairnhq/cairn/cluster/chunk"
)

// entry is one node's standing for one chunk.
type entry struct {
	score float64
	dom   string // failure domain; unused when every node is its own
	node  int32  // index into Map.Nodes
	taken bool
}

// stackNodes is how many nodes a placement handles without allocating.
const stackNodes = 128

// Owners returns the nodes that own id's replicas, primary first. It returns
// min(Replicas, healthy nodes) distinct IDs, and none if no node is healthy.
func (m Map) Owners(id chunk.ID) []string {
	var buf [stackNodes]entry
	var picks [MaxReplicas]int32
	n := m.owners(&id, buf[:0], &picks)
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i, p := range picks[:n] {
		out[i] = m.Nodes[p].ID
	}
	return out
}

// AppendOwners appends id's owners to dst and returns the result; with room
// in dst and at most 128 nodes it does not allocate.
func (m Map) AppendOwners(dst []string, id chunk.ID) []string {
	var buf [stackNodes]entry
	var picks [MaxReplicas]int32
	n := m.owners(&id, buf[:0], &picks)
	for _, p := range picks[:n] {
		dst = append(dst, m.Nodes[p].ID)
	}
	return dst
}

// IsOwner reports whether node is among id's owners.
func (m Map) IsOwner(id chunk.ID, node string) bool {
	var buf [stackNodes]entry
	var picks [MaxReplicas]int32
	n := m.owners(&id, buf[:0], &picks)
	for _, p := range picks[:n] {
		if m.Nodes[p].ID == node {
			return true
		}
	}
	return false
}

// Candidates returns every node that may hold id, in the order a reader
// should try them: the owners as Owners returns them, then the other healthy
// and draining nodes by falling score. Dead nodes are left out.
func (m Map) Candidates(id chunk.ID) []string {
	var picks [MaxReplicas]int32
	e := m.rank(&id, make([]entry, 0, len(m.Nodes)), true)
	n := m.choose(e, &picks)
	out := make([]string, 0, len(e))
	for _, p := range picks[:n] {
		out = append(out, m.Nodes[e[p].node].ID)
		e[p].node = -1
	}
	e = slices.DeleteFunc(e, func(x entry) bool { return x.node < 0 })
	slices.SortFunc(e, func(a, b entry) int {
		switch {
		case m.beats(a, b):
			return -1
		case m.beats(b, a):
			return 1
		}
		return 0
	})
	for _, x := range e {
		out = append(out, m.Nodes[x.node].ID)
	}
	return out
}

// owners writes the indexes in Map.Nodes of id's owners to picks, in order,
// and returns how many there are. It scores into e's storage when that is
// large enough.
func (m Map) owners(id *chunk.ID, e []entry, picks *[MaxReplicas]int32) int {
	e = m.rank(id, e, false)
	n := m.choose(e, picks)
	for i := range n {
		picks[i] = e[picks[i]].node
	}
	return n
}

// rank appends an entry for each healthy node to e, and for each draining
// one too if readable; draining entries start out taken, so they are never
// chosen.
func (m Map) rank(id *chunk.ID, e []entry, readable bool) []entry {
	c := chunkKey(id)
	for i := range m.Nodes {
		nd := &m.Nodes[i]
		if !(nd.State == Healthy || readable && nd.State == Draining) || !validWeight(nd.Weight) {
			continue
		}
		x := entry{score: score(nd.Weight, nodeKey(nd.ID), c), node: int32(i), taken: nd.State != Healthy}
		if m.Domain != "" {
			x.dom = nd.Labels[m.Domain]
		}
		e = append(e, x)
	}
	return e
}

// choose picks id's owners among the entries not yet taken, writing their
// indexes in e to picks, and returns how many it picked: Replicas, or every
// untaken entry if there are fewer.
//
// It selects in rounds: in round k a domain may hold at most k replicas, and
// each pick is the best-scoring entry whose domain still has room. Round 1
// therefore places one replica per domain, best domains first, and domains
// are reused only once every domain holds one.
func (m Map) choose(e []entry, picks *[MaxReplicas]int32) int {
	free := 0
	for i := range e {
		if !e[i].taken {
			free++
		}
	}
	r := min(m.replicas(), free)
	limit := 1
	for n := 0; n < r; {
		best := -1
		for i := range e {
			if e[i].taken || (best >= 0 && !m.beats(e[i], e[best])) {
				continue
			}
			if m.Domain != "" && used(e, picks[:n], e[i].dom) >= limit {
				continue
			}
			best = i
		}
		if best < 0 {
			limit++
			continue
		}
		e[best].taken = true
		picks[n] = int32(best)
		n++
	}
	return r
}

// used counts the picked entries in domain dom.
func used(e []entry, picked []int32, dom string) int {
	k := 0
	for _, p := range picked {
		if e[p].dom == dom {
			k++
		}
	}
	return k
}

// beats reports whether a ranks before b. Scores are never NaN: weights are
// positive and finite, and -ln(u) is positive for u in (0, 1).
func (m Map) beats(a, b entry) bool {
	if a.score != b.score {
		return a.score > b.score
	}
	return m.Nodes[a.node].ID < m.Nodes[b.node].ID
}
