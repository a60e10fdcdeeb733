package replica

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/placement"
	"github.com/cairnhq/cairn/cluster/store"
)

// Errors of the replica layer.
var (
	// ErrShort: fewer owners acknowledged or answered than required.
	ErrShort = errors.New("too few replicas")
	// ErrNoNodes: the map has no node to place or find chunks on.
	ErrNoNodes = errors.New("no healthy nodes in the placement map")
	// ErrUnavailable: no node could give an answer about a chunk.
	ErrUnavailable = errors.New("no replica could answer")
	// ErrStaleMap: a map older than the current one was offered, or the
	// map changed under a rebalance.
	ErrStaleMap = errors.New("placement map changed")
)

// Nodes returns the store of a member by node ID: the local node's own
// store, or a client of a peer (peer.Client). An error means the node
// cannot be reached now. The Store never closes what Nodes returns.
type Nodes func(nodeID string) (store.Store, error)

// batchPutter is what a peer client adds to store.Store: one request for
// many chunks.
type batchPutter interface {
	PutBatch(ctx context.Context, ids []chunk.ID, sealed [][]byte) ([]bool, error)
}

// Options tune a Store; the zero value is the safe default.
type Options struct {
	// MinAcks is how many owners must acknowledge a Put (and hold a chunk
	// for Has to count it). Zero, or more than a chunk's owners, means all
	// of them.
	MinAcks int
	// Corrupt is told of every corrupt copy a read finds: which node, which
	// chunk and why. It must not block for long. Nil ignores them.
	Corrupt func(node string, id chunk.ID, err error)
	// Workers is how many chunks the healing functions move at once; zero
	// means 8.
	Workers int
}

// localPuts is how many chunks go to a store without batch puts at once.
const localPuts = 16

// Store is a store.Store spread over the nodes of a placement map.
type Store struct {
	nodes  Nodes
	opts   Options
	m      atomic.Pointer[placement.Map]
	mu     sync.Mutex // serializes SetMap
	closed atomic.Bool
}

var _ store.Store = (*Store)(nil)

// New returns a Store over map m, reaching nodes through nodes.
func New(m placement.Map, nodes Nodes, opts Options) (*Store, error) {
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("new replica store: %w", err)
	}
	if opts.Workers <= 0 {
		opts.Workers = 8
	}
	s := &Store{nodes: nodes, opts: opts}
	s.m.Store(&m)
	return s, nil
}

// Map returns the current map.
func (s *Store) Map() placement.Map { return *s.m.Load() }

// SetMap makes m the current map unless its epoch is older than the
// current one's.
func (s *Store) SetMap(m placement.Map) error {
	if err := m.Validate(); err != nil {
		return fmt.Errorf("set placement map: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.m.Load(); m.Epoch < cur.Epoch {
		return fmt.Errorf("set placement map: epoch %d is older than %d: %w", m.Epoch, cur.Epoch, ErrStaleMap)
	}
	s.m.Store(&m)
	return nil
}

// Close stops the Store; it closes none of the node stores.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return store.ErrClosed
	}
	return nil
}

func (s *Store) begin(ctx context.Context) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	return ctx.Err()
}

// need is how many of n owners must acknowledge.
func (s *Store) need(n int) int {
	if s.opts.MinAcks <= 0 || s.opts.MinAcks > n {
		return n
	}
	return s.opts.MinAcks
}

// nodeErr is one node's failure.
type nodeErr struct {
	node string
	err  error
}

func (e nodeErr) Error() string { return "node " + e.node + ": " + e.err.Error() }
func (e nodeErr) Unwrap() error { return e.err }

// joinNodes renders failures by node, first ones first, and wraps them all.
func joinNodes(kind error, errs []nodeErr) error {
	if len(errs) == 0 {
		return kind
	}
	names := make([]string, len(errs))
	all := make([]error, len(errs))
	for i, e := range errs {
		names[i], all[i] = e.node, e
	}
	return fmt.Errorf("%w (%s): %w", kind, strings.Join(names, ", "), errors.Join(all...))
}

// Put stores a chunk on its owners; see PutBatch.
func (s *Store) Put(ctx context.Context, id chunk.ID, sealed []byte) (bool, error) {
	stored, err := s.PutBatch(ctx, []chunk.ID{id}, [][]byte{sealed})
	if err != nil {
		return false, err
	}
	return stored[0], nil
}

