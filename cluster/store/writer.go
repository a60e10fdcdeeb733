package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/cairnhq/cairn/cluster/chunk"
)

// Group commit. A writer goroutine owns one active segment. It takes
// whatever requests are queued (up to maxBatch of them or maxBatchBytes),
// appends their records with one pwritev, fsyncs the segment once, commits
// one index transaction, and only then answers every caller in the batch.
// Callers that arrive meanwhile form the next batch, so the more concurrent
// Puts there are, the fewer fsyncs each pays for.
//
// There are Options.Writers such writers, each with its own segment, taking
// batches from one queue: a single file takes appends one at a time (the
// kernel holds its inode lock while copying), so on a fast device one
// segment caps throughput at one core's copying speed.
const (
	maxBatch      = 256 // two iovecs a record stays under IOV_MAX
	maxBatchBytes = 64 << 20
)

type reqKind uint8

const (
	reqPut  reqKind = iota
	reqMove         // compaction: copy a live chunk out of an old segment
	reqSeal         // compaction: seal the writer's segment if it holds dead bytes
)

type request struct {
	kind   reqKind
	id     chunk.ID
	sealed []byte // read in place, so the caller waits until done
	from   loc    // reqMove: where the index must still point for the move to count

	present bool // reqPut: already stored, only refresh it
	retry   bool // reqPut: was present, deleted before the commit: not stored
	at      loc  // where the record was appended

	stored bool // reqPut: appended; reqMove: index now points at the copy
	err    error
	done   chan struct{}
}

func (r *request) bytes() int { return recHeaderSize + len(r.sealed) }

// writer is one group-commit lane.
type writer struct {
	s   *Local
	ctl chan *request // reqSeal, for this writer only
	act *active       // nil until the writer first appends
}

func (w *writer) run() {
	defer w.s.writing.Done()
	defer func() {
		if w.act != nil {
			w.act.f.Close()
		}
	}()
	batch := make([]*request, 0, maxBatch)
	reqs, ctl := w.s.reqs, w.ctl
	for reqs != nil || ctl != nil {
		select {
		case r, ok := <-ctl:
			if !ok {
				ctl = nil
				continue
			}
			r.err = w.sealIfDead()
			close(r.done)
			continue
		case r, ok := <-reqs:
			if !ok {
				reqs = nil
				continue
			}
			batch = append(batch[:0], r)
		}
		n := batch[0].bytes()
	fill:
		for len(batch) < maxBatch && n < maxBatchBytes {
			select {
			case r, ok := <-reqs:
				if !ok {
					break fill
				}
				batch = append(batch, r)
				n += r.bytes()
			default:
				break fill
			}
		}
		w.commit(batch)
		for _, r := range batch {
			close(r.done)
		}
	}
}

func (w *writer) commit(batch []*request) {
	s := w.s
	fail := func(err error) {
		for _, r := range batch {
			r.err, r.stored = err, false
		}
	}
	if err := s.failure(); err != nil {
		fail(err)
		return
	}
	if err := s.markPresent(batch); err != nil {
		fail(err)
		return
	}
	sealed, err := w.append(batch)
	if err != nil {
		// The page cache and the file may no longer agree with what we
		// think we wrote; only recovery on the next Open can sort it out.
		fail(s.fail(err))
		return
	}
	now := s.opts.Now().UnixNano()
	var delta map[uint64]segStat
	err = s.db.Update(func(tx *bolt.Tx) error {
		x := newTxn(tx)
		for _, r := range batch {
			if err := r.index(x, now); err != nil {
				return err
			}
		}
		for _, n := range sealed {
			if err := x.seal(n); err != nil {
				return err
			}
		}
		if w.act != nil {
			if err := x.setOpen(w.act.num, w.act.size); err != nil {
				return err
			}
		}
		delta = x.delta
		return x.finish()
	})
	if err != nil {
		fail(s.fail(fmt.Errorf("index: %w", err)))
		return
	}
	s.applyDelta(delta)
	s.closeSegments(sealed)
}

// markPresent flags the Puts whose chunk is already stored or appears
// earlier in the batch, so that they are not written again. Another writer
// may store the same chunk meanwhile; index settles that.
func (s *Local) markPresent(batch []*request) error {
	seen := make(map[chunk.ID]bool, len(batch))
	return s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketChunks)
		for _, r := range batch {
			if r.kind != reqPut {
				continue
			}
			r.present = seen[r.id] || b.Get(r.id[:]) != nil
			seen[r.id] = true
		}
		return nil
	})
}

