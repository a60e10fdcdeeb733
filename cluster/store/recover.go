package store

import (
	"fmt"
	"os"

	bolt "go.etcd.io/bbolt"
)

// recover brings the index and the segments into agreement when the store
// opens, and hands segments that can go on growing to the writers.
//
// Sealed segments are trusted as they are: their records either are indexed
// or were deleted. Open segments hold records past their indexed offset that
// were appended but whose batch never committed, so nobody was told they are
// stored: complete, valid ones stored by Put are indexed now, and whatever
// follows the last valid record is a torn tail and is cut off. Copies made by
// compaction are not re-indexed; the chunk they copy is still indexed where
// it was, or was deleted meanwhile. A new index with segments beside it
// means index.db was lost: every segment is scanned and every record indexed,
// the later copy of a chunk winning, and nothing is cut or appended to;
// deleted chunks come back then, as garbage for the next GC rather than a
// loss.
//
// Nothing acknowledged is ever cut: the indexed offset covers every
// acknowledged record. If a segment is shorter than the index says, the disk
// lost acknowledged writes; the store does not append to it, and Get and
// Scrub report the missing chunks as corrupt.
func (s *Local) recover() error {
	var fresh bool
	var open map[uint64]int64
	var stats map[uint64]segStat
	err := s.db.Update(func(tx *bolt.Tx) error {
		var err error
		fresh, err = initIndex(tx)
		open, stats = readOpen(tx), readSegStats(tx)
		return err
	})
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	nums, err := listSegments(s.segDir)
	if err != nil {
		return err
	}
	maxNum := uint64(0)
	for n := range open {
		maxNum = max(maxNum, n)
	}
	for n := range stats {
		maxNum = max(maxNum, n)
	}
	if len(nums) > 0 {
		maxNum = max(maxNum, nums[len(nums)-1])
	}

	sizes := map[uint64]int64{}
	var reuse []*active
	for _, n := range nums {
		off, isOpen := open[n]
		sr := segRecovery{n: n, open: isOpen, indexed: off, rebuild: fresh}
		if err := s.recoverSegment(&sr, stats); err != nil {
			return fmt.Errorf("recover segment %s: %w", segName(n), err)
		}
		if !sr.removed {
			sizes[n] = sr.size
		}
		if sr.active != nil {
			reuse = append(reuse, sr.active)
		}
	}
	for i, a := range reuse {
		if i < len(s.writers) {
			s.writers[i].act = a
		} else {
			a.f.Close()
		}
	}

	err = s.db.Update(func(tx *bolt.Tx) error {
		x := newTxn(tx)
		for n := range open {
			if err := x.seal(n); err != nil {
				return err
			}
		}
		for _, w := range s.writers {
			if w.act != nil {
				if err := x.setOpen(w.act.num, w.act.size); err != nil {
					return err
				}
			}
		}
		for n, st := range stats {
			if _, ok := sizes[n]; !ok && st.count == 0 {
				if err := x.segs.Delete(segKey(n)); err != nil {
					return err
				}
				delete(stats, n)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	for n, size := range sizes {
		s.segs[n] = &segInfo{size: size, live: stats[n]}
	}
	for n, st := range stats {
		if _, ok := sizes[n]; !ok {
			s.segs[n] = &segInfo{live: st, missing: true}
		}
	}
	for _, w := range s.writers {
		if w.act != nil {
			s.open[w.act.num] = true
		}
	}
	s.nextSeg = maxNum + 1
	return nil
}

type segRecovery struct {
	n       uint64
	open    bool  // listed as open in the index
	indexed int64 // if open, how far it is indexed
	rebuild bool

	size    int64
	removed bool
	active  *active // set if a writer may go on appending to it
}

func (s *Local) recoverSegment(sr *segRecovery, stats map[uint64]segStat) error {
	path := s.segPath(sr.n)
	if !sr.open && !sr.rebuild {
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		sr.size = fi.Size()
		return nil
	}
	flag := os.O_RDONLY
	if sr.open {
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return err
	}
	keep := false
	defer func() {
		if !keep {
			f.Close()
		}
	}()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	sr.size = fi.Size()
	hdr := make([]byte, segHeaderSize)
	n, _ := f.ReadAt(hdr, 0)
	num, herr := parseSegHeader(hdr[:n])
	headerOK := herr == nil && num == sr.n
	if !headerOK && sr.size <= segHeaderSize {
		// A crash while the segment was being created: it never held a
		// record.
		f.Close()
		if err := os.Remove(path); err != nil {
			return err
		}
		sr.removed = true
		if s.opts.NoSync {
			return nil
		}
		return syncDir(s.segDir)
	}

	start := max(int64(segHeaderSize), sr.indexed)
	if start > sr.size {
		return nil // shorter than the index says; never appended to again
	}
	var found []scanned
	end, err := scan(f, sr.size, start, func(rec scanned, _ []byte) error {
		found = append(found, rec)
		return nil
	})
	if err != nil {
		return err
	}
	// Only an open segment can have a torn tail, and only a segment that
	// is ours is cut: a damaged header means we leave the file alone.
	if end < sr.size && sr.open && headerOK {
		if err := f.Truncate(end); err != nil {
			return fmt.Errorf("cut torn tail at %d: %w", end, err)
		}
		if !s.opts.NoSync {
			if err := datasync(f); err != nil {
				return err
			}
		}
		sr.size = end
	}
	if err := s.indexFound(found, sr.n, sr.rebuild, stats); err != nil {
		return err
	}
	if sr.open && headerOK && sr.size < s.opts.MaxSegmentSize {
		sr.active = &active{num: sr.n, f: f, size: sr.size}
		keep = true
	}
	return nil
}

// indexFound adds records found past the frontier to the index.
func (s *Local) indexFound(found []scanned, seg uint64, rebuild bool, stats map[uint64]segStat) error {
	if len(found) == 0 {
		return nil
	}
	now := s.opts.Now().UnixNano()
	return s.db.Update(func(tx *bolt.Tx) error {
		x := newTxn(tx)
		for _, rec := range found {
			e, ok, err := x.get(rec.id)
			if err != nil {
				return err
			}
			switch {
			case rebuild && ok:
				if err := x.remove(rec.id, e); err != nil {
					return err
				}
			case rebuild:
			case ok || rec.kind != kindPut:
				continue
			}
			if err := x.add(rec.id, entry{loc{seg, rec.off, rec.size}, now}); err != nil {
				return err
			}
		}
		if err := x.finish(); err != nil {
			return err
		}
		for n, d := range x.delta {
			stats[n] = stats[n].add(d)
		}
		return nil
	})
}
