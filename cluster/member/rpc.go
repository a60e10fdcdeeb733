package member

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/cairnhq/cairn/cluster/meta"
)

// maxCommand bounds a forwarded command: a restore point with its disks.
const maxCommand = 16 << 20

// forward is the follower's half of a write: it sends the command to the
// leader and returns the leader's result (meta.Forwarder).
func (m *Member) forward(ctx context.Context, leaderAddr string, cmd []byte) (meta.Result, uint64, error) {
	b, err := m.call(ctx, http.MethodPost, leaderAddr, "/cairn/meta/v1/apply", cmd)
	if err != nil {
		return meta.Result{}, 0, err
	}
	w, err := meta.ParseWireResult(b)
	if err != nil {
		return meta.Result{}, 0, err
	}
	if w.Kind == "not_leader" {
		return meta.Result{}, 0, meta.ErrNotLeader
	}
	res, index := w.Decode()
	return res, index, nil
}

// call makes one member-to-member request and returns the body of a 200.
func (m *Member) call(ctx context.Context, method, addr, path string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "https://"+addr+path, rd)
	if err != nil {
		return nil, err
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxCommand))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", addr, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: %s: %s", addr, path, resp.Status, strings.TrimSpace(string(b)))
	}
	return b, nil
}

// handleApply is the leader's half of a forwarded write.
func (m *Member) handleApply(w http.ResponseWriter, r *http.Request) {
	cmd, err := io.ReadAll(io.LimitReader(r.Body, maxCommand+1))
	if err != nil || len(cmd) > maxCommand {
		http.Error(w, "command too large or unreadable", http.StatusBadRequest)
		return
	}
	res, index, err := m.catalog.ApplyCommand(r.Context(), cmd)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(meta.EncodeResult(res, index, err))
}

// proxyToLeader passes a request this member cannot answer to the leader.
func (m *Member) proxyToLeader(w http.ResponseWriter, r *http.Request, path string, body []byte) {
	addr := m.catalog.LeaderAddr()
	if addr == "" || addr == m.cfg.Advertise {
		http.Error(w, "no leader known; try again", http.StatusServiceUnavailable)
		return
	}
	b, err := m.call(r.Context(), r.Method, addr, path, body)
	if err != nil {
		status := http.StatusBadGateway
		var he interface{ Timeout() bool }
		if errors.As(err, &he) {
			status = http.StatusGatewayTimeout
		}
		http.Error(w, "via the leader: "+err.Error(), status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

type healthReply struct {
	ID    string `json:"id"`
	Epoch uint64 `json:"epoch"`
}

func (m *Member) handleHealth(w http.ResponseWriter, r *http.Request) {
	ms, _ := m.catalog.Membership(r.Context())
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(healthReply{ID: m.id.NodeID, Epoch: ms.Epoch})
}

func (m *Member) handleStatus(w http.ResponseWriter, r *http.Request) {
	if !m.catalog.IsLeader() {
		m.proxyToLeader(w, r, "/cairn/member/v1/status", nil)
		return
	}
	st, err := m.localStatus(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(st)
}
