// Package restore reads restore points back: it walks each disk's index tree,
// fetches every non-zero chunk in parallel, authenticates and re-hashes it,
// checks the tree against the recorded fingerprints, and writes the blocks to
// a target. Verify is the same walk without a target, counting what is wrong
// instead of stopping at the first problem.
package restore

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/cairnhq/cairn/appliance/index"
	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/meta"
	"github.com/cairnhq/cairn/cluster/store"
	"github.com/cairnhq/cairn/plugins"
)

// Store is what restore needs of chunk storage.
type Store interface {
	Get(ctx context.Context, id chunk.ID) ([]byte, error)
}

// Engine restores and verifies restore points.
type Engine struct {
	Store Store
	// Workers fetch and unseal chunks in parallel (default 2×GOMAXPROCS).
	Workers int
	// Quarantine, if set, is told of every chunk proven corrupt (it failed
	// its CRC, authentication or re-hash; not a missing chunk, a wrong key
	// or an I/O error), so the store can stop offering it for dedupe.
	Quarantine func(ctx context.Context, id chunk.ID)
}

// Progress counts bytes of the restore point covered so far.
type Progress struct {
	Done, Total atomic.Int64
}

// ErrFingerprint means an index tree does not match its recorded fingerprint.
var ErrFingerprint = errors.New("fingerprint mismatch")

// Restore writes every disk of rp to target. A failure aborts the disk being
// written, so nothing half-restored is left behind.
func (e *Engine) Restore(ctx context.Context, key *chunk.Key, rp meta.RestorePoint, target plugins.Target, progress *Progress) error {
	if err := checkPoint(rp); err != nil {
		return err
	}
	progress = orNew(progress)
	progress.Total.Store(rp.LogicalBytes)
	for _, d := range rp.Disks {
		w, err := target.Create(ctx, plugins.DiskSpec{Key: d.Key, Capacity: d.Capacity})
		if err != nil {
			return fmt.Errorf("restore disk %s: %w", d.Key, err)
		}
		err = e.walk(ctx, key, d, progress, func(b blockRef, plain []byte, err error) error {
			if err != nil {
				return err
			}
			if _, err := w.WriteAt(plain, b.off); err != nil {
				return fmt.Errorf("write %d bytes at offset %d: %w", len(plain), b.off, err)
			}
			return nil
		})
		if err == nil {
			err = w.Commit(ctx)
		}
		if err != nil {
			if aerr := w.Abort(context.WithoutCancel(ctx)); aerr != nil {
				err = errors.Join(err, fmt.Errorf("abort: %w", aerr))
			}
			return fmt.Errorf("restore disk %s: %w", d.Key, err)
		}
	}
	return nil
}

// Verify re-reads every chunk of rp, authenticates and re-hashes it, and
// checks the index trees against the recorded fingerprints. Problems are
// counted in the result; the error is for a verification that could not run.
func (e *Engine) Verify(ctx context.Context, key *chunk.Key, rp meta.RestorePoint, progress *Progress) (meta.VerifyResult, error) {
	progress = orNew(progress)
	progress.Total.Store(rp.LogicalBytes)
	var res meta.VerifyResult
	var mu sync.Mutex
	problem := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if errors.Is(err, store.ErrNotFound) {
			res.Missing++
		} else {
			res.Corrupt++
		}
		if len(res.Errors) < 20 {
			res.Errors = append(res.Errors, err.Error())
		}
	}
	if err := checkPoint(rp); err != nil {
		problem(err)
	}
	var checked, bytes atomic.Int64
	for _, d := range rp.Disks {
		err := e.walk(ctx, key, d, progress, func(b blockRef, plain []byte, err error) error {
			if err != nil {
				if ctx.Err() != nil {
					return err
				}
				problem(fmt.Errorf("disk %s block at offset %d: %w", d.Key, b.off, err))
				return nil
			}
			checked.Add(1)
			bytes.Add(int64(len(plain)))
			return nil
		})
		if err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			problem(fmt.Errorf("disk %s: %w", d.Key, err))
		}
	}
	res.ChunksChecked, res.BytesChecked = checked.Load(), bytes.Load()
	res.Fingerprint = rp.Fingerprint
	res.OK = res.Corrupt == 0 && res.Missing == 0
	return res, nil
}

// checkPoint recomputes a restore point's fingerprint from its disks'.
func checkPoint(rp meta.RestorePoint) error {
	prints := make([]index.DiskPrint, len(rp.Disks))
	for i, d := range rp.Disks {
		prints[i] = index.DiskPrint{Key: d.Key, Capacity: d.Capacity, BlockSize: d.BlockSize, Fingerprint: d.Fingerprint}
	}
	if got := index.PointFingerprint(prints); got != rp.Fingerprint {
		return fmt.Errorf("restore point %s: disks combine to %.12s, recorded %.12s: %w", rp.ID, got, rp.Fingerprint, ErrFingerprint)
	}
	return nil
}

