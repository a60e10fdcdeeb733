package member

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/store"
)

// NodeScrub is what one member's scrub found and repaired.
type NodeScrub struct {
	Node     string `json:"node"`
	Chunks   int64  `json:"chunks"`
	Bytes    int64  `json:"bytes"`
	Damaged  int64  `json:"damaged"`
	Repaired int64  `json:"repaired"`
}

// scrubber is a local store that can check every chunk without keys.
type scrubber interface {
	Scrub(ctx context.Context, fn func(id chunk.ID, err error) error) (store.ScrubStats, error)
}

// Scrub has every member check every chunk it holds against its outer
// checksum (no keys needed) and replace each damaged copy from a good
// replica. A member that cannot be reached is an error; the others scrub.
func (m *Member) Scrub(ctx context.Context) ([]NodeScrub, error) {
	ms, err := m.catalog.Membership(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]NodeScrub, len(ms.Nodes))
	errs := make([]error, len(ms.Nodes))
	var wg sync.WaitGroup
	for i, n := range ms.Nodes {
		wg.Go(func() {
			if n.ID == m.id.NodeID {
				out[i], errs[i] = m.scrubLocal(ctx)
				return
			}
			b, err := m.call(ctx, http.MethodPost, n.Address, "/cairn/member/v1/scrub", []byte{})
			if err == nil {
				err = json.Unmarshal(b, &out[i])
			}
			if err != nil {
				errs[i] = fmt.Errorf("scrub node %s: %w", n.ID, err)
			}
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

func (m *Member) scrubLocal(ctx context.Context) (NodeScrub, error) {
	res := NodeScrub{Node: m.id.NodeID}
	sc, ok := m.cfg.Store.(scrubber)
	if !ok || m.chunks == nil {
		return res, fmt.Errorf("node %s: its store cannot be scrubbed", m.id.NodeID)
	}
	before := m.repaired.Load()
	st, err := sc.Scrub(ctx, func(id chunk.ID, cause error) error {
		res.Damaged++
		m.quarantine(m.id.NodeID, id, cause)
		return nil
	})
	res.Chunks, res.Bytes = int64(st.Chunks), st.Bytes
	if werr := m.WaitRepairs(ctx); err == nil {
		err = werr
	}
	res.Repaired = m.repaired.Load() - before
	if err != nil {
		return res, fmt.Errorf("node %s: scrub: %w", m.id.NodeID, err)
	}
	if res.Damaged > 0 {
		m.log.Warn("scrub found damaged chunk copies", "damaged", res.Damaged, "repaired", res.Repaired)
	}
	return res, nil
}

func (m *Member) handleScrub(w http.ResponseWriter, r *http.Request) {
	res, err := m.scrubLocal(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(res)
}
