package meta

import "context"

// NewDirect returns a catalog that applies each command straight to a fresh
// FSM, with no log in between: the FSM held to the catalog contract.
func NewDirect() *catalog {
	f := NewFSM()
	return &catalog{fsm: f, propose: func(_ context.Context, cmd []byte) (Result, error) {
		return f.Apply(cmd), nil
	}}
}
