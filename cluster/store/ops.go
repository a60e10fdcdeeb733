package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	bolt "go.etcd.io/bbolt"

	"github.com/cairnhq/cairn/cluster/chunk"
)

var errZeroID = errors.New("the zero chunk ID is reserved")

// Put stores sealed under id; see Store. Once the request is queued Put waits
// for the writer even if ctx ends, because the writer reads sealed in place.
func (s *Local) Put(ctx context.Context, id chunk.ID, sealed []byte) (bool, error) {
	if !s.gate.enter() {
		return false, ErrClosed
	}
	defer s.gate.leave()
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("put chunk %s: %w", id.Short(), err)
	}
	if id.IsZero() {
		return false, fmt.Errorf("put chunk: %w", errZeroID)
	}
	if err := chunk.Check(sealed); err != nil {
		return false, fmt.Errorf("put chunk %s: %w", id.Short(), err)
	}
	for {
		r := &request{kind: reqPut, id: id, sealed: sealed, done: make(chan struct{})}
		select {
		case s.reqs <- r:
		case <-ctx.Done():
			return false, fmt.Errorf("put chunk %s: %w", id.Short(), ctx.Err())
		}
		<-r.done
		if r.err != nil {
			return false, fmt.Errorf("put chunk %s: %w", id.Short(), r.err)
		}
		if !r.retry {
			return r.stored, nil
		}
		// The chunk was deleted between the writer's look and its commit:
		// nothing was written, so write it now.
	}
}

// Has answers for ids in order and refreshes the last reference of those
// present, in one index transaction.
func (s *Local) Has(ctx context.Context, ids []chunk.ID) ([]bool, error) {
	if !s.gate.enter() {
		return nil, ErrClosed
	}
	defer s.gate.leave()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("has %d chunks: %w", len(ids), err)
	}
	out := make([]bool, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	// Most lookups during ingest of new data find nothing: answer those from
	// a read transaction, and pay for a write only to refresh what is there.
	found := false
	err := s.db.View(func(tx *bolt.Tx) error {
		x := newTxn(tx)
		for i, id := range ids {
			_, ok, err := x.get(id)
			if err != nil {
				return err
			}
			out[i] = ok
			found = found || ok
		}
		return nil
	})
	if err == nil && found {
		now := s.opts.Now().UnixNano()
		err = s.db.Update(func(tx *bolt.Tx) error {
			x := newTxn(tx)
			for i, id := range ids {
				e, ok, err := x.get(id)
				if err != nil {
					return err
				}
				out[i] = ok
				if !ok {
					continue
				}
				e.lastRef = now
				if err := x.touch(id, e); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		return nil, fmt.Errorf("has %d chunks: %w", len(ids), err)
	}
	return out, nil
}

// Get returns a copy of chunk id's sealed bytes after checking its record
// header and outer CRC.
func (s *Local) Get(ctx context.Context, id chunk.ID) ([]byte, error) {
	if !s.gate.enter() {
		return nil, ErrClosed
	}
	defer s.gate.leave()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("get chunk %s: %w", id.Short(), err)
	}
	b, err := s.get(id)
	if err != nil {
		return nil, fmt.Errorf("get chunk %s: %w", id.Short(), err)
	}
	return b, nil
}

func (s *Local) get(id chunk.ID) ([]byte, error) {
	var prev loc
	for try := 0; ; try++ {
		e, ok, err := s.lookup(id)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, ErrNotFound
		}
		b, err := s.read(e.loc, id)
		// Compaction deletes a segment only after moving its chunks, so a
		// vanished segment means the entry has moved: look again. If it has
		// not moved, the file is really gone.
		if errors.Is(err, fs.ErrNotExist) {
			if try < 3 && (try == 0 || e.loc != prev) {
				prev = e.loc
				continue
			}
			return nil, fmt.Errorf("segment %d is missing: %w", e.seg, chunk.ErrCorrupt)
		}
		return b, err
	}
}

// read opens the record's segment for this one read: sealed segments are
// many and rarely read, and a file deleted by compaction after the open
// stays readable.
func (s *Local) read(l loc, id chunk.ID) ([]byte, error) {
	f, err := os.Open(s.segPath(l.seg))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readRecord(f, l, id, nil)
}

func (s *Local) lookup(id chunk.ID) (entry, bool, error) {
	var e entry
	var ok bool
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketChunks).Get(id[:])
		if v == nil {
			return nil
		}
		var err error
		e, err = decodeEntry(id, v)
		ok = err == nil
		return err
	})
	return e, ok, err
}

