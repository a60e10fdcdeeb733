package index

import (
	"context"
	"testing"

	"github.com/cairnhq/cairn/cluster/chunk"
)

// TestRefs: every index node and every non-zero block of two trees that
// share leaves is reported, and shared nodes are loaded once.
func TestRefs(t *testing.T) {
	s := newNodes(t)
	geo := Geometry{Capacity: 3*Fanout*chunk.BlockSize + 5, BlockSize: chunk.BlockSize}
	block := func(gen byte) func(int64) chunk.ID {
		return func(b int64) chunk.ID {
			switch {
			case b%7 == 0:
				return chunk.Zero
			case b == 10 && gen == 2:
				return blockID(b, 2) // the second tree changes one block
			}
			return blockID(b, 1)
		}
	}
	rootA, _ := build(t, s, geo, block(1))
	rootB, _ := build(t, s, geo, block(2))

	visited := map[chunk.ID]bool{}
	refs := map[chunk.ID]int{}
	loads := 0
	load := func(ctx context.Context, id chunk.ID) ([]byte, error) {
		loads++
		visited[id] = true
		return s.load(ctx, id)
	}
	for _, root := range []chunk.ID{rootA, rootB} {
		if err := Refs(context.Background(), load, root, func(id chunk.ID) bool { return visited[id] }, func(id chunk.ID) { refs[id]++ }); err != nil {
			t.Fatal(err)
		}
	}
	// Every stored node was loaded exactly once: the trees share all but
	// the changed leaf and the path above it.
	if loads != len(s.m) {
		t.Fatalf("loaded %d nodes, the trees have %d", loads, len(s.m))
	}
	for id := range s.m {
		if refs[id] == 0 {
			t.Fatalf("index node %s not reported", id.Short())
		}
	}
	for b := range geo.Blocks() {
		for _, gen := range []byte{1, 2} {
			id := block(gen)(b)
			if !id.IsZero() && refs[id] == 0 {
				t.Fatalf("block %d of tree %d not reported", b, gen)
			}
		}
	}
	if refs[chunk.Zero] != 0 {
		t.Fatal("the zero ID was reported")
	}
}
