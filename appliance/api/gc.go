package api

import (
	"context"
	"net/http"

	"github.com/cairnhq/cairn/cluster/meta"
)

func (s *Server) startGC(r *http.Request) (int, any, error) {
	var req GCRequest
	if err := decodeOptionalBody(r.Body, &req); err != nil {
		return 0, nil, err
	}
	job, err := s.svc.StartGC(r.Context(), req)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusAccepted, job, nil
}

// deleted is the answer to a deletion.
type deleted struct {
	Deleted string `json:"deleted"`
}

func (s *Server) deleteRestorePoint(r *http.Request) (int, any, error) {
	id := r.PathValue("id")
	if err := s.svc.DeleteRestorePoint(r.Context(), id); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, deleted{Deleted: id}, nil
}

// StartGC starts a garbage-collection round.
func (c *Client) StartGC(ctx context.Context, req GCRequest) (meta.Job, error) {
	var out meta.Job
	err := c.do(ctx, http.MethodPost, "/gc", nil, req, &out)
	return out, err
}

// DeleteRestorePoint forgets a restore point.
func (c *Client) DeleteRestorePoint(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/restore-points/"+esc(id), nil, nil, &deleted{})
}
