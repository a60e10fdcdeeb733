package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/cairnhq/cairn/cluster/chunk"
)

// DefaultMinDead is the dead fraction at which Compact rewrites a segment
// unless CompactOptions say otherwise.
const DefaultMinDead = 0.5

// CompactOptions choose which segments Compact rewrites.
type CompactOptions struct {
	// MinDead is the fraction of a sealed segment's record bytes that must
	// be dead (deleted, superseded or never indexed) for it to be
	// compacted. Zero means DefaultMinDead.
	MinDead float64
	// Force compacts every segment holding any dead bytes, sealing the
	// writers' segments first so that they are included.
	Force bool
	// SealOpen seals the writers' segments first, so that they count as
	// candidates under MinDead too: garbage collection's deletions often
	// land in the segments still being written.
	SealOpen bool
}

// CompactStats reports what Compact did.
type CompactStats struct {
	SegmentsRemoved int
	ChunksMoved     int
	BytesMoved      int64 // record bytes copied into the writers' segments
	BytesReclaimed  int64 // segment bytes deleted, less BytesMoved
	Damaged         int   // live chunks that failed their check and were left in place
}

// Compact copies the live chunks of mostly dead segments into the writers'
// segments and deletes those segments whole. A copy is appended, fsynced and
// indexed through a writer like a Put before its old segment is deleted,
// so a crash at any point leaves every chunk readable; Puts, Gets and Deletes
// carry on meanwhile. A segment holding a damaged live chunk is kept, so the
// chunk stays where scrub can report it. One Compact runs at a time.
func (s *Local) Compact(ctx context.Context, opts CompactOptions) (CompactStats, error) {
	var st CompactStats
	if !s.gate.enter() {
		return st, ErrClosed
	}
	defer s.gate.leave()
	s.compactMu.Lock()
	defer s.compactMu.Unlock()
	if opts.Force || opts.SealOpen {
		for _, w := range s.writers {
			r := &request{kind: reqSeal, done: make(chan struct{})}
			w.ctl <- r
			<-r.done
			if r.err != nil {
				return st, fmt.Errorf("compact: %w", r.err)
			}
		}
	}
	var removed int64
	for _, n := range s.candidates(opts) {
		if err := ctx.Err(); err != nil {
			return st, fmt.Errorf("compact: %w", err)
		}
		if s.gate.closing() {
			return st, fmt.Errorf("compact: %w", ErrClosed)
		}
		size, err := s.compactSegment(ctx, n, &st)
		removed += size
		st.BytesReclaimed = removed - st.BytesMoved
		if err != nil {
			return st, fmt.Errorf("compact segment %d: %w", n, err)
		}
	}
	return st, nil
}

