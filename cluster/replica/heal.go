package replica

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/placement"
	"github.com/cairnhq/cairn/cluster/store"
)

// Progress counts a healing pass's work. Its fields may be read while the
// pass runs; a pass only adds to them.
type Progress struct {
	Scanned         atomic.Int64 // distinct chunks seen
	UnderReplicated atomic.Int64 // chunks missing from at least one owner
	Misplaced       atomic.Int64 // chunks with a copy on a node that does not own them
	Copied          atomic.Int64 // copies written to owners
	Deleted         atomic.Int64 // copies removed from nodes that do not own them
	Failed          atomic.Int64 // chunks a pass could not fix
}

// Finding is a chunk whose copies are not where the map puts them.
type Finding struct {
	ID      chunk.ID
	Holders []string // readable nodes with a copy, by ID
	Missing []string // owners without a copy, in owner order
	Extra   []string // holders that are not owners
}

// maxReported is how many failures a healing error spells out.
const maxReported = 5

// Scan walks every readable node and calls fn (if not nil) for each chunk
// that is missing from an owner or held by a node that is not one, under
// the current map. A node that cannot be walked counts as holding nothing,
// so its chunks show as under-replicated, and Scan, having gone on with
// the others, returns an error naming it.
func (s *Store) Scan(ctx context.Context, p *Progress, fn func(Finding) error) error {
	if err := s.begin(ctx); err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	if p == nil {
		p = new(Progress)
	}
	return s.scan(ctx, s.Map(), p, fn)
}

func (s *Store) scan(ctx context.Context, m placement.Map, p *Progress, fn func(Finding) error) error {
	nodes := readable(m)
	var owners []string
	lost, err := s.merge(ctx, nodes, true, func(id chunk.ID, holders []int, _ []store.Info) error {
		p.Scanned.Add(1)
		owners = m.AppendOwners(owners[:0], id)
		f := Finding{ID: id}
		for _, h := range holders {
			f.Holders = append(f.Holders, nodes[h])
			if !slices.Contains(owners, nodes[h]) {
				f.Extra = append(f.Extra, nodes[h])
			}
		}
		for _, o := range owners {
			if !slices.Contains(f.Holders, o) {
				f.Missing = append(f.Missing, o)
			}
		}
		if f.Missing == nil && f.Extra == nil {
			return nil
		}
		if f.Missing != nil {
			p.UnderReplicated.Add(1)
		}
		if f.Extra != nil {
			p.Misplaced.Add(1)
		}
		if fn == nil {
			return nil
		}
		return fn(f)
	})
	if err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	if len(lost) > 0 {
		return fmt.Errorf("scan: %w", joinNodes(ErrUnavailable, lost))
	}
	return nil
}

// Repair copies every under-replicated chunk from a good copy to the owners
// missing it. It deletes nothing. It returns an error if a node could not
// be scanned or a chunk not repaired; the rest is repaired regardless.
func (s *Store) Repair(ctx context.Context, p *Progress) error {
	return s.heal(ctx, p, false)
}

// Rebalance is Repair that also deletes each copy held by a node that no
// longer owns the chunk, once every owner has confirmed holding it. Run it
// after a map change (a node joined, was reweighted, or is draining).
func (s *Store) Rebalance(ctx context.Context, p *Progress) error {
	return s.heal(ctx, p, true)
}

func (s *Store) heal(ctx context.Context, p *Progress, remove bool) error {
	if err := s.begin(ctx); err != nil {
		return fmt.Errorf("heal: %w", err)
	}
	if p == nil {
		p = new(Progress)
	}
	m := s.Map()
	w := s.workers(ctx, m, p, remove)
	scanErr := s.scan(w.ctx, m, p, func(f Finding) error {
		if f.Missing == nil && !remove {
			return nil
		}
		return w.add(f)
	})
	return errors.Join(scanErr, w.wait())
}

