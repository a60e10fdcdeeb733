package apitest

import (
	"bytes"
	"crypto/tls"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/appliance/api"
	"github.com/cairnhq/cairn/appliance/metrics"
)

// Server is the real API server over an in-memory Service, on loopback
// HTTPS with TLS material and a token made by api.EnsureTLS and
// api.EnsureToken in a temporary data directory.
type Server struct {
	*httptest.Server
	Service *Service
	Dir     string // data directory: ca.pem, admin.token, ...
	Token   string
	CAPEM   []byte
	Log     *Buffer // the server's log, audit records included, as JSON lines
}

// NewServer starts a Server that stops when the test ends.
func NewServer(t testing.TB) *Server {
	t.Helper()
	dir := t.TempDir()
	cfg, err := api.EnsureTLS(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	token, err := api.EnsureToken(filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, api.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	svc := New(time.Date(2025, 11, 1, 9, 0, 0, 0, time.UTC))
	log := &Buffer{}
	logger := slog.New(slog.NewJSONHandler(log, nil))
	h := api.NewServer(svc, api.Options{Token: token, Logger: logger, Reports: svc.Catalog(),
		Metrics: metrics.Handler(metrics.Sources{Catalog: svc.Catalog(), Log: logger})})
	// httptest serves cfg.Certificates[0] to clients that send no SNI (any
	// IP address), adding its own certificate when there is none.
	cert, err := cfg.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Certificates = []tls.Certificate{*cert}
	hs := httptest.NewUnstartedServer(h)
	hs.Config.ErrorLog = slog.NewLogLogger(logger.Handler(), slog.LevelWarn)
	hs.TLS = cfg
	hs.StartTLS()
	t.Cleanup(hs.Close)
	return &Server{Server: hs, Service: svc, Dir: dir, Token: token, CAPEM: caPEM, Log: log}
}

// APIClient returns an API client trusting the server's CA and holding its
// token.
func (s *Server) APIClient(t testing.TB) *api.Client {
	t.Helper()
	c, err := api.NewClient(s.URL, s.CAPEM, s.Token)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Buffer is a bytes.Buffer safe for concurrent use.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
