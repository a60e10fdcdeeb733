package index

import (
	"context"
	"fmt"

	"github.com/cairnhq/cairn/cluster/chunk"
)

// LoadFunc returns the plaintext of a stored index node, authenticated.
type LoadFunc func(ctx context.Context, id chunk.ID) ([]byte, error)

// PutFunc seals and stores an index node's plaintext and returns its ID.
type PutFunc func(ctx context.Context, plain []byte) (chunk.ID, error)

// Tree reads a stored index. Leaves are best read in order: the interior
// nodes on the path to the last leaf are cached, so a sequential walk loads
// each node once. A Tree is not safe for concurrent use.
type Tree struct {
	geo         Geometry
	load        LoadFunc
	root        Node
	fingerprint [32]byte
	path        []cached // path[level], for levels 1..root-1
}

type cached struct {
	id   chunk.ID
	node Node
}

// Open reads the root of a tree and checks that it fits the geometry.
func Open(ctx context.Context, load LoadFunc, root chunk.ID, geo Geometry) (*Tree, error) {
	if err := geo.Validate(); err != nil {
		return nil, fmt.Errorf("open index: %w", err)
	}
	b, err := load(ctx, root)
	if err != nil {
		return nil, fmt.Errorf("open index root %s: %w", root.Short(), err)
	}
	n, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("open index root %s: %w", root.Short(), err)
	}
	if want := geo.Levels(); n.Level != want {
		return nil, fmt.Errorf("open index root %s: level %d, disk needs %d: %w", root.Short(), n.Level, want, ErrCorrupt)
	}
	if err := checkEntries(n, geo, 0); err != nil {
		return nil, fmt.Errorf("open index root %s: %w", root.Short(), err)
	}
	return &Tree{geo: geo, load: load, root: n, fingerprint: Fingerprint(b), path: make([]cached, n.Level)}, nil
}

// Fingerprint returns the SHA-256 of the root node.
func (t *Tree) Fingerprint() [32]byte { return t.fingerprint }

// Geometry returns the disk geometry the tree was opened with.
func (t *Tree) Geometry() Geometry { return t.geo }

// Leaf returns leaf i's ID and its block IDs. A zero leaf returns chunk.Zero
// and nil entries.
func (t *Tree) Leaf(ctx context.Context, i int64) (chunk.ID, []chunk.ID, error) {
	if i < 0 || i >= t.geo.Leaves() {
		return chunk.Zero, nil, fmt.Errorf("index leaf %d out of range", i)
	}
	node, id := t.root, chunk.Zero
	for level := t.root.Level; level > 0; level-- {
		slot := int((i / span(level)) % Fanout)
		child := node.Entries[slot]
		if child.IsZero() {
			return chunk.Zero, nil, nil
		}
		if level-1 == 0 {
			id = child
			break
		}
		c := &t.path[level-1]
		if c.id != child || c.node.Entries == nil {
			n, err := t.loadNode(ctx, child, level-1, i/span(level)*span(level))
			if err != nil {
				return chunk.Zero, nil, err
			}
			*c = cached{id: child, node: n}
		}
		node = c.node
	}
	if t.root.Level == 0 {
		return chunk.Zero, t.root.Entries, nil
	}
	n, err := t.loadNode(ctx, id, 0, i)
	if err != nil {
		return chunk.Zero, nil, err
	}
	return id, n.Entries, nil
}

// loadNode loads the node at level whose first leaf is firstLeaf.
func (t *Tree) loadNode(ctx context.Context, id chunk.ID, level int, firstLeaf int64) (Node, error) {
	b, err := t.load(ctx, id)
	if err != nil {
		return Node{}, fmt.Errorf("load index node %s: %w", id.Short(), err)
	}
	n, err := Parse(b)
	if err != nil {
		return Node{}, fmt.Errorf("load index node %s: %w", id.Short(), err)
	}
	if n.Level != level {
		return Node{}, fmt.Errorf("load index node %s: level %d, want %d: %w", id.Short(), n.Level, level, ErrCorrupt)
	}
	if err := checkEntries(n, t.geo, firstLeaf); err != nil {
		return Node{}, fmt.Errorf("load index node %s: %w", id.Short(), err)
	}
	return n, nil
}

// checkEntries checks a node's entry count against the geometry: full nodes
// except at the end of the disk.
func checkEntries(n Node, geo Geometry, firstLeaf int64) error {
	var want int64
	if n.Level == 0 {
		want = int64(geo.LeafBlocks(firstLeaf))
	} else {
		want = min(Fanout, ceilDiv(geo.Leaves()-firstLeaf, span(n.Level)))
	}
	if int64(len(n.Entries)) != want {
		return fmt.Errorf("level %d node has %d entries, geometry needs %d: %w", n.Level, len(n.Entries), want, ErrCorrupt)
	}
	return nil
}

// LeafID returns leaf i's ID without loading the leaf itself; chunk.Zero for
// a zero leaf. When the root is a leaf it returns chunk.Zero: use Leaf.
func (t *Tree) LeafID(ctx context.Context, i int64) (chunk.ID, error) {
	if t.root.Level == 0 {
		return chunk.Zero, nil
	}
	if i < 0 || i >= t.geo.Leaves() {
		return chunk.Zero, fmt.Errorf("index leaf %d out of range", i)
	}
	node := t.root
	for level := t.root.Level; level > 1; level-- {
		child := node.Entries[int((i/span(level))%Fanout)]
		if child.IsZero() {
			return chunk.Zero, nil
		}
		c := &t.path[level-1]
		if c.id != child || c.node.Entries == nil {
			n, err := t.loadNode(ctx, child, level-1, i/span(level)*span(level))
			if err != nil {
				return chunk.Zero, err
			}
			*c = cached{id: child, node: n}
		}
		node = c.node
	}
	return node.Entries[int(i%Fanout)], nil
}