// Drain moves every chunk off node, which the current map must mark
// Draining: each goes to the owners missing it, and is deleted from node
// once all its owners confirm holding it. It returns an error if node
// still holds chunks at the end.
func (s *Store) Drain(ctx context.Context, node string, p *Progress) error {
	op := "drain node " + node
	if err := s.begin(ctx); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if p == nil {
		p = new(Progress)
	}
	m := s.Map()
	i := slices.IndexFunc(m.Nodes, func(n placement.Node) bool { return n.ID == node })
	if i < 0 || m.Nodes[i].State != placement.Draining {
		return fmt.Errorf("%s: the map (epoch %d) does not mark it draining", op, m.Epoch)
	}
	st, err := s.nodes(node)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	w := s.workers(ctx, m, p, true)
	const batch = 512
	ids := make([]chunk.ID, 0, batch)
	flush := func() error {
		owners, holds, _, err := s.presence(w.ctx, m, ids)
		if err != nil {
			return err
		}
		for i, id := range ids {
			p.Scanned.Add(1)
			p.Misplaced.Add(1)
			f := Finding{ID: id, Holders: []string{node}, Extra: []string{node}}
			for k, o := range owners[i] {
				if holds[i][k] {
					f.Holders = append(f.Holders, o)
				} else {
					f.Missing = append(f.Missing, o)
				}
			}
			if f.Missing != nil {
				p.UnderReplicated.Add(1)
			}
			if err := w.add(f); err != nil {
				return err
			}
		}
		ids = ids[:0]
		return nil
	}
	walkErr := st.Walk(w.ctx, func(id chunk.ID, _ store.Info) error {
		if ids = append(ids, id); len(ids) == batch {
			return flush()
		}
		return nil
	})
	if walkErr == nil && len(ids) > 0 {
		walkErr = flush()
	}
	if err := errors.Join(walkErr, w.wait()); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	left := 0
	if err := st.Walk(ctx, func(chunk.ID, store.Info) error { left++; return nil }); err != nil {
		return fmt.Errorf("%s: count what is left: %w", op, err)
	}
	if left > 0 {
		return fmt.Errorf("%s: %d chunks are still on it", op, left)
	}
	return nil
}

// pool fixes findings in batches with a few workers.
type pool struct {
	s      *Store
	ctx    context.Context
	cancel context.CancelFunc
	work   chan []Finding
	batch  []Finding
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []error
	failed int
	stale  error
}

// healBatch is how many findings a worker fixes together: their copies go
// to each node in one request, and so do their confirmations and deletes.
const healBatch = 256

func (s *Store) workers(ctx context.Context, m placement.Map, p *Progress, remove bool) *pool {
	w := &pool{s: s, work: make(chan []Finding)}
	w.ctx, w.cancel = context.WithCancel(ctx)
	for range s.opts.Workers {
		w.wg.Go(func() {
			for fs := range w.work {
				failed, errs := s.fix(w.ctx, m, fs, p, remove)
				if failed == 0 {
					continue
				}
				w.mu.Lock()
				for _, err := range errs {
					if errors.Is(err, ErrStaleMap) && w.stale == nil {
						w.stale = err
						w.cancel()
					}
				}
				if w.stale == nil && w.ctx.Err() == nil {
					p.Failed.Add(int64(failed))
					w.failed += failed
					for _, err := range errs {
						if len(w.errs) < maxReported {
							w.errs = append(w.errs, err)
						}
					}
				}
				w.mu.Unlock()
			}
		})
	}
	return w
}

// add queues f, handing a full batch to a worker.
func (w *pool) add(f Finding) error {
	w.batch = append(w.batch, f)
	if len(w.batch) < healBatch {
		return nil
	}
	return w.send()
}

func (w *pool) send() error {
	if len(w.batch) == 0 {
		return nil
	}
	select {
	case w.work <- w.batch:
		w.batch = nil
		return nil
	case <-w.ctx.Done():
		return w.ctx.Err()
	}
}

