package placement

import (
	"errors"
	"fmt"
	"math"
)

// DefaultReplicas is the replica count of a Map whose Replicas is zero.
const DefaultReplicas = 3

// MaxReplicas bounds Map.Replicas; more copies than this is a configuration
// mistake, not a policy.
const MaxReplicas = 16

// ErrInvalid is wrapped by every error Validate returns.
var ErrInvalid = errors.New("invalid placement map")

// State is a node's standing in placement.
type State uint8

// States. The zero State is Healthy.
const (
	// Healthy nodes own chunks and serve reads.
	Healthy State = iota
	// Draining nodes serve what they hold but receive no new replicas; their
	// chunks are re-replicated to the remaining owners before removal.
	Draining
	// Dead nodes receive nothing and are never asked for anything.
	Dead
)

var stateNames = [...]string{Healthy: "healthy", Draining: "draining", Dead: "dead"}

// String returns "healthy", "draining" or "dead".
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// MarshalText encodes the state by name.
func (s State) MarshalText() ([]byte, error) {
	if int(s) >= len(stateNames) {
		return nil, fmt.Errorf("marshal node state %d: unknown", uint8(s))
	}
	return []byte(stateNames[s]), nil
}

// UnmarshalText decodes a state name.
func (s *State) UnmarshalText(b []byte) error {
	for i, name := range stateNames {
		if string(b) == name {
			*s = State(i)
			return nil
		}
	}
	return fmt.Errorf("unmarshal node state %q: unknown", b)
}

// Node is one member as placement sees it.
type Node struct {
	ID string
	// Weight is the node's capacity share; it must be positive and finite.
	// Only ratios matter.
	Weight float64
	// Labels place the node in the cluster's topology, e.g. "rack", "site".
	Labels map[string]string
	State  State
}

// Map is the membership placement is computed over. The metadata log holds
// it; Epoch orders its versions and does not enter the computation.
type Map struct {
	Epoch uint64
	Nodes []Node
	// Domain is the label key naming a failure domain, such as "rack". Empty
	// makes every node its own domain.
	Domain string
	// Replicas is the number of copies of each chunk; zero means
	// DefaultReplicas. Fewer healthy nodes than Replicas means one copy on
	// each.
	Replicas int
}

// Validate reports the first thing wrong with the map: an empty or repeated
// node ID, a weight that is not positive and finite, an unknown state, a
// node without the failure-domain label, or a replica count outside
// [0, MaxReplicas]. An empty map is valid; it places nothing.
func (m Map) Validate() error {
	if m.Replicas < 0 || m.Replicas > MaxReplicas {
		return fmt.Errorf("%w: replicas %d not in [0, %d]", ErrInvalid, m.Replicas, MaxReplicas)
	}
	seen := make(map[string]int, len(m.Nodes))
	for i, n := range m.Nodes {
		if n.ID == "" {
			return fmt.Errorf("%w: node %d: empty id", ErrInvalid, i)
		}
		if j, dup := seen[n.ID]; dup {
			return fmt.Errorf("%w: node %q: listed twice (entries %d and %d)", ErrInvalid, n.ID, j, i)
		}
		seen[n.ID] = i
		if !validWeight(n.Weight) {
			return fmt.Errorf("%w: node %q: weight %v is not positive and finite", ErrInvalid, n.ID, n.Weight)
		}
		if n.State > Dead {
			return fmt.Errorf("%w: node %q: unknown state %d", ErrInvalid, n.ID, uint8(n.State))
		}
		if m.Domain != "" && n.Labels[m.Domain] == "" {
			return fmt.Errorf("%w: node %q: no %q label to name its failure domain", ErrInvalid, n.ID, m.Domain)
		}
	}
	return nil
}

func validWeight(w float64) bool { return w > 0 && w <= math.MaxFloat64 }

// replicas is the wanted copy count, clamped so an unvalidated map cannot
// overrun the fixed-size pick list.
func (m Map) replicas() int {
	switch {
	case m.Replicas <= 0:
		return DefaultReplicas
	case m.Replicas > MaxReplicas:
		return MaxReplicas
	}
	return m.Replicas
}
