package backup

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"iter"
	"sync"
	"sync/atomic"

	"github.com/cairnhq/cairn/appliance/index"
	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/plugins"
)

// pipeline moves one disk's blocks through read+hash → batched dedupe lookup
// → seal+store. Buffers come from the engine's fixed pool; a block holds its
// buffer until its chunk is known stored or known present, and every stage
// can finish the blocks it holds without taking another, so pipelines
// sharing the pool cannot deadlock.
type pipeline struct {
	engine   *Engine
	key      *chunk.Key
	disk     plugins.Disk
	geo      index.Geometry
	base     *index.Tree
	delta    bool
	builder  *index.Builder
	progress *Progress
	st       *stats

	free    chan []byte
	once    sync.Once
	err     error
	cancel  context.CancelFunc
	pending sync.WaitGroup // leaves not yet handed to the builder
}

// leaf collects the entries of one leaf while its blocks are in flight.
type leaf struct {
	n       int64
	entries []chunk.ID
	prev    []chunk.ID // the base's entries, to skip lookups of unchanged blocks
	left    atomic.Int64
}

// block is one block in flight.
type block struct {
	leaf *leaf
	slot int
	off  int64
	buf  []byte
	id   chunk.ID
}

func (p *pipeline) fail(err error) {
	p.once.Do(func() { p.err = err; p.cancel() })
}

func (p *pipeline) run(ctx context.Context, extents []plugins.Extent) error {
	readers, sealers, _, batch, bs := p.engine.config()
	ctx, p.cancel = context.WithCancel(ctx)
	defer p.cancel()
	p.free = p.engine.buffers()
	reads := make(chan *block, readers)
	lookups := make(chan *block, batch)
	seals := make(chan *block, sealers)

	var readersWG, sealersWG, batcherWG sync.WaitGroup
	for range readers {
		readersWG.Go(func() { p.reader(ctx, reads, lookups, bs) })
	}
	batcherWG.Go(func() { p.batcher(ctx, lookups, seals, batch) })
	for range sealers {
		sealersWG.Go(func() { p.sealer(ctx, seals) })
	}

	p.produce(ctx, extents, reads, bs)
	close(reads)
	readersWG.Wait()
	close(lookups)
	batcherWG.Wait()
	close(seals)
	sealersWG.Wait()
	p.pending.Wait()
	if p.err == nil && ctx.Err() != nil {
		p.err = ctx.Err()
	}
	return p.err
}

// produce walks the leaves in order and dispatches the blocks to read.
func (p *pipeline) produce(ctx context.Context, extents []plugins.Extent, reads chan<- *block, bs int64) {
	next, stop := iter.Pull(blocks(extents, bs))
	defer stop()
	b, ok := next()
	for l := range p.geo.Leaves() {
		lo, hi := l*index.Fanout, l*index.Fanout+int64(p.geo.LeafBlocks(l))
		if !ok || b >= hi {
			if err := p.unchangedLeaf(ctx, l); err != nil {
				p.fail(err)
				return
			}
			continue
		}
		lf, err := p.openLeaf(ctx, l)
		if err != nil {
			p.fail(err)
			return
		}
		p.pending.Add(1)
		lf.left.Store(1) // the producer's own hold, dropped below
		for ; ok && b < hi; b, ok = next() {
			var buf []byte
			select {
			case buf = <-p.free:
			case <-ctx.Done():
				p.done(ctx, lf)
				return
			}
			if buf == nil {
				buf = make([]byte, bs)
			}
			lf.left.Add(1)
			blk := &block{leaf: lf, slot: int(b - lo), off: b * bs, buf: buf[:p.geo.BlockLen(b)]}
			select {
			case reads <- blk:
			case <-ctx.Done():
				p.free <- buf
				lf.left.Add(-1)
				p.done(ctx, lf)
				return
			}
		}
		p.done(ctx, lf)
	}
}

// unchangedLeaf records a leaf no extent touches: the base's, or zeros.
func (p *pipeline) unchangedLeaf(ctx context.Context, l int64) error {
	if !p.delta {
		return p.builder.Leaf(ctx, l, make([]chunk.ID, p.geo.LeafBlocks(l)), chunk.Zero)
	}
	if p.geo.Levels() == 0 {
		_, e, err := p.base.Leaf(ctx, l)
		if err != nil {
			return err
		}
		return p.builder.Leaf(ctx, l, orZeros(e, p.geo.LeafBlocks(l)), chunk.Zero)
	}
	id, err := p.base.LeafID(ctx, l)
	if err != nil {
		return err
	}
	if id.IsZero() {
		return p.builder.Leaf(ctx, l, make([]chunk.ID, p.geo.LeafBlocks(l)), chunk.Zero)
	}
	return p.builder.Leaf(ctx, l, nil, id)
}