// candidates lists the sealed segments worth compacting, oldest first.
func (s *Local) candidates(opts CompactOptions) []uint64 {
	minDead := opts.MinDead
	if minDead <= 0 {
		minDead = DefaultMinDead
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []uint64
	for n, si := range s.segs {
		if s.open[n] || si.missing {
			continue
		}
		total := si.size - segHeaderSize
		dead := total - si.live.recordBytes()
		switch {
		case total <= 0 && si.live.count == 0:
			out = append(out, n)
		case dead > 0 && (opts.Force || float64(dead) >= minDead*float64(total)):
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// compactSegment moves segment n's live chunks out and deletes it if none
// are left; it returns the bytes deleted.
func (s *Local) compactSegment(ctx context.Context, n uint64, st *CompactStats) (int64, error) {
	f, err := os.Open(s.segPath(n))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	recs, complete, err := headers(f, fi.Size())
	if err != nil {
		return 0, err
	}
	m := mover{s: s, f: f, st: st, tried: map[chunk.ID]bool{}}
	for len(recs) > 0 {
		group := recs[:min(len(recs), pageSize)]
		recs = recs[len(group):]
		live, err := s.liveAt(n, group)
		if err != nil {
			return 0, err
		}
		for _, p := range live {
			if err := m.move(ctx, p); err != nil {
				return 0, err
			}
		}
	}
	if !complete {
		// A damaged record header hides the records after it; the index
		// still knows where they are.
		err := s.pages(ctx, func(page []paged) error {
			for _, p := range page {
				if p.seg == n {
					if err := m.move(ctx, p); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	if err := m.flush(); err != nil {
		return 0, err
	}
	ok, err := s.dropSegment(n)
	if err != nil || !ok {
		return 0, err
	}
	st.SegmentsRemoved++
	return fi.Size(), nil
}

// headers reads the record headers of a segment, stopping at the first
// damaged one; complete is false if it stopped early.
func headers(f *os.File, size int64) (recs []scanned, complete bool, err error) {
	var hdr [recHeaderSize]byte
	off := int64(segHeaderSize)
	for off+recHeaderSize <= size {
		if _, err := f.ReadAt(hdr[:], off); err != nil {
			return nil, false, fmt.Errorf("read record header at %d: %w", off, err)
		}
		h, err := parseRecHeader(hdr[:])
		if err != nil {
			return recs, false, nil
		}
		rec := scanned{h, off}
		if rec.end() > size {
			return recs, false, nil
		}
		recs = append(recs, rec)
		off = rec.end()
	}
	return recs, off == size, nil
}

// liveAt returns those of recs that the index points at.
func (s *Local) liveAt(seg uint64, recs []scanned) ([]paged, error) {
	var live []paged
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketChunks)
		for _, r := range recs {
			v := b.Get(r.id[:])
			if v == nil {
				continue
			}
			e, err := decodeEntry(r.id, v)
			if err != nil {
				return err
			}
			if e.loc == (loc{seg, r.off, r.size}) {
				live = append(live, paged{r.id, e})
			}
		}
		return nil
	})
	return live, err
}

// mover reads live chunks out of one segment and hands them to the writer
// in batches.
type mover struct {
	s       *Local
	f       *os.File
	st      *CompactStats
	tried   map[chunk.ID]bool
	pending []*request
	bytes   int
}

func (m *mover) move(ctx context.Context, p paged) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if m.tried[p.id] {
		return nil
	}
	m.tried[p.id] = true
	sealed, err := readRecord(m.f, p.loc, p.id, nil)
	if err != nil {
		if errors.Is(err, chunk.ErrCorrupt) {
			m.st.Damaged++
			return nil
		}
		return err
	}
	r := &request{kind: reqMove, id: p.id, sealed: sealed, from: p.loc}
	m.pending = append(m.pending, r)
	m.bytes += r.bytes()
	if len(m.pending) >= maxBatch || m.bytes >= maxBatchBytes/2 {
		return m.flush()
	}
	return nil
}

func (m *mover) flush() error {
	reqs := m.pending
	m.pending, m.bytes = nil, 0
	if err := m.s.submit(reqs); err != nil {
		return err
	}
	for _, r := range reqs {
		m.st.BytesMoved += int64(r.bytes())
		if r.stored {
			m.st.ChunksMoved++
		}
	}
	return nil
}

// submit queues requests for the writer and waits for all of them. The
// caller is inside the gate, so the writer is running.
func (s *Local) submit(reqs []*request) error {
	for _, r := range reqs {
		r.done = make(chan struct{})
		s.reqs <- r
	}
	var err error
	for _, r := range reqs {
		<-r.done
		if err == nil {
			err = r.err
		}
	}
	return err
}

// dropSegment deletes segment n if the index counts no live chunk in it.
// The index entry goes first: a file left behind by a crash is all dead
// space, and the next Compact removes it.
func (s *Local) dropSegment(n uint64) (bool, error) {
	drop := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSegments)
		if decodeSegStat(b.Get(segKey(n))).count != 0 {
			return nil
		}
		drop = true
		return b.Delete(segKey(n))
	})
	if err != nil || !drop {
		return false, err
	}
	s.mu.Lock()
	delete(s.segs, n)
	s.mu.Unlock()
	if err := os.Remove(s.segPath(n)); err != nil {
		return false, err
	}
	if s.opts.NoSync {
		return true, nil
	}
	return true, syncDir(s.segDir)
}
