package api

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/cairnhq/cairn/cluster/meta"
	"github.com/cairnhq/cairn/plugins"
)

// Job list bounds.
const (
	defaultJobLimit = 100
	maxJobLimit     = 1000
)

// List responses wrap their items in an object so that fields such as a
// continuation cursor can be added without breaking clients.
type (
	sourceList struct {
		Sources []meta.Source `json:"sources"`
	}
	objectList struct {
		Objects []plugins.Object `json:"objects"`
	}
	restorePointList struct {
		RestorePoints []meta.RestorePoint `json:"restore_points"`
	}
	jobList struct {
		Jobs []meta.Job `json:"jobs"`
	}
	health struct {
		Status string `json:"status"`
	}
)

func (s *Server) health(*http.Request) (int, any, error) {
	return http.StatusOK, health{Status: "ok"}, nil
}

func (s *Server) openAPI(*http.Request) (int, any, error) {
	return http.StatusOK, json.RawMessage(openAPIDoc), nil
}

func (s *Server) listSources(r *http.Request) (int, any, error) {
	list, err := s.svc.Sources(r.Context())
	if err != nil {
		return 0, nil, err
	}
	for i := range list {
		list[i].SealedSecrets = nil
	}
	return http.StatusOK, sourceList{orEmpty(list)}, nil
}

func (s *Server) addSource(r *http.Request) (int, any, error) {
	var src AddSourceRequest
	if err := decodeBody(r.Body, &src); err != nil {
		return 0, nil, err
	}
	if err := checkSource(&src); err != nil {
		return 0, nil, err
	}
	added, err := s.svc.AddSource(r.Context(), src)
	if err != nil {
		return 0, nil, err
	}
	added.SealedSecrets = nil
	return http.StatusCreated, added, nil
}

func (s *Server) listObjects(r *http.Request) (int, any, error) {
	list, err := s.svc.Objects(r.Context(), r.PathValue("name"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, objectList{orEmpty(list)}, nil
}

func (s *Server) startBackup(r *http.Request) (int, any, error) {
	var req BackupRequest
	if err := decodeBody(r.Body, &req); err != nil {
		return 0, nil, err
	}
	if err := req.check(); err != nil {
		return 0, nil, err
	}
	job, err := s.svc.StartBackup(r.Context(), req)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusAccepted, job, nil
}

func (s *Server) listRestorePoints(r *http.Request) (int, any, error) {
	q := r.URL.Query()
	f := meta.Filter{Source: q.Get("source"), Object: q.Get("object")}
	list, err := s.svc.RestorePoints(r.Context(), f)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, restorePointList{orEmpty(list)}, nil
}

func (s *Server) getRestorePoint(r *http.Request) (int, any, error) {
	rp, err := s.svc.RestorePoint(r.Context(), r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, rp, nil
}

func (s *Server) startRestore(r *http.Request) (int, any, error) {
	id := r.PathValue("id")
	var req RestoreRequest
	if err := decodeBody(r.Body, &req); err != nil {
		return 0, nil, err
	}
	if req.RestorePoint != "" && req.RestorePoint != id {
		return 0, nil, invalidf("restore_point %q in the body differs from %q in the path", req.RestorePoint, id)
	}
	req.RestorePoint = id
	if err := req.check(); err != nil {
		return 0, nil, err
	}
	job, err := s.svc.StartRestore(r.Context(), req)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusAccepted, job, nil
}

func (s *Server) startVerify(r *http.Request) (int, any, error) {
	var none struct{}
	if err := decodeOptionalBody(r.Body, &none); err != nil {
		return 0, nil, err
	}
	job, err := s.svc.StartVerify(r.Context(), r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusAccepted, job, nil
}

func (s *Server) listJobs(r *http.Request) (int, any, error) {
	limit := defaultJobLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxJobLimit {
			return 0, nil, invalidf("limit %q: want a whole number from 1 to %d", v, maxJobLimit)
		}
		limit = n
	}
	list, err := s.svc.Jobs(r.Context(), limit)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, jobList{orEmpty(list)}, nil
}

func (s *Server) getJob(r *http.Request) (int, any, error) {
	job, err := s.svc.Job(r.Context(), r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, job, nil
}

func (s *Server) cancelJob(r *http.Request) (int, any, error) {
	var none struct{}
	if err := decodeOptionalBody(r.Body, &none); err != nil {
		return 0, nil, err
	}
	job, err := s.svc.CancelJob(r.Context(), r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, job, nil
}

// orEmpty makes a nil list encode as [] rather than null.
func orEmpty[T any](list []T) []T {
	if list == nil {
		return []T{}
	}
	return list
}