// openLeaf starts a leaf with some blocks to read.
func (p *pipeline) openLeaf(ctx context.Context, l int64) (*leaf, error) {
	n := p.geo.LeafBlocks(l)
	lf := &leaf{n: l, entries: make([]chunk.ID, n)}
	if p.base == nil {
		return lf, nil
	}
	_, prev, err := p.base.Leaf(ctx, l)
	if err != nil {
		return nil, err
	}
	if prev != nil {
		lf.prev = prev
		if p.delta {
			copy(lf.entries, prev)
		}
	}
	return lf, nil
}

// done drops one hold on a leaf; the last hold hands it to the builder.
func (p *pipeline) done(ctx context.Context, lf *leaf) {
	if lf.left.Add(-1) != 0 {
		return
	}
	defer p.pending.Done()
	if ctx.Err() != nil {
		return
	}
	if err := p.builder.Leaf(ctx, lf.n, lf.entries, chunk.Zero); err != nil {
		p.fail(fmt.Errorf("write index leaf %d: %w", lf.n, err))
	}
}

// finish records a block's chunk ID and releases its buffer.
func (p *pipeline) finish(ctx context.Context, b *block, id chunk.ID) {
	b.leaf.entries[b.slot] = id
	p.progress.Done.Add(int64(len(b.buf)))
	p.free <- b.buf[:cap(b.buf)]
	p.done(ctx, b.leaf)
}

// drop releases a block that will not complete.
func (p *pipeline) drop(ctx context.Context, b *block) {
	p.free <- b.buf[:cap(b.buf)]
	p.done(ctx, b.leaf)
}

func (p *pipeline) reader(ctx context.Context, in <-chan *block, out chan<- *block, bs int64) {
	for b := range in {
		if ctx.Err() != nil {
			p.drop(ctx, b)
			continue
		}
		n, err := p.disk.ReadAt(b.buf, b.off)
		if n < len(b.buf) || (err != nil && err != io.EOF) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			p.fail(fmt.Errorf("read %d bytes at offset %d: %w", len(b.buf), b.off, err))
			p.drop(ctx, b)
			continue
		}
		p.st.read.Add(int64(n))
		if isZero(b.buf) {
			p.st.zero.Add(1)
			p.finish(ctx, b, chunk.Zero)
			continue
		}
		p.st.chunks.Add(1)
		b.id = p.key.Sum(b.buf)
		if b.leaf.prev != nil && b.leaf.prev[b.slot] == b.id {
			p.finish(ctx, b, b.id) // unchanged since the base: no lookup
			continue
		}
		select {
		case out <- b:
		case <-ctx.Done():
			p.drop(ctx, b)
		}
	}
}

// batcher asks the store about up to max blocks at a time: whatever has
// arrived since the last lookup, so batches grow when the store is slow.
func (p *pipeline) batcher(ctx context.Context, in <-chan *block, out chan<- *block, max int) {
	batch := make([]*block, 0, max)
	ids := make([]chunk.ID, 0, max)
	for b := range in {
		batch = append(batch[:0], b)
	fill:
		for len(batch) < max {
			select {
			case b, ok := <-in:
				if !ok {
					break fill
				}
				batch = append(batch, b)
			default:
				break fill
			}
		}
		if ctx.Err() != nil {
			for _, b := range batch {
				p.drop(ctx, b)
			}
			continue
		}
		ids = ids[:0]
		for _, b := range batch {
			ids = append(ids, b.id)
		}
		have, err := p.engine.Store.Has(ctx, ids)
		if err == nil && len(have) != len(ids) {
			err = fmt.Errorf("store answered %d of %d lookups", len(have), len(ids))
		}
		if err != nil {
			p.fail(fmt.Errorf("dedupe lookup: %w", err))
			for _, b := range batch {
				p.drop(ctx, b)
			}
			continue
		}
		for i, b := range batch {
			if have[i] {
				p.finish(ctx, b, b.id)
				continue
			}
			select {
			case out <- b:
			case <-ctx.Done():
				p.drop(ctx, b)
			}
		}
	}
}

func (p *pipeline) sealer(ctx context.Context, in <-chan *block) {
	var sealed []byte
	for b := range in {
		if ctx.Err() != nil {
			p.drop(ctx, b)
			continue
		}
		var err error
		sealed, err = p.key.Seal(sealed[:0], b.id, b.buf)
		if err != nil {
			p.fail(err)
			p.drop(ctx, b)
			continue
		}
		stored, err := p.engine.Store.Put(ctx, b.id, sealed)
		if err != nil {
			p.fail(fmt.Errorf("store chunk %s: %w", b.id.Short(), err))
			p.drop(ctx, b)
			continue
		}
		if stored {
			p.st.newChunks.Add(1)
			p.st.newBytes.Add(int64(len(b.buf)))
			p.st.stored.Add(int64(len(sealed)))
		}
		p.finish(ctx, b, b.id)
	}
}

var zeros [64 << 10]byte

func isZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeros))
		if !bytes.Equal(b[:n], zeros[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

func orZeros(e []chunk.ID, n int) []chunk.ID {
	if e == nil {
		return make([]chunk.ID, n)
	}
	return e
}
