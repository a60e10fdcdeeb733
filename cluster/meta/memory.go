package meta

import "context"

// Memory is the catalog contract held in memory by the same state machine
// the cluster replicates, with each command applied as it comes: a catalog
// for tests of the layers above, and for tools that need no durability.
type Memory struct{ catalog }

// NewMemory returns an empty in-memory catalog.
func NewMemory() *Memory {
	f := NewFSM()
	return &Memory{catalog{fsm: f, propose: func(_ context.Context, cmd []byte) (Result, error) {
		return f.Apply(cmd), nil
	}}}
}

// Close does nothing; it exists so Memory stands where Local does.
func (m *Memory) Close() error { return nil }
