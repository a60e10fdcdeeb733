package index

import (
	"context"
	"fmt"
	"sync"

	"github.com/cairnhq/cairn/cluster/chunk"
)

// Builder writes a new index tree leaf by leaf. Leaves may be set in any
// order and from several goroutines; Finish writes the interior nodes and the
// root once every leaf is set.
type Builder struct {
	geo    Geometry
	put    PutFunc
	mu     sync.Mutex
	leaves []chunk.ID
	set    []bool
	root   []chunk.ID // entries of the only leaf, when the root is a leaf
}

// NewBuilder starts a tree for a disk of the given geometry.
func NewBuilder(geo Geometry, put PutFunc) (*Builder, error) {
	if err := geo.Validate(); err != nil {
		return nil, fmt.Errorf("build index: %w", err)
	}
	n := geo.Leaves()
	return &Builder{geo: geo, put: put, leaves: make([]chunk.ID, n), set: make([]bool, n)}, nil
}

// Leaf sets leaf i to entries. When known is not chunk.Zero the caller
// vouches that entries are exactly the stored leaf known (an unchanged leaf
// of the base tree), and nothing is written; entries may then be nil unless
// the leaf is the root. An all-zero leaf is recorded as chunk.Zero unless it
// is the root.
func (b *Builder) Leaf(ctx context.Context, i int64, entries []chunk.ID, known chunk.ID) error {
	if i < 0 || i >= int64(len(b.leaves)) {
		return fmt.Errorf("index leaf %d out of range", i)
	}
	if want := b.geo.LeafBlocks(i); len(entries) != want && (entries != nil || known.IsZero() || b.geo.Levels() == 0) {
		return fmt.Errorf("index leaf %d: %d entries, want %d", i, len(entries), want)
	}
	id := known
	switch {
	case b.geo.Levels() == 0:
		b.mu.Lock()
		b.root = append([]chunk.ID(nil), entries...)
		b.mu.Unlock()
	case id.IsZero() && !allZero(entries):
		var err error
		if id, err = b.put(ctx, Node{Level: 0, Entries: entries}.Marshal()); err != nil {
			return fmt.Errorf("store index leaf %d: %w", i, err)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.set[i] {
		return fmt.Errorf("index leaf %d set twice", i)
	}
	b.leaves[i], b.set[i] = id, true
	return nil
}

// Finish writes the interior nodes and the root, and returns the root's ID and
// the tree's fingerprint.
func (b *Builder) Finish(ctx context.Context) (chunk.ID, [32]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, ok := range b.set {
		if !ok {
			return chunk.Zero, [32]byte{}, fmt.Errorf("finish index: leaf %d not set", i)
		}
	}
	top := b.geo.Levels()
	if top == 0 {
		return b.store(ctx, Node{Level: 0, Entries: b.root})
	}
	ids := b.leaves
	for level := 1; level < top; level++ {
		next := make([]chunk.ID, 0, ceilDiv(int64(len(ids)), Fanout))
		for start := 0; start < len(ids); start += Fanout {
			entries := ids[start:min(start+Fanout, len(ids))]
			if allZero(entries) {
				next = append(next, chunk.Zero)
				continue
			}
			id, _, err := b.store(ctx, Node{Level: level, Entries: entries})
			if err != nil {
				return chunk.Zero, [32]byte{}, err
			}
			next = append(next, id)
		}
		ids = next
	}
	return b.store(ctx, Node{Level: top, Entries: ids})
}

func (b *Builder) store(ctx context.Context, n Node) (chunk.ID, [32]byte, error) {
	plain := n.Marshal()
	id, err := b.put(ctx, plain)
	if err != nil {
		return chunk.Zero, [32]byte{}, fmt.Errorf("store level %d index node: %w", n.Level, err)
	}
	return id, Fingerprint(plain), nil
}

func allZero(ids []chunk.ID) bool {
	for _, id := range ids {
		if !id.IsZero() {
			return false
		}
	}
	return true
}
