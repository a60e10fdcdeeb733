package placement

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cairnhq/cairn/cluster/chunk"
)

func TestOwnersCount(t *testing.T) {
	t.Parallel()
	id := ids(1, 10)[0]
	mixed := cluster(5)
	mixed[0].State = Dead
	mixed[1].State = Draining
	for _, tc := range []struct {
		name string
		m    Map
		want int
	}{
		{"default replicas", Map{Nodes: cluster(5)}, 3},
		{"one replica", Map{Nodes: cluster(5), Replicas: 1}, 1},
		{"five replicas", Map{Nodes: cluster(5), Replicas: 5}, 5},
		{"more replicas than nodes", Map{Nodes: cluster(2), Replicas: 5}, 2},
		{"default on one node", Map{Nodes: cluster(1)}, 1},
		{"three healthy of five", Map{Nodes: mixed, Replicas: 4}, 3},
		{"no nodes", Map{}, 0},
		{"none healthy", Map{Nodes: []Node{{ID: "a", Weight: 1, State: Dead}}}, 0},
	} {
		got := tc.m.Owners(id)
		if len(got) != tc.want {
			t.Errorf("%s: Owners = %v, want %d owners", tc.name, got, tc.want)
		}
	}
}

// Owners is a function of the set of nodes: order in the slice and the
// process computing it make no difference, and it does not change between
// builds (a change would move data). Regenerate the golden values only with
// a migration plan.
func TestOwnersDeterministic(t *testing.T) {
	t.Parallel()
	m := Map{Nodes: racked(3, 3), Domain: "rack", Replicas: 3}
	m.Nodes[4].Weight = 2.5     // r2-n2
	m.Nodes[6].State = Draining // r3-n1: a candidate, never an owner
	// Candidates pins the whole score order, owners first.
	golden := map[string]string{
		"0000000000000000000000000000000000000000000000000000000000000000": "[r1-n2 r2-n2 r3-n2 r1-n1 r1-n3 r2-n1 r3-n1 r2-n3 r3-n3]",
		"0101010101010101010101010101010101010101010101010101010101010101": "[r3-n3 r1-n1 r2-n2 r1-n2 r3-n2 r2-n1 r3-n1 r1-n3 r2-n3]",
		"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff": "[r3-n2 r1-n1 r2-n3 r3-n3 r3-n1 r1-n2 r2-n2 r1-n3 r2-n1]",
		"6a09e667f3bcc908b2fb1366ea957d3e3adec17512775099da2f590b0667322a": "[r3-n2 r1-n1 r2-n3 r3-n3 r2-n2 r1-n3 r2-n1 r1-n2 r3-n1]",
	}
	for hexID, want := range golden {
		id, err := chunk.ParseID(hexID)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(m.Candidates(id)); got != want {
			t.Errorf("Candidates(%s) = %s, want %s", id.Short(), got, want)
		}
	}

	r := rand.New(rand.NewPCG(11, 11))
	sample := ids(500, 12)
	for range 20 {
		s := m
		s.Nodes = slices.Clone(m.Nodes)
		r.Shuffle(len(s.Nodes), func(i, j int) { s.Nodes[i], s.Nodes[j] = s.Nodes[j], s.Nodes[i] })
		for _, id := range sample {
			if a, b := m.Owners(id), s.Owners(id); !slices.Equal(a, b) {
				t.Fatalf("Owners(%s) = %v, or %v with the nodes shuffled", id.Short(), a, b)
			}
			if a, b := m.Candidates(id), s.Candidates(id); !slices.Equal(a, b) {
				t.Fatalf("Candidates(%s) = %v, or %v with the nodes shuffled", id.Short(), a, b)
			}
		}
	}
}

func TestFailureDomains(t *testing.T) {
	t.Parallel()
	uneven := racked(2, 3)
	uneven = uneven[:5] // rack-1 has three nodes, rack-2 two
	for _, tc := range []struct {
		name  string
		m     Map
		check func(perRack map[string]int) bool
	}{
		{"3 racks × 3, R=3: one per rack", Map{Nodes: racked(3, 3), Domain: "rack", Replicas: 3},
			func(c map[string]int) bool {
				return len(c) == 3 && c["rack-1"] == 1 && c["rack-2"] == 1 && c["rack-3"] == 1
			}},
		{"2 racks × 3, R=3: both racks", Map{Nodes: racked(2, 3), Domain: "rack", Replicas: 3},
			func(c map[string]int) bool { return c["rack-1"] >= 1 && c["rack-2"] >= 1 }},
		{"2 uneven racks, R=3: both racks", Map{Nodes: uneven, Domain: "rack", Replicas: 3},
			func(c map[string]int) bool { return c["rack-1"] >= 1 && c["rack-2"] >= 1 }},
		{"2 racks × 3, R=4: two per rack", Map{Nodes: racked(2, 3), Domain: "rack", Replicas: 4},
			func(c map[string]int) bool { return c["rack-1"] == 2 && c["rack-2"] == 2 }},
		{"4 racks × 2, R=3: three racks", Map{Nodes: racked(4, 2), Domain: "rack", Replicas: 3},
			func(c map[string]int) bool { return len(c) == 3 }},
	} {
		rack := make(map[string]string)
		for _, n := range tc.m.Nodes {
			rack[n.ID] = n.Labels["rack"]
		}
		for _, id := range ids(20_000, 13) {
			per := make(map[string]int)
			for _, n := range tc.m.Owners(id) {
				per[rack[n]]++
			}
			if !tc.check(per) {
				t.Errorf("%s: chunk %s has replicas per rack %v", tc.name, id.Short(), per)
				break
			}
		}
	}
}

