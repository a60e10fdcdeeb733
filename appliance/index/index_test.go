package index

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/cairnhq/cairn/cluster/chunk"
)

// nodes is a content-addressed node store that counts writes.
type nodes struct {
	key  *chunk.Key
	m    map[chunk.ID][]byte
	puts int
}

func newNodes(t *testing.T) *nodes {
	k, err := chunk.NewKey(chunk.KeyID{1}, bytes.Repeat([]byte{7}, chunk.SecretSize))
	if err != nil {
		t.Fatal(err)
	}
	return &nodes{key: k, m: map[chunk.ID][]byte{}}
}

func (s *nodes) put(_ context.Context, plain []byte) (chunk.ID, error) {
	id := s.key.Sum(plain)
	if _, ok := s.m[id]; !ok {
		s.m[id] = bytes.Clone(plain)
		s.puts++
	}
	return id, nil
}

func (s *nodes) load(_ context.Context, id chunk.ID) ([]byte, error) {
	b, ok := s.m[id]
	if !ok {
		return nil, fmt.Errorf("node %s missing", id.Short())
	}
	return b, nil
}

// blockID makes a recognisable non-zero block ID.
func blockID(b int64, gen byte) chunk.ID {
	var id chunk.ID
	id[0] = gen
	for i := range 8 {
		id[1+i] = byte(b >> (8 * i))
	}
	return id
}

// build writes a tree whose block b holds f(b).
func build(t *testing.T, s *nodes, geo Geometry, f func(int64) chunk.ID) (chunk.ID, [32]byte) {
	t.Helper()
	bld, err := NewBuilder(geo, s.put)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for l := range geo.Leaves() {
		entries := make([]chunk.ID, geo.LeafBlocks(l))
		for j := range entries {
			entries[j] = f(l*Fanout + int64(j))
		}
		if err := bld.Leaf(ctx, l, entries, chunk.Zero); err != nil {
			t.Fatal(err)
		}
	}
	root, fp, err := bld.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return root, fp
}

func readAll(t *testing.T, s *nodes, root chunk.ID, geo Geometry) []chunk.ID {
	t.Helper()
	tr, err := Open(context.Background(), s.load, root, geo)
	if err != nil {
		t.Fatal(err)
	}
	var all []chunk.ID
	for l := range geo.Leaves() {
		_, e, err := tr.Leaf(context.Background(), l)
		if err != nil {
			t.Fatal(err)
		}
		if e == nil {
			e = make([]chunk.ID, geo.LeafBlocks(l))
		}
		all = append(all, e...)
	}
	return all
}

func TestTreeRoundTrip(t *testing.T) {
	const bs = chunk.BlockSize
	cases := []struct {
		name   string
		geo    Geometry
		levels int
		f      func(int64) chunk.ID
	}{
		{"empty disk", Geometry{0, bs}, 0, nil},
		{"one short block", Geometry{1000, bs}, 0, nil},
		{"exactly one leaf", Geometry{Fanout * bs, bs}, 0, nil},
		{"one block past a leaf", Geometry{Fanout*bs + 1, bs}, 1, nil},
		{"sparse 5 TiB", Geometry{5 << 40, bs}, 2, func(b int64) chunk.ID {
			if b%300007 == 0 {
				return blockID(b, 1)
			}
			return chunk.Zero
		}},
		{"all zero 9 GiB", Geometry{9 << 30, bs}, 1, func(int64) chunk.ID { return chunk.Zero }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.f == nil {
				c.f = func(b int64) chunk.ID { return blockID(b, 1) }
			}
			if got := c.geo.Levels(); got != c.levels {
				t.Fatalf("levels = %d, want %d", got, c.levels)
			}
			s := newNodes(t)
			root, fp := build(t, s, c.geo, c.f)
			tr, err := Open(context.Background(), s.load, root, c.geo)
			if err != nil {
				t.Fatal(err)
			}
			if tr.Fingerprint() != fp {
				t.Fatal("fingerprint read back differs from the one built")
			}
			got := readAll(t, s, root, c.geo)
			if int64(len(got)) != c.geo.Blocks() {
				t.Fatalf("read %d blocks, want %d", len(got), c.geo.Blocks())
			}
			for b, id := range got {
				if id != c.f(int64(b)) {
					t.Fatalf("block %d differs", b)
				}
			}
		})
	}
}

