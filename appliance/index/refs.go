package index

import (
	"context"
	"fmt"

	"github.com/cairnhq/cairn/cluster/chunk"
)

// Refs calls ref with every chunk a tree references: its index nodes and
// the data chunks its leaves name (zero entries excluded). visited reports
// index nodes already walked, with their subtrees, through this or another
// tree: restore points share unchanged subtrees, so a collection that walks
// them all loads each shared node once. visited must be exact — a node it
// wrongly calls visited hides its whole subtree.
func Refs(ctx context.Context, load LoadFunc, root chunk.ID, visited func(chunk.ID) bool, ref func(chunk.ID)) error {
	if root.IsZero() || visited(root) {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ref(root)
	b, err := load(ctx, root)
	if err != nil {
		return fmt.Errorf("index node %s: %w", root.Short(), err)
	}
	n, err := Parse(b)
	if err != nil {
		return fmt.Errorf("index node %s: %w", root.Short(), err)
	}
	for _, e := range n.Entries {
		if e.IsZero() {
			continue
		}
		if n.Level == 0 {
			ref(e)
			continue
		}
		if err := Refs(ctx, load, e, visited, ref); err != nil {
			return err
		}
	}
	return nil
}