// index records r's outcome in the index transaction x. Write transactions
// run one at a time, so what x sees here is final.
func (r *request) index(x *txn, now int64) error {
	switch r.kind {
	case reqPut:
		e, ok, err := x.get(r.id)
		if err != nil {
			return err
		}
		if ok {
			// Stored before, or by another writer since markPresent
			// looked (then this record is dead space): a reference.
			e.lastRef = now
			return x.touch(r.id, e)
		}
		if r.present {
			// Deleted since markPresent looked, and nothing was
			// appended: the caller must submit it again.
			r.retry = true
			return nil
		}
		r.stored = true
		return x.add(r.id, entry{r.at, now})
	case reqMove:
		e, ok, err := x.get(r.id)
		if err != nil || !ok || e.loc != r.from {
			// Deleted, or deleted and stored again, since compaction
			// looked: the copy is dead space.
			return err
		}
		if err := x.remove(r.id, e); err != nil {
			return err
		}
		r.stored = true
		return x.add(r.id, entry{r.at, e.lastRef})
	}
	return nil
}

// append writes the batch's new records to the writer's segment and makes
// them durable, sealing the segment and starting another when a record
// would take it past MaxSegmentSize. It returns the segments it sealed.
func (w *writer) append(batch []*request) ([]uint64, error) {
	s := w.s
	hdrs := make([]byte, recHeaderSize*len(batch))
	iovs := make([][]byte, 0, 2*len(batch))
	var pending int64
	var sealed []uint64
	flush := func() error {
		if pending == 0 {
			return nil
		}
		if err := pwritev(w.act.f, iovs, w.act.size); err != nil {
			return fmt.Errorf("append to segment %d: %w", w.act.num, err)
		}
		if !s.opts.NoSync {
			if err := datasync(w.act.f); err != nil {
				return err
			}
		}
		w.act.size += pending
		s.setSize(w.act.num, w.act.size)
		iovs, pending = iovs[:0], 0
		return nil
	}
	for i, r := range batch {
		if r.kind == reqPut && r.present {
			continue
		}
		rec := int64(r.bytes())
		// An empty segment is never sealed: a record larger than
		// MaxSegmentSize gets a segment of its own.
		if w.act != nil && w.act.size+pending > segHeaderSize && w.act.size+pending+rec > s.opts.MaxSegmentSize {
			if err := flush(); err != nil {
				return sealed, err
			}
			sealed = append(sealed, w.act.num)
			err := w.act.f.Close()
			w.act = nil
			if err != nil {
				return sealed, fmt.Errorf("seal segment %d: %w", sealed[len(sealed)-1], err)
			}
		}
		if w.act == nil {
			if err := w.newSegment(); err != nil {
				return sealed, err
			}
		}
		kind := byte(kindPut)
		if r.kind == reqMove {
			kind = kindCopy
		}
		h := hdrs[i*recHeaderSize : (i+1)*recHeaderSize]
		recHeader{kind: kind, size: uint32(len(r.sealed)), id: r.id}.encode(h)
		r.at = loc{w.act.num, w.act.size + pending, uint32(len(r.sealed))}
		iovs = append(iovs, h, r.sealed)
		pending += rec
	}
	return sealed, flush()
}

// newSegment starts the writer's next segment. It is listed as open in the
// index before the file exists, so recovery looks at it whatever happens
// next.
func (w *writer) newSegment() error {
	s := w.s
	n := s.openSegment()
	err := s.db.Update(func(tx *bolt.Tx) error { return newTxn(tx).setOpen(n, segHeaderSize) })
	if err != nil {
		return fmt.Errorf("register segment %d: %w", n, err)
	}
	a, err := createSegment(s.segDir, n, s.opts.NoSync)
	if err != nil {
		return err
	}
	w.act = a
	s.setSize(n, a.size)
	return nil
}

// sealIfDead seals the writer's segment if it holds dead bytes, so that a
// forced compaction can rewrite it. The next append starts a new one.
func (w *writer) sealIfDead() error {
	s := w.s
	if w.act == nil || !s.hasDead(w.act.num) {
		return nil
	}
	n := w.act.num
	if err := s.db.Update(func(tx *bolt.Tx) error { return newTxn(tx).seal(n) }); err != nil {
		return fmt.Errorf("seal segment %d: %w", n, err)
	}
	err := w.act.f.Close()
	w.act = nil
	s.closeSegments([]uint64{n})
	return err
}
