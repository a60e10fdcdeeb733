package meta

import (
	"fmt"
	"maps"
)

// Node states.
const (
	NodeActive   = "active"   // holds chunks and takes new ones
	NodeDraining = "draining" // being removed: its chunks move elsewhere
	NodeDown     = "down"     // declared dead: its chunks are re-replicated
)

// Node is one member of the cluster as the placement map sees it.
type Node struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	// Labels name failure domains, such as rack or site.
	Labels map[string]string `json:"labels,omitempty"`
	State  string            `json:"state"`
	// API is the address of the node's REST API, for people and tools.
	API string `json:"api,omitempty"`
}

// Membership is the placement map: the members and an epoch that grows by
// one with every change to them, so a placement computed under one epoch can
// be told from one computed under another.
type Membership struct {
	Epoch uint64 `json:"epoch"`
	Nodes []Node `json:"nodes"` // sorted by ID
}

func checkNode(n Node) error {
	if err := checkName("node id", n.ID); err != nil {
		return err
	}
	if n.Address == "" {
		return fmt.Errorf("no address: %w", ErrInvalid)
	}
	switch n.State {
	case NodeActive, NodeDraining, NodeDown:
		return nil
	}
	return fmt.Errorf("node state %q: want %s, %s or %s: %w", n.State, NodeActive, NodeDraining, NodeDown, ErrInvalid)
}

func cloneNode(n Node) Node {
	n.Labels = maps.Clone(n.Labels)
	return n
}
