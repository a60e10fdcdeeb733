// Package index is a disk's block index: for each block of a disk, the ID of
// the chunk holding it or chunk.Zero. The index is a tree of index nodes that
// are stored as ordinary chunks, so it is sealed, deduplicated and replicated
// like data. Leaves hold up to Fanout block IDs; interior nodes hold up to
// Fanout child node IDs. A subtree that is all zeros is recorded as
// chunk.Zero and not stored; the root is always stored.
//
// Copy-on-write falls out of content addressing: an incremental backup keeps
// the IDs of unchanged leaves and writes new nodes only for leaves that
// changed and their ancestors.
//
// A tree's fingerprint is the SHA-256 of its root node. Since every node names
// its children by keyed hash, the fingerprint commits to every block.
package index

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cairnhq/cairn/cluster/chunk"
)

// Fanout is the number of entries in a full node: a leaf covers 4 GiB of disk
// at 4 MiB blocks, a level-1 node 4 TiB.
const Fanout = 1024

// MaxLevel bounds the height of a tree (level 4 covers exabytes).
const MaxLevel = 4

const (
	nodeMagic   = "CRNI"
	nodeVersion = 1
	nodeHeader  = 12
)

// ErrCorrupt marks an index node that does not parse or does not fit the
// disk's geometry.
var ErrCorrupt = errors.New("corrupt index")

// Node is one node of an index tree. Level 0 is a leaf.
type Node struct {
	Level   int
	Entries []chunk.ID
}

// Marshal encodes a node:
//
//	magic "CRNI" | version (1 byte) | level (1 byte) | 2 reserved bytes |
//	entry count (uint32, big-endian) | entries (32 bytes each)
func (n Node) Marshal() []byte {
	b := make([]byte, nodeHeader, nodeHeader+len(n.Entries)*chunk.IDSize)
	copy(b, nodeMagic)
	b[4] = nodeVersion
	b[5] = byte(n.Level)
	binary.BigEndian.PutUint32(b[8:], uint32(len(n.Entries)))
	for _, e := range n.Entries {
		b = append(b, e[:]...)
	}
	return b
}

// Parse decodes a node written by Marshal.
func Parse(b []byte) (Node, error) {
	if len(b) < nodeHeader || string(b[:4]) != nodeMagic {
		return Node{}, fmt.Errorf("parse index node: bad header: %w", ErrCorrupt)
	}
	if b[4] != nodeVersion {
		return Node{}, fmt.Errorf("parse index node: version %d is not supported: %w", b[4], ErrCorrupt)
	}
	if b[5] > MaxLevel || b[6] != 0 || b[7] != 0 {
		return Node{}, fmt.Errorf("parse index node: bad level or flags: %w", ErrCorrupt)
	}
	n := binary.BigEndian.Uint32(b[8:])
	if n > Fanout || len(b) != nodeHeader+int(n)*chunk.IDSize {
		return Node{}, fmt.Errorf("parse index node: %d entries in %d bytes: %w", n, len(b), ErrCorrupt)
	}
	node := Node{Level: int(b[5]), Entries: make([]chunk.ID, n)}
	for i := range node.Entries {
		copy(node.Entries[i][:], b[nodeHeader+i*chunk.IDSize:])
	}
	return node, nil
}

// Fingerprint returns the SHA-256 of an encoded root node.
func Fingerprint(root []byte) [32]byte { return sha256.Sum256(root) }

// Geometry is the shape of a disk's index.
type Geometry struct {
	Capacity  int64
	BlockSize int64
}

// Blocks returns the number of blocks, the last one possibly short.
func (g Geometry) Blocks() int64 { return ceilDiv(g.Capacity, g.BlockSize) }

// Leaves returns the number of leaves (at least one).
func (g Geometry) Leaves() int64 { return max(1, ceilDiv(g.Blocks(), Fanout)) }

// Levels returns the level of the root: 0 when one leaf covers the disk.
func (g Geometry) Levels() int {
	level, n := 0, g.Leaves()
	for n > 1 {
		n = ceilDiv(n, Fanout)
		level++
	}
	return level
}

// LeafBlocks returns how many blocks leaf i holds.
func (g Geometry) LeafBlocks(i int64) int {
	return int(min(Fanout, g.Blocks()-i*Fanout))
}

// BlockLen returns the length of block b.
func (g Geometry) BlockLen(b int64) int64 {
	return min(g.BlockSize, g.Capacity-b*g.BlockSize)
}

// Validate rejects geometries Cairn cannot index.
func (g Geometry) Validate() error {
	switch {
	case g.BlockSize <= 0 || g.BlockSize > chunk.MaxPlain:
		return fmt.Errorf("block size %d is outside 1..%d", g.BlockSize, chunk.MaxPlain)
	case g.Capacity < 0:
		return fmt.Errorf("negative capacity %d", g.Capacity)
	}
	if l := g.Levels(); l > MaxLevel {
		return fmt.Errorf("capacity %d needs %d index levels, more than %d", g.Capacity, l, MaxLevel)
	}
	return nil
}

// span returns how many leaves one entry of a node at level covers.
func span(level int) int64 {
	s := int64(1)
	for range level - 1 {
		s *= Fanout
	}
	return s
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }
