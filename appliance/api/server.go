package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/cairnhq/cairn/appliance/report"
)

// Options configure a Server.
type Options struct {
	// Token is the admin API token. Empty refuses every request that needs
	// authentication; the server never runs open.
	Token string
	// Logger receives audit records (message "audit") and internal errors.
	// Nil discards them.
	Logger *slog.Logger
	// MaxBodyBytes bounds request bodies; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Cluster serves the cluster endpoints; nil answers them 404.
	Cluster Cluster
	// Reports is the catalog daily reports are made from; nil answers
	// /reports 404.
	Reports report.Catalog
	// Now is the clock reports are dated by; nil means time.Now.
	Now func() time.Time
	// Metrics serves GET /metrics (with the API token unless
	// MetricsPublic); nil answers it 404.
	Metrics http.Handler
	// MetricsPublic serves /metrics without a token.
	MetricsPublic bool
}

// Server serves the REST API. It is an http.Handler.
type Server struct {
	svc       Service
	log       *slog.Logger
	maxBody   int64
	tokenSum  [sha256.Size]byte
	haveToken bool
	mux       *http.ServeMux
	cl        Cluster
	reportCat report.Catalog
	clock     func() time.Time
	metrics   http.Handler
	promOpen  bool
}

// NewServer returns a Server answering from svc.
func NewServer(svc Service, opts Options) *Server {
	s := &Server{
		svc:       svc,
		log:       opts.Logger,
		maxBody:   opts.MaxBodyBytes,
		tokenSum:  sha256.Sum256([]byte(opts.Token)),
		haveToken: opts.Token != "",
		mux:       http.NewServeMux(),
		cl:        opts.Cluster,
		reportCat: opts.Reports,
		clock:     opts.Now,
		metrics:   opts.Metrics,
		promOpen:  opts.MetricsPublic,
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	s.register()
	return s
}

// ServeHTTP serves one request and audits it when it mutates state or
// fails authentication.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	info := &requestInfo{principal: "anonymous"}
	r = r.WithContext(context.WithValue(r.Context(), infoKey{}, info))
	sw := &statusWriter{ResponseWriter: w}
	start := time.Now()
	s.mux.ServeHTTP(sw, r)
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	if mutating(r.Method) || sw.status == http.StatusUnauthorized {
		s.audit(r, sw.status, info, time.Since(start))
	}
}

// HTTPServer returns an http.Server for this handler with timeouts that a
// slow or hostile client cannot hold open forever. Serve it with
// ListenAndServeTLS("", "") or ServeTLS(ln, "", "").
func (s *Server) HTTPServer(addr string, cfg *tls.Config) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           s,
		TLSConfig:         cfg,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       5 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// writeJSON writes a success response.
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, body any) {
	data, ok := body.(json.RawMessage)
	if !ok {
		var err error
		if data, err = marshal(body); err != nil {
			s.writeError(w, r, fmt.Errorf("encode response: %w", err))
			return
		}
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(data)
}

// writeError writes the error body for err with the status statusOf maps
// it to.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code := statusOf(err)
	infoFrom(r.Context()).code = code
	if status >= http.StatusInternalServerError {
		s.log.Error("api: request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	h := w.Header()
	if status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="cairn"`)
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	data, _ := marshal(errorBody{Error: oneLine(err.Error()), Code: code})
	w.Write(data)
}

// marshal encodes v as one line of JSON, leaving <, > and & as they are:
// responses are never embedded in HTML.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(v)
	return buf.Bytes(), err
}

// statusWriter remembers the status a handler wrote, for the audit record.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