type blockRef struct {
	off int64
	n   int64
	id  chunk.ID
}

// walk reads every non-zero block of a disk in parallel and calls fn with its
// verified plaintext, or with the error that kept it from being read. fn may
// be called concurrently; an error from fn stops the walk.
func (e *Engine) walk(ctx context.Context, key *chunk.Key, d meta.Disk, progress *Progress, fn func(blockRef, []byte, error) error) error {
	geo := index.Geometry{Capacity: d.Capacity, BlockSize: d.BlockSize}
	load := func(ctx context.Context, id chunk.ID) ([]byte, error) {
		sealed, err := e.Store.Get(ctx, id)
		if err == nil {
			sealed, err = key.Unseal(nil, id, sealed)
		}
		if err != nil {
			e.quarantine(ctx, id, err)
		}
		return sealed, err
	}
	tree, err := index.Open(ctx, load, d.Root, geo)
	if err != nil {
		return err
	}
	if got := fmt.Sprintf("%x", tree.Fingerprint()); got != d.Fingerprint {
		return fmt.Errorf("index root hashes to %.12s, recorded %.12s: %w", got, d.Fingerprint, ErrFingerprint)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var once sync.Once
	var firstErr error
	fail := func(err error) { once.Do(func() { firstErr = err; cancel() }) }

	workers := e.Workers
	if workers <= 0 {
		workers = 2 * runtime.GOMAXPROCS(0)
	}
	refs := make(chan blockRef, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			var plain []byte
			for b := range refs {
				if ctx.Err() != nil {
					continue
				}
				var err error
				plain, err = e.read(ctx, key, b, plain[:0])
				if err := fn(b, plain, err); err != nil {
					fail(err)
				}
				progress.Done.Add(b.n)
			}
		})
	}
	func() {
		defer close(refs)
		for l := range geo.Leaves() {
			_, entries, err := tree.Leaf(ctx, l)
			if err != nil {
				if ferr := fn(blockRef{off: l * index.Fanout * geo.BlockSize}, nil, fmt.Errorf("index leaf %d: %w", l, err)); ferr != nil {
					fail(ferr)
					return
				}
				continue
			}
			for j, id := range entries {
				b := l*index.Fanout + int64(j)
				ref := blockRef{off: b * geo.BlockSize, n: geo.BlockLen(b), id: id}
				if id.IsZero() {
					progress.Done.Add(ref.n)
					continue
				}
				select {
				case refs <- ref:
				case <-ctx.Done():
					return
				}
			}
			if entries == nil {
				first := l * index.Fanout
				progress.Done.Add(min(int64(geo.LeafBlocks(l))*geo.BlockSize, geo.Capacity-first*geo.BlockSize))
			}
		}
	}()
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// verifiedGetter is a store with replicas: it can try each copy with the
// caller's check and fail over from one that does not authenticate.
type verifiedGetter interface {
	GetVerified(ctx context.Context, id chunk.ID, verify func(sealed []byte) error) ([]byte, error)
}

func (e *Engine) read(ctx context.Context, key *chunk.Key, b blockRef, dst []byte) ([]byte, error) {
	var err error
	if vg, ok := e.Store.(verifiedGetter); ok {
		// Unseal inside the check, so a copy that fails authentication is
		// skipped for the next replica, and the good copy is unsealed once.
		_, err = vg.GetVerified(ctx, b.id, func(sealed []byte) error {
			var uerr error
			dst, uerr = key.Unseal(dst[:0], b.id, sealed)
			return uerr
		})
	} else {
		var sealed []byte
		sealed, err = e.Store.Get(ctx, b.id)
		if err == nil {
			dst, err = key.Unseal(dst, b.id, sealed)
		}
	}
	if err != nil {
		e.quarantine(ctx, b.id, err)
		return dst, err
	}
	plain := dst
	if int64(len(plain)) != b.n {
		return plain, fmt.Errorf("chunk %s holds %d bytes, block needs %d: %w", b.id.Short(), len(plain), b.n, chunk.ErrCorrupt)
	}
	return plain, nil
}

func (e *Engine) quarantine(ctx context.Context, id chunk.ID, err error) {
	if e.Quarantine != nil && errors.Is(err, chunk.ErrCorrupt) && !errors.Is(err, chunk.ErrKey) {
		e.Quarantine(ctx, id)
	}
}

func orNew(p *Progress) *Progress {
	if p == nil {
		return new(Progress)
	}
	return p
}
