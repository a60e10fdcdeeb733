// Package backup is Cairn's ingest engine. For each disk of a source snapshot
// it turns the extents to read into aligned blocks, drops zero blocks, names
// the rest by keyed hash, asks the store in batches which it already has, and
// seals and stores only new ones, pipelined over all cores with a fixed pool
// of block buffers so memory stays bounded whatever the disk size. It then
// writes the disk's index tree, reusing every unchanged leaf of the base.
//
// The engine never commits a restore point: it returns one whose every chunk
// is durable, and the caller commits it to the catalog last.
package backup

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnhq/cairn/appliance/index"
	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/meta"
	"github.com/cairnhq/cairn/plugins"
)

// Store is what the engine needs of chunk storage.
type Store interface {
	Has(ctx context.Context, ids []chunk.ID) ([]bool, error)
	Put(ctx context.Context, id chunk.ID, sealed []byte) (bool, error)
	Get(ctx context.Context, id chunk.ID) ([]byte, error)
}

// Engine runs backups. The zero value is not usable: set Store.
type Engine struct {
	Store Store
	// Readers read and hash blocks (default GOMAXPROCS). Sealers compress,
	// encrypt and store them (default 2×GOMAXPROCS): a sealer waits for its
	// Put to be durable, so more sealers than cores keep the cores busy and
	// give the store larger group commits.
	Readers, Sealers int
	// Buffers bounds the blocks in flight across every backup this engine
	// runs at once, and so its memory: Buffers × BlockSize (default
	// 2×(Readers+Sealers)).
	Buffers int
	// BatchSize bounds one dedupe lookup (default 32).
	BatchSize int
	// BlockSize of new restore points (default chunk.BlockSize).
	BlockSize int64
	// Now is the clock (default time.Now).
	Now func() time.Time

	poolOnce sync.Once
	pool     chan []byte // block buffers shared by every running backup
}

// Request is one backup of one object.
type Request struct {
	Key      *chunk.Key
	Snapshot plugins.Snapshot
	// Base is the previous restore point of the object, or nil for a full
	// backup.
	Base *meta.RestorePoint
	// Progress, if not nil, is updated as blocks are processed.
	Progress *Progress
	// Note, if not nil, receives messages a user should see (fallbacks).
	Note func(string)
}

// Progress counts bytes to read and read so far; safe to read concurrently.
type Progress struct {
	Done, Total atomic.Int64
}

// Result is what a backup produced: the disks of a restore point, ready for
// the caller to commit, and what it cost.
type Result struct {
	Disks        []meta.Disk
	LogicalBytes int64
	ReadBytes    int64
	NewBytes     int64
	StoredBytes  int64
	Chunks       int64 // non-zero blocks read
	NewChunks    int64
	ZeroBlocks   int64
	Fingerprint  string
	Duration     time.Duration
}

// Errors.
var ErrBadExtents = errors.New("source reported invalid extents")

// Run backs up every disk of req.Snapshot.
func (e *Engine) Run(ctx context.Context, req Request) (*Result, error) {
	if e.Store == nil || req.Key == nil || req.Snapshot == nil {
		return nil, errors.New("backup: engine needs a store, a key and a snapshot")
	}
	now := e.Now
	if now == nil {
		now = time.Now
	}
	start := now()
	progress := req.Progress
	if progress == nil {
		progress = new(Progress)
	}
	note := req.Note
	if note == nil {
		note = func(string) {}
	}
	res := &Result{}
	var prints []index.DiskPrint
	for _, d := range req.Snapshot.Disks() {
		disk, st, err := e.disk(ctx, req, d, progress, note)
		if err != nil {
			return nil, fmt.Errorf("back up disk %s: %w", d.Key(), err)
		}
		res.Disks = append(res.Disks, disk)
		res.LogicalBytes += disk.Capacity
		res.ReadBytes += st.read.Load()
		res.NewBytes += st.newBytes.Load()
		res.StoredBytes += st.stored.Load()
		res.Chunks += st.chunks.Load()
		res.NewChunks += st.newChunks.Load()
		res.ZeroBlocks += st.zero.Load()
		prints = append(prints, index.DiskPrint{Key: disk.Key, Capacity: disk.Capacity, BlockSize: disk.BlockSize, Fingerprint: disk.Fingerprint})
	}
	res.Fingerprint = index.PointFingerprint(prints)
	res.Duration = now().Sub(start)
	return res, nil
}

func (e *Engine) config() (readers, sealers, buffers, batch int, bs int64) {
	readers, sealers, buffers, batch, bs = e.Readers, e.Sealers, e.Buffers, e.BatchSize, e.BlockSize
	if readers <= 0 {
		readers = runtime.GOMAXPROCS(0)
	}
	if sealers <= 0 {
		sealers = 2 * runtime.GOMAXPROCS(0)
	}
	if buffers <= 0 {
		buffers = 2 * (readers + sealers)
	}
	if batch <= 0 {
		batch = 32
	}
	batch = min(batch, buffers)
	if bs <= 0 {
		bs = chunk.BlockSize
	}
	return
}