func TestIncrementalSharesUnchangedLeaves(t *testing.T) {
	geo := Geometry{Capacity: 10 * Fanout * chunk.BlockSize, BlockSize: chunk.BlockSize}
	s := newNodes(t)
	root, fp := build(t, s, geo, func(b int64) chunk.ID { return blockID(b, 1) })
	before := s.puts

	base, err := Open(context.Background(), s.load, root, geo)
	if err != nil {
		t.Fatal(err)
	}
	bld, _ := NewBuilder(geo, s.put)
	ctx := context.Background()
	for l := range geo.Leaves() {
		id, e, err := base.Leaf(ctx, l)
		if err != nil {
			t.Fatal(err)
		}
		if l == 3 {
			e = append([]chunk.ID(nil), e...)
			e[17] = blockID(3*Fanout+17, 2)
			id = chunk.Zero
		}
		if err := bld.Leaf(ctx, l, e, id); err != nil {
			t.Fatal(err)
		}
	}
	root2, fp2, err := bld.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fp2 == fp || root2 == root {
		t.Fatal("changed tree has the same fingerprint")
	}
	if w := s.puts - before; w != 2 {
		t.Fatalf("incremental wrote %d nodes, want 2 (one leaf and the root)", w)
	}
	got := readAll(t, s, root2, geo)
	if got[3*Fanout+17] != blockID(3*Fanout+17, 2) || got[3*Fanout+18] != blockID(3*Fanout+18, 1) {
		t.Fatal("incremental tree does not read back the change")
	}
}

func TestOpenRejectsWrongGeometry(t *testing.T) {
	geo := Geometry{Capacity: 3 * Fanout * chunk.BlockSize, BlockSize: chunk.BlockSize}
	s := newNodes(t)
	root, _ := build(t, s, geo, func(b int64) chunk.ID { return blockID(b, 1) })
	for _, g := range []Geometry{
		{Capacity: geo.Capacity - chunk.BlockSize, BlockSize: chunk.BlockSize},
		{Capacity: geo.Capacity * 2000, BlockSize: chunk.BlockSize},
	} {
		tr, err := Open(context.Background(), s.load, root, g)
		if err == nil {
			_, _, err = tr.Leaf(context.Background(), g.Leaves()-1)
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("geometry %+v: got %v, want ErrCorrupt", g, err)
		}
	}
}

func TestBuilderRejectsMisuse(t *testing.T) {
	geo := Geometry{Capacity: 2 * Fanout * chunk.BlockSize, BlockSize: chunk.BlockSize}
	s := newNodes(t)
	b, _ := NewBuilder(geo, s.put)
	ctx := context.Background()
	if err := b.Leaf(ctx, 0, make([]chunk.ID, 5), chunk.Zero); err == nil {
		t.Error("short leaf accepted")
	}
	if err := b.Leaf(ctx, 0, make([]chunk.ID, Fanout), chunk.Zero); err != nil {
		t.Fatal(err)
	}
	if err := b.Leaf(ctx, 0, make([]chunk.ID, Fanout), chunk.Zero); err == nil {
		t.Error("leaf set twice accepted")
	}
	if _, _, err := b.Finish(ctx); err == nil {
		t.Error("finish with a missing leaf accepted")
	}
	if _, err := NewBuilder(Geometry{Capacity: 1, BlockSize: 0}, s.put); err == nil {
		t.Error("zero block size accepted")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(Node{Level: 0, Entries: []chunk.ID{{1}, {2}}}.Marshal())
	f.Add(Node{Level: 2}.Marshal())
	f.Add([]byte("CRNI\x01\x00\x00\x00\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error is not ErrCorrupt: %v", err)
			}
			return
		}
		if !bytes.Equal(n.Marshal(), b) {
			t.Fatal("parse then marshal does not round trip")
		}
	})
}
