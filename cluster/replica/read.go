package replica

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/store"
)

// Get returns a good copy of id from the first node in placement order that
// has one; see the package doc.
func (s *Store) Get(ctx context.Context, id chunk.ID) ([]byte, error) {
	return s.GetVerified(ctx, id, nil)
}

// GetVerified is Get with the caller's own check of each copy (unsealing
// it, say). A copy whose verify error wraps chunk.ErrCorrupt is reported
// and skipped like one that fails chunk.Check; any other verify error (a
// missing key) would fail on every copy, so it is returned at once.
func (s *Store) GetVerified(ctx context.Context, id chunk.ID, verify func(sealed []byte) error) ([]byte, error) {
	op := "get chunk " + id.Short()
	if err := s.begin(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	b, err := s.read(ctx, id, s.Map().Candidates(id), verify)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return b, nil
}

// read tries nodes in order for a good copy of id.
func (s *Store) read(ctx context.Context, id chunk.ID, nodes []string, verify func([]byte) error) ([]byte, error) {
	if len(nodes) == 0 {
		return nil, ErrNoNodes
	}
	var missing, corrupt, failed []nodeErr
	for _, n := range nodes {
		b, err := s.readFrom(ctx, n, id)
		if err == nil && verify != nil {
			if err = verify(b); err != nil && !errors.Is(err, chunk.ErrCorrupt) {
				return nil, fmt.Errorf("node %s: %w", n, err)
			}
		}
		switch {
		case err == nil:
			return b, nil
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(err, store.ErrNotFound):
			missing = append(missing, nodeErr{n, err})
		case errors.Is(err, chunk.ErrCorrupt):
			corrupt = append(corrupt, nodeErr{n, err})
			if s.opts.Corrupt != nil {
				s.opts.Corrupt(n, id, err)
			}
		default:
			failed = append(failed, nodeErr{n, err})
		}
	}
	switch {
	case len(failed) > 0:
		return nil, joinNodes(ErrUnavailable, slices.Concat(failed, corrupt, missing))
	case len(corrupt) > 0:
		return nil, fmt.Errorf("%w on %s; not found on %d other nodes", chunk.ErrCorrupt, names(corrupt), len(missing))
	}
	return nil, fmt.Errorf("%w on any of %d nodes", store.ErrNotFound, len(missing))
}

// readFrom gets id from node n and checks it.
func (s *Store) readFrom(ctx context.Context, n string, id chunk.ID) ([]byte, error) {
	st, err := s.nodes(n)
	if err != nil {
		return nil, err
	}
	b, err := st.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := chunk.Check(b); err != nil {
		return nil, err
	}
	return b, nil
}

// Stat reports id's size and last reference from the first node in
// placement order that holds it.
func (s *Store) Stat(ctx context.Context, id chunk.ID) (store.Info, error) {
	op := "stat chunk " + id.Short()
	if err := s.begin(ctx); err != nil {
		return store.Info{}, fmt.Errorf("%s: %w", op, err)
	}
	var failed []nodeErr
	for _, n := range s.Map().Candidates(id) {
		st, err := s.nodes(n)
		if err == nil {
			var info store.Info
			if info, err = st.Stat(ctx, id); err == nil {
				return info, nil
			}
		}
		if ctx.Err() != nil {
			return store.Info{}, fmt.Errorf("%s: %w", op, ctx.Err())
		}
		if !errors.Is(err, store.ErrNotFound) {
			failed = append(failed, nodeErr{n, err})
		}
	}
	if len(failed) > 0 {
		return store.Info{}, fmt.Errorf("%s: %w", op, joinNodes(ErrUnavailable, failed))
	}
	return store.Info{}, fmt.Errorf("%s: %w", op, store.ErrNotFound)
}

func names(errs []nodeErr) string {
	var b strings.Builder
	for i, e := range errs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(e.node)
	}
	return b.String()
}

func sortNodeErrs(errs []nodeErr) {
	slices.SortFunc(errs, func(a, b nodeErr) int { return strings.Compare(a.node, b.node) })
}