// buffers returns the engine's pool of block buffers, each allocated on
// first use so small backups stay small.
func (e *Engine) buffers() chan []byte {
	e.poolOnce.Do(func() {
		_, _, n, _, _ := e.config()
		e.pool = make(chan []byte, n)
		for range n {
			e.pool <- nil
		}
	})
	return e.pool
}

// stats are a disk's counters, updated by the pipeline.
type stats struct {
	read, newBytes, stored, chunks, newChunks, zero atomic.Int64
}

// disk backs up one disk and returns its catalog record.
func (e *Engine) disk(ctx context.Context, req Request, d plugins.Disk, progress *Progress, note func(string)) (meta.Disk, *stats, error) {
	_, _, _, _, bs := e.config()
	geo := index.Geometry{Capacity: d.Capacity(), BlockSize: bs}
	if err := geo.Validate(); err != nil {
		return meta.Disk{}, nil, err
	}
	baseDisk := findDisk(req.Base, d.Key())
	var base *index.Tree
	var pbase *plugins.Base
	switch {
	case req.Base == nil:
	case baseDisk == nil:
		note(fmt.Sprintf("disk %s is new since %s: reading it in full", d.Key(), req.Base.ID))
	case baseDisk.Capacity != geo.Capacity || baseDisk.BlockSize != bs:
		note(fmt.Sprintf("disk %s changed size since %s: reading it in full", d.Key(), req.Base.ID))
	default:
		t, err := index.Open(ctx, e.loader(req.Key), baseDisk.Root, index.Geometry{Capacity: baseDisk.Capacity, BlockSize: baseDisk.BlockSize})
		if err != nil {
			return meta.Disk{}, nil, fmt.Errorf("read the index of base %s: %w", req.Base.ID, err)
		}
		base = t
		pbase = &plugins.Base{Capacity: baseDisk.Capacity, ChangeToken: baseDisk.ChangeToken}
	}
	ch, err := d.Changes(ctx, pbase)
	if err != nil {
		return meta.Disk{}, nil, fmt.Errorf("find changed extents: %w", err)
	}
	if ch.Note != "" {
		note(fmt.Sprintf("disk %s: %s", d.Key(), ch.Note))
	}
	if err := checkExtents(ch.Extents, geo.Capacity); err != nil {
		return meta.Disk{}, nil, err
	}
	if ch.Delta && base == nil {
		return meta.Disk{}, nil, fmt.Errorf("%w: a delta without a base", ErrBadExtents)
	}
	builder, err := index.NewBuilder(geo, e.putNode(req.Key))
	if err != nil {
		return meta.Disk{}, nil, err
	}
	p := &pipeline{engine: e, key: req.Key, disk: d, geo: geo, base: base, delta: ch.Delta,
		builder: builder, progress: progress, st: &stats{}}
	for b := range blocks(ch.Extents, bs) {
		progress.Total.Add(geo.BlockLen(b))
	}
	if err := p.run(ctx, ch.Extents); err != nil {
		return meta.Disk{}, nil, err
	}
	root, fp, err := builder.Finish(ctx)
	if err != nil {
		return meta.Disk{}, nil, err
	}
	return meta.Disk{
		Key: d.Key(), Capacity: geo.Capacity, BlockSize: bs, Root: root, Levels: geo.Levels(),
		Fingerprint: fmt.Sprintf("%x", fp), Method: ch.Method, ChangeToken: ch.Token,
	}, p.st, nil
}

func findDisk(rp *meta.RestorePoint, key string) *meta.Disk {
	if rp == nil {
		return nil
	}
	for i := range rp.Disks {
		if rp.Disks[i].Key == key {
			return &rp.Disks[i]
		}
	}
	return nil
}

// loader reads index nodes: fetched, authenticated and re-hashed.
func (e *Engine) loader(key *chunk.Key) index.LoadFunc {
	return func(ctx context.Context, id chunk.ID) ([]byte, error) {
		sealed, err := e.Store.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		return key.Unseal(nil, id, sealed)
	}
}

// putNode seals and stores an index node.
func (e *Engine) putNode(key *chunk.Key) index.PutFunc {
	return func(ctx context.Context, plain []byte) (chunk.ID, error) {
		id := key.Sum(plain)
		sealed, err := key.Seal(nil, id, plain)
		if err != nil {
			return id, err
		}
		if _, err := e.Store.Put(ctx, id, sealed); err != nil {
			return id, fmt.Errorf("put index node %s: %w", id.Short(), err)
		}
		return id, nil
	}
}

func checkExtents(ext []plugins.Extent, capacity int64) error {
	var end int64
	for i, x := range ext {
		if x.Offset < end || x.Length <= 0 || x.Offset > capacity-x.Length {
			return fmt.Errorf("%w: extent %d [%d,+%d) on a %d-byte disk", ErrBadExtents, i, x.Offset, x.Length, capacity)
		}
		end = x.End()
	}
	return nil
}

// blocks yields, in order and once each, the blocks that sorted extents touch.
func blocks(ext []plugins.Extent, bs int64) iter.Seq[int64] {
	return func(yield func(int64) bool) {
		next := int64(0)
		for _, x := range ext {
			for b := max(next, x.Offset/bs); b <= (x.End()-1)/bs; b++ {
				if !yield(b) {
					return
				}
				next = b + 1
			}
		}
	}
}
