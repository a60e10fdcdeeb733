package placement

import (
	"math"
	"slices"
	"testing"
)

// The properties rendezvous hashing is chosen for, measured over many IDs
// from a fixed seed. Figures are logged (go test -v) for the record.

const sample = 100_000

func TestBalanceEqualWeights(t *testing.T) {
	t.Parallel()
	for _, r := range []int{1, 3} {
		m := Map{Nodes: cluster(12), Replicas: r}
		c := counts(m, ids(sample, 1))
		mean := float64(sample*r) / 12
		worst := 0.0
		for _, n := range m.Nodes {
			worst = max(worst, math.Abs(float64(c[n.ID])/mean-1))
		}
		t.Logf("R=%d, 12 nodes, %d chunks: worst node off the mean by %.2f%%", r, sample, 100*worst)
		if worst > 0.03 {
			t.Errorf("R=%d: a node is %.1f%% off the mean share, want within 3%%", r, 100*worst)
		}
	}
}

func TestBalanceWeights(t *testing.T) {
	t.Parallel()
	// Six light nodes and six twice as heavy, interleaved.
	nodes := cluster(12)
	for i := range nodes {
		if i%2 == 1 {
			nodes[i].Weight = 2
		}
	}
	ratio := func(m Map, primaryOnly bool) float64 {
		var light, heavy int
		for _, id := range ids(sample, 2) {
			o := m.Owners(id)
			if primaryOnly {
				o = o[:1]
			}
			for _, n := range o {
				if w := nodeWeight(m, n); w == 2 {
					heavy++
				} else {
					light++
				}
			}
		}
		return float64(heavy) / float64(light)
	}
	// One replica, and the primaries of three: exactly proportional.
	for _, tc := range []struct {
		r       int
		primary bool
		lo, hi  float64
	}{
		{1, false, 1.94, 2.06},
		{3, true, 1.94, 2.06},
		// All replicas of three: a node holds at most one copy of a chunk,
		// so heavy nodes' extra share is flattened a little.
		{3, false, 1.6, 2.06},
	} {
		got := ratio(Map{Nodes: nodes, Replicas: tc.r}, tc.primary)
		t.Logf("weights 1:2, R=%d, primaries only %v: shares 1:%.3f", tc.r, tc.primary, got)
		if got < tc.lo || got > tc.hi {
			t.Errorf("weights 1:2, R=%d, primaries only %v: shares 1:%.3f, want 1:[%.2f, %.2f]", tc.r, tc.primary, got, tc.lo, tc.hi)
		}
	}
}

func nodeWeight(m Map, id string) float64 {
	for _, n := range m.Nodes {
		if n.ID == id {
			return n.Weight
		}
	}
	return 0
}

// Nodes must draw independently: a hash that correlates similar node IDs
// would pair the same nodes on chunk after chunk, so one node's failure
// would load a few peers instead of all of them.
func TestPairsIndependent(t *testing.T) {
	t.Parallel()
	m := Map{Nodes: cluster(10), Replicas: 3}
	pairs := make(map[[2]string]int)
	for _, id := range ids(sample, 3) {
		o := m.Owners(id)
		slices.Sort(o)
		for i := range o {
			for j := i + 1; j < len(o); j++ {
				pairs[[2]string{o[i], o[j]}]++
			}
		}
	}
	// Each of the 45 pairs shares a chunk with probability 3·2/(10·9).
	want := float64(sample) * 3 * 2 / (10 * 9)
	worst := 0.0
	for _, c := range pairs {
		worst = max(worst, math.Abs(float64(c)/want-1))
	}
	t.Logf("co-owned chunks per node pair: worst %.2f%% off the expected %.0f", 100*worst, want)
	if len(pairs) != 45 || worst > 0.06 {
		t.Errorf("%d pairs, worst %.1f%% off expected co-ownership, want 45 within 6%%", len(pairs), 100*worst)
	}
}

func TestMovementAddNode(t *testing.T) {
	t.Parallel()
	const n = 10
	before := Map{Nodes: cluster(n), Replicas: 3}
	after := Map{Nodes: cluster(n + 1), Replicas: 3}
	added := after.Nodes[n].ID
	moves, total := moved(t, before, after, ids(sample, 4), added)
	got, ideal := float64(moves)/float64(total), 1.0/(n+1)
	t.Logf("add 1 node to %d: %.2f%% of replicas moved (ideal %.2f%%)", n, 100*got, 100*ideal)
	if got > 1.5*ideal || got < 0.5*ideal {
		t.Errorf("adding a node moved %.2f%% of replicas, want about %.2f%%", 100*got, 100*ideal)
	}
}

