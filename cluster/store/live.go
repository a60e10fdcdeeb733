package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/cairnhq/cairn/cluster/chunk"
)

// LiveSet is the set of chunks garbage collection must keep, as a Bloom
// filter: it never forgets a chunk it was given, and wrongly holds about one
// other chunk in FPRate — such a chunk is merely kept one round longer,
// since every round draws a new seed. Chunk IDs are keyed hashes, so their
// bytes, mixed with the seed, serve as the filter's hash functions.
type LiveSet struct {
	seed uint64
	k    uint32
	bits []uint64
}

// FPRate is the false-positive rate NewLiveSet sizes for.
const FPRate = 0.001

// maxLiveBits bounds a filter read from the wire: 2^34 bits is 2 GiB, room
// for about a billion chunks.
const maxLiveBits = 1 << 34

// NewLiveSet returns an empty set sized for n chunks.
func NewLiveSet(n int, seed uint64) *LiveSet {
	n = max(n, 1024)
	m := math.Ceil(-float64(n) * math.Log(FPRate) / (math.Ln2 * math.Ln2))
	k := uint32(math.Round(m / float64(n) * math.Ln2))
	words := (int(m) + 63) / 64
	return &LiveSet{seed: seed, k: max(k, 1), bits: make([]uint64, words)}
}

func (s *LiveSet) positions(id chunk.ID, fn func(word int, bit uint64)) {
	h1 := binary.LittleEndian.Uint64(id[0:8]) ^ s.seed
	h2 := binary.LittleEndian.Uint64(id[8:16]) ^ (s.seed * 0x9e3779b97f4a7c15)
	h2 |= 1
	m := uint64(len(s.bits) * 64)
	for i := range uint64(s.k) {
		p := (h1 + i*h2) % m
		fn(int(p/64), 1<<(p%64))
	}
}

// Add puts id in the set.
func (s *LiveSet) Add(id chunk.ID) {
	s.positions(id, func(w int, b uint64) { s.bits[w] |= b })
}

// Has reports whether id may be in the set; false is certain.
func (s *LiveSet) Has(id chunk.ID) bool {
	in := true
	s.positions(id, func(w int, b uint64) { in = in && s.bits[w]&b != 0 })
	return in
}

// MarshalBinary encodes the set: seed (8 bytes), k (4), word count (8),
// then the words, all little-endian.
func (s *LiveSet) MarshalBinary() ([]byte, error) {
	out := make([]byte, 20, 20+8*len(s.bits))
	binary.LittleEndian.PutUint64(out[0:], s.seed)
	binary.LittleEndian.PutUint32(out[8:], s.k)
	binary.LittleEndian.PutUint64(out[12:], uint64(len(s.bits)))
	for _, w := range s.bits {
		out = binary.LittleEndian.AppendUint64(out, w)
	}
	return out, nil
}

// UnmarshalBinary decodes what MarshalBinary made, refusing anything else.
func (s *LiveSet) UnmarshalBinary(b []byte) error {
	if len(b) < 20 {
		return errors.New("live set: too short")
	}
	seed := binary.LittleEndian.Uint64(b[0:])
	k := binary.LittleEndian.Uint32(b[8:])
	words := binary.LittleEndian.Uint64(b[12:])
	if k == 0 || k > 64 {
		return fmt.Errorf("live set: %d hash functions", k)
	}
	if words == 0 || words > maxLiveBits/64 || uint64(len(b)-20) != 8*words {
		return fmt.Errorf("live set: %d words in %d bytes", words, len(b)-20)
	}
	bits := make([]uint64, words)
	for i := range bits {
		bits[i] = binary.LittleEndian.Uint64(b[20+8*i:])
	}
	*s = LiveSet{seed: seed, k: k, bits: bits}
	return nil
}
