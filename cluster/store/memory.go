package store

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cairnhq/cairn/cluster/chunk"
)

// Memory is a Store in memory, for tests of the layers above. It keeps the
// real rules: it refuses to overwrite, checks the outer CRC on Put and on
// Get, copies bytes in and out, and refreshes last-reference times.
type Memory struct {
	now    func() time.Time
	mu     sync.RWMutex
	closed bool
	m      map[chunk.ID]*memEntry
}

var _ Store = (*Memory)(nil)

type memEntry struct {
	sealed  []byte
	lastRef time.Time
	tomb    bool // lastRef is when it was tombstoned
}

// NewMemory returns an empty in-memory store. Of opts only Now is used.
func NewMemory(opts Options) *Memory {
	return &Memory{now: opts.withDefaults().Now, m: map[chunk.ID]*memEntry{}}
}

// Put stores a copy of sealed under id; see Store.
func (s *Memory) Put(ctx context.Context, id chunk.ID, sealed []byte) (bool, error) {
	if err := s.begin(ctx); err != nil {
		return false, fmt.Errorf("put chunk %s: %w", id.Short(), err)
	}
	if id.IsZero() {
		return false, fmt.Errorf("put chunk: %w", errZeroID)
	}
	if err := chunk.Check(sealed); err != nil {
		return false, fmt.Errorf("put chunk %s: %w", id.Short(), err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, ErrClosed
	}
	now := s.now()
	if e, ok := s.m[id]; ok {
		e.lastRef, e.tomb = now, false
		return false, nil
	}
	s.m[id] = &memEntry{sealed: bytes.Clone(sealed), lastRef: now}
	return true, nil
}

// Has answers for ids in order and refreshes those present.
func (s *Memory) Has(ctx context.Context, ids []chunk.ID) ([]bool, error) {
	if err := s.begin(ctx); err != nil {
		return nil, fmt.Errorf("has %d chunks: %w", len(ids), err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	now := s.now()
	out := make([]bool, len(ids))
	for i, id := range ids {
		if e, ok := s.m[id]; ok {
			e.lastRef, e.tomb = now, false
			out[i] = true
		}
	}
	return out, nil
}

// Get returns a copy of id's sealed bytes after checking their outer CRC.
func (s *Memory) Get(ctx context.Context, id chunk.ID) ([]byte, error) {
	if err := s.begin(ctx); err != nil {
		return nil, fmt.Errorf("get chunk %s: %w", id.Short(), err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	e, ok := s.m[id]
	if !ok {
		return nil, fmt.Errorf("get chunk %s: %w", id.Short(), ErrNotFound)
	}
	if err := chunk.Check(e.sealed); err != nil {
		return nil, fmt.Errorf("get chunk %s: %w", id.Short(), err)
	}
	return bytes.Clone(e.sealed), nil
}

// Delete forgets ids.
func (s *Memory) Delete(ctx context.Context, ids []chunk.ID) error {
	if err := s.begin(ctx); err != nil {
		return fmt.Errorf("delete %d chunks: %w", len(ids), err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	for _, id := range ids {
		delete(s.m, id)
	}
	return nil
}

// Stat reports id's size and last reference.
func (s *Memory) Stat(ctx context.Context, id chunk.ID) (Info, error) {
	if err := s.begin(ctx); err != nil {
		return Info{}, fmt.Errorf("stat chunk %s: %w", id.Short(), err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return Info{}, ErrClosed
	}
	e, ok := s.m[id]
	if !ok {
		return Info{}, fmt.Errorf("stat chunk %s: %w", id.Short(), ErrNotFound)
	}
	return Info{Size: int64(len(e.sealed)), LastRef: e.lastRef, Tombstoned: e.tomb}, nil
}

// Walk visits a snapshot of the chunks in ID order; fn runs without the lock
// held, so it may call the store.
func (s *Memory) Walk(ctx context.Context, fn func(id chunk.ID, info Info) error) error {
	type item struct {
		id   chunk.ID
		info Info
	}
	if err := s.begin(ctx); err != nil {
		return err
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	items := make([]item, 0, len(s.m))
	for id, e := range s.m {
		items = append(items, item{id, Info{Size: int64(len(e.sealed)), LastRef: e.lastRef, Tombstoned: e.tomb}})
	}
	s.mu.RUnlock()
	slices.SortFunc(items, func(a, b item) int { return bytes.Compare(a.id[:], b.id[:]) })
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(it.id, it.info); err != nil {
			return err
		}
	}
	return nil
}

// begin fails with ErrClosed once closed, then with ctx's error if done.
func (s *Memory) begin(ctx context.Context) error {
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	return ctx.Err()
}

// Close empties the store; later calls return ErrClosed.
func (s *Memory) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.closed, s.m = true, nil
	return nil
}

// Corrupt flips one bit of a stored chunk, so tests of the layers above can
// see a damaged chunk reported. It reports whether id was present.
func (s *Memory) Corrupt(id chunk.ID, bit int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[id]
	if ok && len(e.sealed) > 0 {
		bit %= 8 * len(e.sealed)
		e.sealed[bit/8] ^= 1 << (bit % 8)
	}
	return ok
}
