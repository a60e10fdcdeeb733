package member

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/cairnhq/cairn/cluster/meta"
	"github.com/cairnhq/cairn/cluster/store"
)

// ErrDegraded refuses garbage collection while a member is down,
// unreachable or draining: a copy on a node that cannot be swept would come
// back through healing, and a node that cannot answer might hold the only
// copy of a chunk a sweep elsewhere is about to delete.
var ErrDegraded = errors.New("the cluster is degraded")

// gcCompactDead is the dead fraction at which a sweep's compaction rewrites
// a segment: lower than the store's default, so a collection gives space
// back promptly.
const gcCompactDead = 0.25

// maxSweepBody bounds a sweep request: the live set of about a billion
// chunks.
const maxSweepBody = 2<<30 + 64

// NodeSweep is what one member's sweep did.
type NodeSweep struct {
	Node string `json:"node"`
	store.SweepStats
	// BytesReclaimed is what compaction gave back on the node's disk.
	BytesReclaimed int64 `json:"bytes_reclaimed"`
}

// Sweep runs a garbage-collection sweep on every member at once (see
// store.Sweeper for cutoff and purgeBefore) and compacts each store. It
// refuses with ErrDegraded unless every member is active and healthy.
func (m *Member) Sweep(ctx context.Context, live *store.LiveSet, cutoff, purgeBefore time.Time) ([]NodeSweep, error) {
	ms, err := m.catalog.Membership(ctx)
	if err != nil {
		return nil, err
	}
	for _, n := range ms.Nodes {
		if n.State != meta.NodeActive || !m.Healthy(n.ID) {
			return nil, fmt.Errorf("%w: node %s is %s%s; collect garbage once every node is back", ErrDegraded, n.ID, n.State,
				map[bool]string{true: "", false: " and not answering"}[m.Healthy(n.ID)])
		}
	}
	filter, err := live.MarshalBinary()
	if err != nil {
		return nil, err
	}
	body := encodeSweep(cutoff, purgeBefore, filter)
	out := make([]NodeSweep, len(ms.Nodes))
	errs := make([]error, len(ms.Nodes))
	var wg sync.WaitGroup
	for i, n := range ms.Nodes {
		wg.Go(func() {
			if n.ID == m.id.NodeID {
				out[i], errs[i] = m.sweepLocal(ctx, live, cutoff, purgeBefore)
				return
			}
			b, err := m.call(ctx, http.MethodPost, n.Address, "/cairn/member/v1/gc/sweep", body)
			if err == nil {
				err = json.Unmarshal(b, &out[i])
			}
			if err != nil {
				errs[i] = fmt.Errorf("sweep node %s: %w", n.ID, err)
			}
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

func (m *Member) sweepLocal(ctx context.Context, live *store.LiveSet, cutoff, purgeBefore time.Time) (NodeSweep, error) {
	res := NodeSweep{Node: m.id.NodeID}
	sw, ok := m.cfg.Store.(store.Sweeper)
	if !ok {
		return res, fmt.Errorf("node %s: its store cannot be swept", m.id.NodeID)
	}
	st, err := sw.Sweep(ctx, live.Has, cutoff, purgeBefore)
	res.SweepStats = st
	if err != nil {
		return res, fmt.Errorf("node %s: %w", m.id.NodeID, err)
	}
	if c, ok := m.cfg.Store.(interface {
		Compact(context.Context, store.CompactOptions) (store.CompactStats, error)
	}); ok && st.Deleted > 0 {
		cs, err := c.Compact(ctx, store.CompactOptions{MinDead: gcCompactDead, SealOpen: true})
		res.BytesReclaimed = cs.BytesReclaimed
		if err != nil {
			return res, fmt.Errorf("node %s: compact: %w", m.id.NodeID, err)
		}
	}
	m.log.Info("garbage collection sweep", "tombstoned", st.Tombstoned, "deleted", st.Deleted,
		"revived", st.Revived, "bytes_reclaimed", res.BytesReclaimed)
	return res, nil
}

// encodeSweep is a sweep request: cutoff and purgeBefore in Unix
// nanoseconds (8 bytes each, big-endian), then the live set.
func encodeSweep(cutoff, purgeBefore time.Time, filter []byte) []byte {
	b := binary.BigEndian.AppendUint64(nil, uint64(cutoff.UnixNano()))
	b = binary.BigEndian.AppendUint64(b, uint64(purgeBefore.UnixNano()))
	return append(b, filter...)
}

func decodeSweep(b []byte) (cutoff, purgeBefore time.Time, live *store.LiveSet, err error) {
	if len(b) < 16 {
		return time.Time{}, time.Time{}, nil, errors.New("sweep request too short")
	}
	cutoff = time.Unix(0, int64(binary.BigEndian.Uint64(b)))
	purgeBefore = time.Unix(0, int64(binary.BigEndian.Uint64(b[8:])))
	live = new(store.LiveSet)
	if err := live.UnmarshalBinary(b[16:]); err != nil {
		return time.Time{}, time.Time{}, nil, err
	}
	return cutoff, purgeBefore, live, nil
}

func (m *Member) handleSweep(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxSweepBody+1))
	if err != nil || len(b) > maxSweepBody {
		http.Error(w, "sweep request too large or unreadable", http.StatusBadRequest)
		return
	}
	cutoff, purge, live, err := decodeSweep(b)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if m.cfg.Store == nil {
		http.Error(w, "this member has no chunk store", http.StatusConflict)
		return
	}
	res, err := m.sweepLocal(r.Context(), live, cutoff, purge)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(res)
}