// Delete forgets ids in one index transaction; their records become dead
// space for compaction.
func (s *Local) Delete(ctx context.Context, ids []chunk.ID) error {
	if !s.gate.enter() {
		return ErrClosed
	}
	defer s.gate.leave()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete %d chunks: %w", len(ids), err)
	}
	if len(ids) == 0 {
		return nil
	}
	var delta map[uint64]segStat
	err := s.db.Update(func(tx *bolt.Tx) error {
		x := newTxn(tx)
		for _, id := range ids {
			e, ok, err := x.get(id)
			if err != nil {
				return err
			}
			if ok {
				if err := x.remove(id, e); err != nil {
					return err
				}
			}
		}
		delta = x.delta
		return x.finish()
	})
	if err != nil {
		return fmt.Errorf("delete %d chunks: %w", len(ids), err)
	}
	s.applyDelta(delta)
	return nil
}

// Stat reports chunk id's size and last reference without refreshing it.
func (s *Local) Stat(ctx context.Context, id chunk.ID) (Info, error) {
	if !s.gate.enter() {
		return Info{}, ErrClosed
	}
	defer s.gate.leave()
	if err := ctx.Err(); err != nil {
		return Info{}, fmt.Errorf("stat chunk %s: %w", id.Short(), err)
	}
	e, ok, err := s.lookup(id)
	if err != nil {
		return Info{}, fmt.Errorf("stat chunk %s: %w", id.Short(), err)
	}
	if !ok {
		return Info{}, fmt.Errorf("stat chunk %s: %w", id.Short(), ErrNotFound)
	}
	return e.info(), nil
}

// Walk visits every chunk in ID order. It reads the index a page at a time
// and calls fn outside any transaction, so fn may call the store; chunks
// added or removed during the walk may or may not be visited.
func (s *Local) Walk(ctx context.Context, fn func(id chunk.ID, info Info) error) error {
	if !s.gate.enter() {
		return ErrClosed
	}
	defer s.gate.leave()
	return s.pages(ctx, func(page []paged) error {
		for _, p := range page {
			if err := fn(p.id, p.info()); err != nil {
				return err
			}
		}
		return nil
	})
}

type paged struct {
	id chunk.ID
	entry
}

const pageSize = 1024

// pages calls fn with the index in ID order, pageSize entries at a time,
// each page read in its own short transaction: a long read transaction
// would stall the index's growth under the writer.
func (s *Local) pages(ctx context.Context, fn func([]paged) error) error {
	var after []byte
	page := make([]paged, 0, pageSize)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if s.gate.closing() {
			return ErrClosed
		}
		page = page[:0]
		err := s.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketChunks).Cursor()
			k, v := c.First()
			if after != nil {
				k, v = c.Seek(after)
				if bytes.Equal(k, after) {
					k, v = c.Next()
				}
			}
			for ; k != nil && len(page) < pageSize; k, v = c.Next() {
				var id chunk.ID
				if len(k) != chunk.IDSize {
					return fmt.Errorf("index key %x: %w", k, chunk.ErrCorrupt)
				}
				copy(id[:], k)
				e, err := decodeEntry(id, v)
				if err != nil {
					return err
				}
				page = append(page, paged{id, e})
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("walk index: %w", err)
		}
		if len(page) == 0 {
			return nil
		}
		last := page[len(page)-1].id
		after = last[:]
		if err := fn(page); err != nil {
			return err
		}
	}
}
