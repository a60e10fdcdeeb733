package placement

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cairnhq/cairn/cluster/chunk"
)

// ids returns n chunk IDs drawn from a fixed seed: uniform, like the
// HMAC-SHA-256 IDs real chunks have, and the same on every run.
func ids(n int, seed uint64) []chunk.ID {
	r := rand.New(rand.NewPCG(seed, 0x63616972))
	out := make([]chunk.ID, n)
	for i := range out {
		for j := 0; j < chunk.IDSize; j += 8 {
			v := r.Uint64()
			for k := range 8 {
				out[i][j+k] = byte(v >> (8 * k))
			}
		}
	}
	return out
}

// cluster returns n healthy nodes of weight 1 named like real ones tend to
// be, differing in a digit or two ("node-01", "node-02", ...).
func cluster(n int) []Node {
	out := make([]Node, n)
	for i := range out {
		out[i] = Node{ID: fmt.Sprintf("node-%02d", i+1), Weight: 1}
	}
	return out
}

// racked returns racks × perRack healthy nodes of weight 1 labelled with
// their rack.
func racked(racks, perRack int) []Node {
	var out []Node
	for r := range racks {
		for i := range perRack {
			out = append(out, Node{
				ID:     fmt.Sprintf("r%d-n%d", r+1, i+1),
				Weight: 1,
				Labels: map[string]string{"rack": fmt.Sprintf("rack-%d", r+1)},
			})
		}
	}
	return out
}

// counts tallies, per node ID, the replicas m places over ids.
func counts(m Map, ids []chunk.ID) map[string]int {
	c := make(map[string]int)
	var buf []string
	for _, id := range ids {
		buf = m.AppendOwners(buf[:0], id)
		for _, n := range buf {
			c[n]++
		}
	}
	return c
}

// moved counts, over ids, the replicas placed on a node by after that before
// did not place there, and checks every such node is in allowed (nil allows
// any). It returns the count and the total replicas under after.
func moved(t *testing.T, before, after Map, ids []chunk.ID, allowed ...string) (int, int) {
	t.Helper()
	var moves, total, bad int
	for _, id := range ids {
		old, cur := before.Owners(id), after.Owners(id)
		total += len(cur)
		for _, n := range cur {
			if contains(old, n) {
				continue
			}
			moves++
			if allowed != nil && !contains(allowed, n) && bad < 5 {
				bad++
				t.Errorf("chunk %s: replica moved to %s, want only to %v (owners %v -> %v)", id.Short(), n, allowed, old, cur)
			}
		}
	}
	return moves, total
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
