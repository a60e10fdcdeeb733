package storetest

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/cluster/chunk"
)

// Chunk is a real sealed chunk for tests, with the plaintext it seals.
type Chunk struct {
	ID     chunk.ID
	Sealed []byte
	Plain  []byte
}

// Maker seals chunks of reproducible random plaintext under one test key.
// It is safe for concurrent use.
type Maker struct {
	key *chunk.Key
	mu  sync.Mutex
	rng *rand.Rand
}

// NewMaker returns a Maker whose plaintexts follow from seed and whose key
// follows from keyByte.
func NewMaker(t testing.TB, keyByte byte, seed uint64) *Maker {
	t.Helper()
	key, err := chunk.NewKey(chunk.KeyID{keyByte}, bytes.Repeat([]byte{keyByte}, chunk.SecretSize))
	if err != nil {
		t.Fatal(err)
	}
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return &Maker{key: key, rng: rand.New(rand.NewChaCha8(s))}
}

// Key returns the key chunks are sealed under, to unseal them.
func (m *Maker) Key() *chunk.Key { return m.key }

// Chunk seals size bytes of random (incompressible) plaintext.
func (m *Maker) Chunk(t testing.TB, size int) Chunk {
	t.Helper()
	plain := make([]byte, size)
	m.mu.Lock()
	for i := 0; i < size; i += 8 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], m.rng.Uint64())
		copy(plain[i:], w[:])
	}
	m.mu.Unlock()
	return m.Seal(t, plain)
}

// Seal seals plain.
func (m *Maker) Seal(t testing.TB, plain []byte) Chunk {
	t.Helper()
	id := m.key.Sum(plain)
	sealed, err := m.key.Seal(nil, id, plain)
	if err != nil {
		t.Fatal(err)
	}
	return Chunk{ID: id, Sealed: sealed, Plain: plain}
}

// Chunks seals n chunks of size bytes each.
func (m *Maker) Chunks(t testing.TB, n, size int) []Chunk {
	t.Helper()
	out := make([]Chunk, n)
	for i := range out {
		out[i] = m.Chunk(t, size)
	}
	return out
}

// Clock is a manual clock for last-reference tests. It is safe for
// concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock standing at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d and returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}