func TestMovementRemoveNode(t *testing.T) {
	t.Parallel()
	const n = 10
	before := Map{Nodes: cluster(n), Replicas: 3}
	gone := before.Nodes[3].ID
	after := Map{Nodes: slices.Delete(cluster(n), 3, 4), Replicas: 3}
	sample := ids(sample, 5)
	// Every replica the old map placed and the new does not was on the
	// removed node: read the maps backwards.
	moves, total := moved(t, after, before, sample, gone)
	held := counts(before, sample)[gone]
	got, ideal := float64(moves)/float64(total), 1.0/n
	t.Logf("remove 1 node of %d: %.2f%% of replicas moved (ideal %.2f%%)", n, 100*got, 100*ideal)
	if moves != held {
		t.Errorf("removing %s moved %d replicas, want exactly the %d it held", gone, moves, held)
	}
}

func TestMovementStates(t *testing.T) {
	t.Parallel()
	for _, s := range []State{Draining, Dead} {
		before := Map{Nodes: cluster(10), Replicas: 3}
		after := Map{Nodes: cluster(10), Replicas: 3}
		after.Nodes[7].State = s
		gone := after.Nodes[7].ID
		sample := ids(20_000, 6)
		moves, _ := moved(t, after, before, sample, gone)
		if held := counts(before, sample)[gone]; moves != held || held == 0 {
			t.Errorf("%s: marking %s moved %d replicas, want exactly the %d it held", s, gone, moves, held)
		}
		if c := counts(after, sample)[gone]; c != 0 {
			t.Errorf("%s node still owns %d replicas", s, c)
		}
		inCandidates := contains(after.Candidates(sample[0]), gone)
		if inCandidates != (s == Draining) {
			t.Errorf("%s node in Candidates: %v", s, inCandidates)
		}
	}
}

func TestMovementReweight(t *testing.T) {
	t.Parallel()
	const n = 10
	for _, w := range []float64{2, 0.5} {
		before := Map{Nodes: cluster(n), Replicas: 3}
		after := Map{Nodes: cluster(n), Replicas: 3}
		after.Nodes[2].Weight = w
		x := after.Nodes[2].ID
		sample := ids(sample, 7)
		var moves, total int
		if w > 1 {
			moves, total = moved(t, before, after, sample, x) // moves only onto x
		} else {
			moves, total = moved(t, after, before, sample, x) // moves only off x
		}
		got := float64(moves) / float64(total)
		ideal := math.Abs(w/(n-1+w) - 1.0/n) // change in x's share of the weight
		t.Logf("weight 1 -> %v on 1 of %d nodes: %.2f%% of replicas moved (weight share changed %.2f%%)", w, n, 100*got, 100*ideal)
		if got > 1.5*ideal || moves == 0 {
			t.Errorf("weight 1 -> %v moved %.2f%% of replicas, want no more than 1.5 × %.2f%%", w, 100*got, 100*ideal)
		}
	}
}

func TestMovementAddNodeToRack(t *testing.T) {
	t.Parallel()
	before := Map{Nodes: racked(3, 3), Domain: "rack", Replicas: 3}
	nodes := racked(3, 3)
	nodes = append(nodes, Node{ID: "r1-n4", Weight: 1, Labels: map[string]string{"rack": "rack-1"}})
	after := Map{Nodes: nodes, Domain: "rack", Replicas: 3}
	moves, total := moved(t, before, after, ids(sample, 8), "r1-n4")
	// rack-1 keeps one replica of every chunk; the new node takes a
	// quarter of them.
	got, ideal := float64(moves)/float64(total), 1.0/3/4
	t.Logf("add a 4th node to one of 3 racks: %.2f%% of replicas moved (ideal %.2f%%)", 100*got, 100*ideal)
	if got > 1.5*ideal || got < 0.5*ideal {
		t.Errorf("adding a node to a rack moved %.2f%% of replicas, want about %.2f%%", 100*got, 100*ideal)
	}
}