// Random maps against a slow, obvious statement of the rules: sort every
// healthy node by score, then take nodes in that order in rounds, a domain
// taking its k-th replica only in round k.
func TestOwnersMatchReference(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(14, 14))
	for trial := range 300 {
		m := randomMap(r)
		for _, id := range ids(100, uint64(trial)) {
			got, want := m.Owners(id), reference(m, id)
			if !slices.Equal(got, want) {
				t.Fatalf("map %+v\nOwners(%s) = %v, want %v", m, id.Short(), got, want)
			}
			checkCandidates(t, m, id, got)
			if app := m.AppendOwners([]string{"x"}, id); !slices.Equal(app, append([]string{"x"}, got...)) {
				t.Fatalf("AppendOwners = %v, want x then %v", app, got)
			}
		}
	}
}

func randomMap(r *rand.Rand) Map {
	m := Map{Replicas: r.IntN(6)}
	if r.IntN(2) == 0 {
		m.Domain = "rack"
	}
	racks := 1 + r.IntN(5)
	for i := range r.IntN(40) {
		n := Node{
			ID:     fmt.Sprintf("n%d", i),
			Weight: []float64{0.5, 1, 1, 2, 3.7}[r.IntN(5)],
			State:  []State{Healthy, Healthy, Healthy, Draining, Dead}[r.IntN(5)],
			Labels: map[string]string{"rack": fmt.Sprint("r", r.IntN(racks))},
		}
		m.Nodes = append(m.Nodes, n)
	}
	if err := m.Validate(); err != nil {
		panic(err)
	}
	return m
}

func reference(m Map, id chunk.ID) []string {
	type cand struct {
		id, dom string
		score   float64
	}
	var all []cand
	for _, n := range m.Nodes {
		if n.State == Healthy {
			all = append(all, cand{n.ID, n.Labels[m.Domain], score(n.Weight, nodeKey(n.ID), chunkKey(&id))})
		}
	}
	if m.Domain == "" {
		for i := range all {
			all[i].dom = all[i].id
		}
	}
	slices.SortFunc(all, func(a, b cand) int {
		if a.score > b.score {
			return -1
		}
		return 1
	})
	want := m.Replicas
	if want == 0 {
		want = DefaultReplicas
	}
	var out []string
	per := make(map[string]int)
	for round := 1; len(out) < min(want, len(all)); round++ {
		for _, c := range all {
			if len(out) < want && per[c.dom] < round && !contains(out, c.id) {
				out = append(out, c.id)
				per[c.dom]++
			}
		}
	}
	return out
}

// checkCandidates: owners first, then every other healthy or draining node
// by falling score, no dead node; IsOwner agrees.
func checkCandidates(t *testing.T, m Map, id chunk.ID, owners []string) {
	t.Helper()
	c := m.Candidates(id)
	if !slices.Equal(c[:len(owners)], owners) {
		t.Fatalf("Candidates(%s) = %v, want the owners %v first", id.Short(), c, owners)
	}
	var want int
	prev := 0.0
	for _, n := range m.Nodes {
		if n.State == Dead {
			if contains(c, n.ID) {
				t.Fatalf("Candidates(%s) includes dead node %s", id.Short(), n.ID)
			}
			continue
		}
		want++
		if owner := contains(owners, n.ID); m.IsOwner(id, n.ID) != owner {
			t.Fatalf("IsOwner(%s, %s) = %v, Owners = %v", id.Short(), n.ID, !owner, owners)
		}
	}
	if len(c) != want {
		t.Fatalf("Candidates(%s) = %v, want %d nodes", id.Short(), c, want)
	}
	for i, n := range c[len(owners):] {
		s := score(nodeWeight(m, n), nodeKey(n), chunkKey(&id))
		if i > 0 && s > prev {
			t.Fatalf("Candidates(%s) = %v: %s after a lower score", id.Short(), c, n)
		}
		prev = s
	}
}

func TestAppendOwnersAllocs(t *testing.T) {
	m := Map{Nodes: racked(10, 10), Domain: "rack"}
	id := ids(1, 15)[0]
	dst := make([]string, 0, MaxReplicas)
	if a := testing.AllocsPerRun(100, func() { dst = m.AppendOwners(dst[:0], id) }); a != 0 {
		t.Errorf("AppendOwners on 100 nodes: %v allocations, want 0", a)
	}
	if a := testing.AllocsPerRun(100, func() { m.IsOwner(id, "r1-n1") }); a != 0 {
		t.Errorf("IsOwner on 100 nodes: %v allocations, want 0", a)
	}
}
