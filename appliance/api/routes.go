package api

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/cairnhq/cairn/cluster/meta"
)

// route is one endpoint. The table in routes is what the server registers
// and what the OpenAPI test holds the document to.
type route struct {
	method string
	path   string   // ServeMux pattern path, written as in openapi.json
	query  []string // accepted query parameters; any other is refused
	public bool     // served without a token
	handle func(r *http.Request) (status int, body any, err error)
}

func (s *Server) routes() []route {
	return []route{
		{method: "GET", path: "/api/v1/health", public: true, handle: s.health},
		{method: "GET", path: "/api/v1/openapi.json", public: true, handle: s.openAPI},

		{method: "GET", path: "/api/v1/sources", handle: s.listSources},
		{method: "POST", path: "/api/v1/sources", handle: s.addSource},
		{method: "GET", path: "/api/v1/sources/{name}/objects", handle: s.listObjects},

		{method: "POST", path: "/api/v1/backups", handle: s.startBackup},
		{method: "GET", path: "/api/v1/restore-points", query: []string{"source", "object"}, handle: s.listRestorePoints},
		{method: "GET", path: "/api/v1/restore-points/{id}", handle: s.getRestorePoint},
		{method: "POST", path: "/api/v1/restore-points/{id}/restore", handle: s.startRestore},
		{method: "POST", path: "/api/v1/restore-points/{id}/verify", handle: s.startVerify},
		{method: "DELETE", path: "/api/v1/restore-points/{id}", handle: s.deleteRestorePoint},
		{method: "POST", path: "/api/v1/gc", handle: s.startGC},

		{method: "GET", path: "/api/v1/policies", handle: s.listPolicies},
		{method: "POST", path: "/api/v1/policies", handle: s.createPolicy},
		{method: "POST", path: "/api/v1/policies/{name}/assign", handle: s.assignPolicy},
		{method: "POST", path: "/api/v1/prune", handle: s.prune},

		{method: "GET", path: "/api/v1/jobs", query: []string{"limit"}, handle: s.listJobs},
		{method: "GET", path: "/api/v1/jobs/{id}", handle: s.getJob},
		{method: "POST", path: "/api/v1/jobs/{id}/cancel", handle: s.cancelJob},

		{method: "GET", path: "/api/v1/cluster", handle: s.clusterStatus},
		{method: "POST", path: "/api/v1/cluster/join-tokens", handle: s.issueJoinToken},
		{method: "DELETE", path: "/api/v1/cluster/nodes/{id}", handle: s.removeNode},

		{method: "GET", path: "/api/v1/reports/daily", query: []string{"date", "tz", "format"}, handle: s.dailyReport},
	}
}

// register puts every route on the mux, plus fallbacks so that a wrong
// method or an unknown path still gets a JSON error body.
func (s *Server) register() {
	allow := map[string][]string{}
	for _, rt := range s.routes() {
		s.mux.Handle(rt.method+" "+rt.path, s.endpoint(rt))
		allow[rt.path] = append(allow[rt.path], rt.method)
	}
	for path, methods := range allow {
		if slices.Contains(methods, http.MethodGet) {
			methods = append(methods, http.MethodHead)
		}
		list := strings.Join(methods, ", ")
		s.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", list)
			s.writeError(w, r, errMethod)
		})
	}
	if s.metrics != nil {
		s.mux.Handle("GET /metrics", s.metricsEndpoint())
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, errNoRoute)
	})
}

// endpoint wraps a route's handler with authentication, query checking,
// the body limit and response encoding.
func (s *Server) endpoint(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !rt.public {
			principal, ok := s.authenticate(r)
			if !ok {
				s.writeError(w, r, errUnauthorized)
				return
			}
			infoFrom(r.Context()).principal = principal
		}
		if err := checkQuery(r.URL.Query(), rt.query); err != nil {
			s.writeError(w, r, err)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.maxBody)
		status, body, err := rt.handle(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if raw, ok := body.(rawBody); ok {
			s.writeRaw(w, status, raw)
			return
		}
		if job, ok := body.(meta.Job); ok {
			infoFrom(r.Context()).job = job.ID
		}
		s.writeJSON(w, r, status, body)
	})
}

// metricsEndpoint serves Prometheus metrics, which are not JSON and so not
// in the route table or the OpenAPI document; they need the API token unless
// the server was told to serve them publicly.
func (s *Server) metricsEndpoint() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.promOpen {
			principal, ok := s.authenticate(r)
			if !ok {
				s.writeError(w, r, errUnauthorized)
				return
			}
			infoFrom(r.Context()).principal = principal
		}
		s.metrics.ServeHTTP(w, r)
	})
}

// checkQuery refuses query parameters the endpoint does not know, and
// repeated ones, so that a typo is an error rather than an unfiltered list.
func checkQuery(q url.Values, accepted []string) error {
	for name, values := range q {
		if !slices.Contains(accepted, name) {
			if len(accepted) == 0 {
				return invalidf("unknown query parameter %q: this endpoint takes none", name)
			}
			return invalidf("unknown query parameter %q (accepted: %s)", name, strings.Join(accepted, ", "))
		}
		if len(values) > 1 {
			return invalidf("query parameter %q given %d times", name, len(values))
		}
	}
	return nil
}