// wait hands over the last batch, lets the workers finish and sums up what
// failed.
func (w *pool) wait() error {
	err := w.send()
	close(w.work)
	w.wg.Wait()
	w.cancel()
	switch {
	case w.stale != nil:
		return w.stale
	case w.failed > 0:
		return fmt.Errorf("%d chunks not fixed: %w", w.failed, errors.Join(w.errs...))
	}
	return err
}

// fix copies each finding's chunk to the owners missing it and, if remove
// is set, deletes it from the nodes that do not own it once every owner
// confirms holding it and the map is still m. It returns how many findings
// it could not fix, and why (for a few).
func (s *Store) fix(ctx context.Context, m placement.Map, fs []Finding, p *Progress, remove bool) (int, []error) {
	bad := make([]bool, len(fs))
	var errs []error
	fail := func(i int, err error) {
		if !bad[i] {
			bad[i] = true
			errs = append(errs, err)
		}
	}
	// Copy: read each chunk once, then one batch per node that lacks some.
	type put struct {
		ids    []chunk.ID
		sealed [][]byte
		from   []int // index in fs
	}
	puts := map[string]*put{}
	for i, f := range fs {
		if f.Missing == nil {
			continue
		}
		sealed, err := s.read(ctx, f.ID, f.Holders, nil)
		if err != nil {
			fail(i, fmt.Errorf("repair chunk %s: read: %w", f.ID.Short(), err))
			continue
		}
		for _, n := range f.Missing {
			b := puts[n]
			if b == nil {
				b = &put{}
				puts[n] = b
			}
			b.ids, b.sealed, b.from = append(b.ids, f.ID), append(b.sealed, sealed), append(b.from, i)
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for n, b := range puts {
		wg.Go(func() {
			idx := make([]int, len(b.ids))
			for k := range idx {
				idx[k] = k
			}
			_, err := s.put(ctx, n, idx, b.ids, b.sealed)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				for _, i := range b.from {
					fail(i, fmt.Errorf("repair chunk %s: node %s: %w", fs[i].ID.Short(), n, err))
				}
				return
			}
			p.Copied.Add(int64(len(b.ids)))
		})
	}
	wg.Wait()
	failed := func() int {
		k := 0
		for _, b := range bad {
			if b {
				k++
			}
		}
		return k
	}
	if !remove {
		return failed(), errs
	}

	// Confirm with every owner, then delete the extra copies.
	var ids []chunk.ID
	var from []int
	for i, f := range fs {
		if f.Extra != nil && !bad[i] {
			ids, from = append(ids, f.ID), append(from, i)
		}
	}
	if len(ids) == 0 {
		return failed(), errs
	}
	owners, holds, _, err := s.presence(ctx, m, ids)
	if err != nil {
		for _, i := range from {
			fail(i, fmt.Errorf("move chunk %s: confirm: %w", fs[i].ID.Short(), err))
		}
		return failed(), errs
	}
	if cur := s.Map(); cur.Epoch != m.Epoch {
		err := fmt.Errorf("move chunks: map epoch %d became %d: %w", m.Epoch, cur.Epoch, ErrStaleMap)
		for _, i := range from {
			fail(i, err)
		}
		return failed(), errs
	}
	dels := map[string][]chunk.ID{}
	delFrom := map[string][]int{}
	for k, i := range from {
		if j := slices.Index(holds[k], false); j >= 0 {
			fail(i, fmt.Errorf("move chunk %s: owner %s has not confirmed it", fs[i].ID.Short(), owners[k][j]))
			continue
		}
		for _, n := range fs[i].Extra {
			dels[n], delFrom[n] = append(dels[n], ids[k]), append(delFrom[n], i)
		}
	}
	for n, batch := range dels {
		wg.Go(func() {
			st, err := s.nodes(n)
			if err == nil {
				err = st.Delete(ctx, batch)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				for _, i := range delFrom[n] {
					fail(i, fmt.Errorf("move chunk %s: delete from %s: %w", fs[i].ID.Short(), n, err))
				}
				return
			}
			p.Deleted.Add(int64(len(batch)))
		})
	}
	wg.Wait()
	return failed(), errs
}
