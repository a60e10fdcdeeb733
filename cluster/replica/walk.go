package replica

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/placement"
	"github.com/cairnhq/cairn/cluster/store"
)

// readable lists the nodes of m that may hold chunks (all but the dead),
// by ID.
func readable(m placement.Map) []string {
	var out []string
	for _, n := range m.Nodes {
		if n.State != placement.Dead {
			out = append(out, n.ID)
		}
	}
	slices.Sort(out)
	return out
}

// Walk visits every chunk on any readable node once, in ID order, with the
// size its first holder reports and the latest last-reference time of all.
// A node that cannot be walked fails the Walk.
func (s *Store) Walk(ctx context.Context, fn func(id chunk.ID, info store.Info) error) error {
	if err := s.begin(ctx); err != nil {
		return fmt.Errorf("walk: %w", err)
	}
	_, err := s.merge(ctx, readable(s.Map()), false, func(id chunk.ID, _ []int, infos []store.Info) error {
		info := infos[0]
		for _, in := range infos[1:] {
			if in.LastRef.After(info.LastRef) {
				info.LastRef = in.LastRef
			}
		}
		return fn(id, info)
	})
	return err
}

type walkItem struct {
	id   chunk.ID
	info store.Info
}

// merge walks the stores of nodes side by side and calls fn once per chunk
// ID, in ID order, with the indexes in nodes of its holders and their
// infos. If tolerate is set, a node that cannot be reached or fails
// mid-walk drops out and is returned in lost; otherwise its failure ends
// the merge. An error from fn ends it too and is returned as is.
func (s *Store) merge(ctx context.Context, nodes []string, tolerate bool, fn func(id chunk.ID, holders []int, infos []store.Info) error) (lost []nodeErr, err error) {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type feed struct {
		ch   chan walkItem
		err  error
		head walkItem
		live bool
	}
	feeds := make([]*feed, len(nodes))
	for i, n := range nodes {
		f := &feed{ch: make(chan walkItem, 256)}
		feeds[i] = f
		wg.Go(func() {
			st, err := s.nodes(n)
			if err == nil {
				err = st.Walk(ctx, func(id chunk.ID, info store.Info) error {
					select {
					case f.ch <- walkItem{id, info}:
						return nil
					case <-ctx.Done():
						return ctx.Err()
					}
				})
			}
			f.err = err
			close(f.ch)
		})
	}
	// advance moves feed i to its next item, or retires it.
	advance := func(i int) error {
		f := feeds[i]
		prev, had := f.head.id, f.live
		item, ok := <-f.ch
		if !ok {
			f.live = false
			switch {
			case f.err == nil:
				return nil
			case ctx.Err() != nil:
				return ctx.Err()
			case tolerate:
				lost = append(lost, nodeErr{nodes[i], f.err})
				return nil
			}
			return fmt.Errorf("walk node %s: %w", nodes[i], f.err)
		}
		if had && bytes.Compare(item.id[:], prev[:]) <= 0 {
			return fmt.Errorf("walk node %s: chunk %s came after %s", nodes[i], item.id.Short(), prev.Short())
		}
		f.head, f.live = item, true
		return nil
	}
	for i := range feeds {
		if err := advance(i); err != nil {
			return lost, err
		}
	}
	holders := make([]int, 0, len(nodes))
	infos := make([]store.Info, 0, len(nodes))
	for {
		var low *chunk.ID
		for _, f := range feeds {
			if f.live && (low == nil || bytes.Compare(f.head.id[:], low[:]) < 0) {
				low = &f.head.id
			}
		}
		if low == nil {
			return lost, nil
		}
		id := *low
		holders, infos = holders[:0], infos[:0]
		for i, f := range feeds {
			if f.live && f.head.id == id {
				holders = append(holders, i)
				infos = append(infos, f.head.info)
			}
		}
		if err := fn(id, holders, infos); err != nil {
			return lost, err
		}
		for _, i := range holders {
			if err := advance(i); err != nil {
				return lost, err
			}
		}
		if err := ctx.Err(); err != nil {
			return lost, err
		}
	}
}

// Delete removes ids from every readable node, all at once. A node that
// fails is named in the error; the copies it holds stay.
func (s *Store) Delete(ctx context.Context, ids []chunk.ID) error {
	op := fmt.Sprintf("delete %d chunks", len(ids))
	if err := s.begin(ctx); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	var (
		mu     sync.Mutex
		failed []nodeErr
		wg     sync.WaitGroup
	)
	for _, n := range readable(s.Map()) {
		wg.Go(func() {
			st, err := s.nodes(n)
			if err == nil {
				err = st.Delete(ctx, ids)
			}
			if err != nil {
				mu.Lock()
				failed = append(failed, nodeErr{n, err})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if len(failed) > 0 {
		sortNodeErrs(failed)
		return fmt.Errorf("%s: %w", op, joinNodes(ErrUnavailable, failed))
	}
	return nil
}