// PutBatch sends each chunk to all its owners, one batch per node, every
// node at once, and returns when every node has answered. It returns nil
// only when each chunk was acknowledged by MinAcks owners (by default all).
func (s *Store) PutBatch(ctx context.Context, ids []chunk.ID, sealed [][]byte) ([]bool, error) {
	op := fmt.Sprintf("put %d chunks", len(ids))
	if len(ids) == 1 {
		op = "put chunk " + ids[0].Short()
	}
	if len(ids) != len(sealed) {
		return nil, fmt.Errorf("%s: %d ids for %d chunks", op, len(ids), len(sealed))
	}
	if err := s.begin(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	for i, id := range ids {
		if id.IsZero() {
			return nil, fmt.Errorf("%s: the zero id is reserved", op)
		}
		if err := chunk.Check(sealed[i]); err != nil {
			return nil, fmt.Errorf("put chunk %s: %w", id.Short(), err)
		}
	}
	m := s.Map()
	owners := make([][]string, len(ids))
	byNode := map[string][]int{}
	for i, id := range ids {
		owners[i] = m.Owners(id)
		if len(owners[i]) == 0 {
			return nil, fmt.Errorf("%s: %w", op, ErrNoNodes)
		}
		for _, n := range owners[i] {
			byNode[n] = append(byNode[n], i)
		}
	}
	type answer struct {
		stored []bool
		err    error
	}
	answers := make(map[string]answer, len(byNode))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for n, idx := range byNode {
		wg.Go(func() {
			st, err := s.put(ctx, n, idx, ids, sealed)
			mu.Lock()
			answers[n] = answer{st, err}
			mu.Unlock()
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	stored := make([]bool, len(ids))
	pos := map[string]int{} // where each chunk sits in its node's batch
	var failed []nodeErr
	short := 0
	for i := range ids {
		acks, first := 0, true
		for _, n := range owners[i] {
			if a := answers[n]; a.err == nil {
				acks++
				if first {
					stored[i], first = a.stored[pos[n]], false
				}
			}
			pos[n]++
		}
		if acks < s.need(len(owners[i])) {
			short++
		}
	}
	if short > 0 {
		for n, a := range answers {
			if a.err != nil {
				failed = append(failed, nodeErr{n, a.err})
			}
		}
		sortNodeErrs(failed)
		if len(ids) > 1 {
			op += fmt.Sprintf(": %d not acknowledged by enough owners", short)
		}
		return nil, fmt.Errorf("%s: %w", op, joinNodes(ErrShort, failed))
	}
	return stored, nil
}

// put stores the chunks at idx on node n.
func (s *Store) put(ctx context.Context, n string, idx []int, ids []chunk.ID, sealed [][]byte) ([]bool, error) {
	st, err := s.nodes(n)
	if err != nil {
		return nil, err
	}
	if bp, ok := st.(batchPutter); ok {
		bi := make([]chunk.ID, len(idx))
		bs := make([][]byte, len(idx))
		for k, i := range idx {
			bi[k], bs[k] = ids[i], sealed[i]
		}
		return bp.PutBatch(ctx, bi, bs)
	}
	stored := make([]bool, len(idx))
	errs := make([]error, len(idx))
	sem := make(chan struct{}, localPuts)
	var wg sync.WaitGroup
	for k, i := range idx {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			stored[k], errs[k] = st.Put(ctx, ids[i], sealed[i])
		})
	}
	wg.Wait()
	return stored, errors.Join(errs...)
}

// Has reports, for ids in order, whether MinAcks owners (by default all)
// hold each; it asks each owner once for all its chunks.
func (s *Store) Has(ctx context.Context, ids []chunk.ID) ([]bool, error) {
	op := fmt.Sprintf("has %d chunks", len(ids))
	if err := s.begin(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	owners, holds, failed, err := s.presence(ctx, s.Map(), ids)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	out := make([]bool, len(ids))
	down := make(map[string]bool, len(failed))
	for _, f := range failed {
		down[f.node] = true
	}
	for i := range ids {
		yes, answered := 0, 0
		for k, n := range owners[i] {
			if !down[n] {
				answered++
			}
			if holds[i][k] {
				yes++
			}
		}
		need := s.need(len(owners[i]))
		if answered < need {
			return nil, fmt.Errorf("%s: %w", op, joinNodes(ErrShort, failed))
		}
		out[i] = yes >= need
	}
	return out, nil
}

// presence asks every owner of ids, once each, which of them it holds. It
// returns each chunk's owners and whether each holds it; an owner that
// failed to answer is in failed and counts as not holding.
func (s *Store) presence(ctx context.Context, m placement.Map, ids []chunk.ID) (owners [][]string, holds [][]bool, failed []nodeErr, err error) {
	owners = make([][]string, len(ids))
	byNode := map[string][]chunk.ID{}
	for i, id := range ids {
		owners[i] = m.Owners(id)
		if len(owners[i]) == 0 {
			return nil, nil, nil, ErrNoNodes
		}
		for _, n := range owners[i] {
			byNode[n] = append(byNode[n], id)
		}
	}
	answers := make(map[string][]bool, len(byNode))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for n, batch := range byNode {
		wg.Go(func() {
			st, err := s.nodes(n)
			var has []bool
			if err == nil {
				has, err = st.Has(ctx, batch)
			}
			if err == nil && len(has) != len(batch) {
				err = fmt.Errorf("answered %d of %d", len(has), len(batch))
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed = append(failed, nodeErr{n, err})
				return
			}
			answers[n] = has
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, nil, nil, err
	}
	sortNodeErrs(failed)
	holds = make([][]bool, len(ids))
	pos := map[string]int{}
	for i := range ids {
		holds[i] = make([]bool, len(owners[i]))
		for k, n := range owners[i] {
			if a, ok := answers[n]; ok {
				holds[i][k] = a[pos[n]]
			}
			pos[n]++
		}
	}
	return owners, holds, failed, nil
}
