package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"
)

// requestInfo is what handlers learn about a request that the audit record
// needs: who made it and which job it started or touched.
type requestInfo struct {
	principal string
	job       string
	code      string
}

type infoKey struct{}

// infoFrom returns the request's info; a request that did not come through
// ServeHTTP gets a throwaway one.
func infoFrom(ctx context.Context) *requestInfo {
	if info, ok := ctx.Value(infoKey{}).(*requestInfo); ok {
		return info
	}
	return &requestInfo{}
}

func mutating(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// audit writes one audit record. It never includes headers or bodies: the
// token travels in a header and sources' configs may hold credentials.
func (s *Server) audit(r *http.Request, status int, info *requestInfo, d time.Duration) {
	attrs := []slog.Attr{
		slog.String("remote", r.RemoteAddr),
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", status),
		slog.String("principal", info.principal),
		slog.Duration("duration", d),
	}
	if info.job != "" {
		attrs = append(attrs, slog.String("job", info.job))
	}
	if info.code != "" {
		attrs = append(attrs, slog.String("code", info.code))
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "audit", attrs...)
}
