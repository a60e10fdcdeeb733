package peer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/node"
	"github.com/cairnhq/cairn/cluster/store"
)

// Server limits. The defaults keep a node's memory for incoming chunks
// near DefaultPutBudget whatever its peers send.
const (
	DefaultMaxBatchBytes = 64 << 20
	DefaultMaxBatchIDs   = 1 << 14
	DefaultMaxConcurrent = 64
	DefaultPutBudget     = 256 << 20
	// putWorkers is how many chunks of one request are stored at once, so
	// that a store that groups fsyncs (store.Local) commits them together.
	putWorkers = 16
)

// ServerOptions bound what a Server accepts; zero fields take the defaults.
type ServerOptions struct {
	// MaxBatchBytes bounds a put request's body. It must hold at least one
	// sealed chunk of the largest size (chunk.MaxSealed plus 36 bytes).
	MaxBatchBytes int64
	// MaxBatchIDs bounds the IDs or chunks of one request.
	MaxBatchIDs int
	// MaxConcurrent is how many requests other than puts are served at
	// once; more wait.
	MaxConcurrent int
	// PutBudget bounds the bytes of put bodies held in memory at once; a
	// put past it is refused with 429 and the client retries it.
	PutBudget int64
	// ErrorLog receives the HTTP server's complaints (refused handshakes);
	// nil means the log package's standard logger.
	ErrorLog *log.Logger
}

func (o ServerOptions) withDefaults() ServerOptions {
	if o.MaxBatchBytes <= 0 {
		o.MaxBatchBytes = DefaultMaxBatchBytes
	}
	o.MaxBatchBytes = max(o.MaxBatchBytes, chunk.MaxSealed+putHeaderSize)
	if o.MaxBatchIDs <= 0 {
		o.MaxBatchIDs = DefaultMaxBatchIDs
	}
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = DefaultMaxConcurrent
	}
	if o.PutBudget <= 0 {
		o.PutBudget = DefaultPutBudget
	}
	o.PutBudget = max(o.PutBudget, o.MaxBatchBytes)
	return o
}

// Server serves a store to the cluster's nodes. It is an http.Handler for
// callers that run their own http.Server; Serve runs one configured for
// the cluster.
type Server struct {
	st    store.Store
	opts  ServerOptions
	mux   *http.ServeMux
	slots chan struct{}
	puts  budget

	mu sync.Mutex
	hs *http.Server
}

// NewServer returns a server of st. Closing the server does not close st.
func NewServer(st store.Store, opts ServerOptions) *Server {
	opts = opts.withDefaults()
	s := &Server{st: st, opts: opts, mux: http.NewServeMux(), slots: make(chan struct{}, opts.MaxConcurrent)}
	s.puts.init(opts.PutBudget)
	s.mux.HandleFunc("POST "+prefix+"has", s.has)
	s.mux.HandleFunc("POST "+prefix+"put", s.put)
	s.mux.HandleFunc("POST "+prefix+"delete", s.delete)
	s.mux.HandleFunc("GET "+prefix+"chunk/{id}", s.get)
	s.mux.HandleFunc("GET "+prefix+"stat/{id}", s.stat)
	s.mux.HandleFunc("POST "+prefix+"get", s.getBatch)
	s.mux.HandleFunc("GET "+prefix+"walk", s.walk)
	return s
}

const prefix = "/cairn/v1/"

// ServeHTTP answers one request from a verified peer. A request that did
// not come over mutual TLS with a cluster certificate is refused with 403.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.TLS == nil {
		http.Error(w, "peer: mutual tls required", http.StatusForbidden)
		return
	}
	if _, err := node.PeerID(*r.TLS); err != nil {
		http.Error(w, "peer: "+err.Error(), http.StatusForbidden)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// enter waits for one of the MaxConcurrent slots. Handlers call it only
// once they have read their request body: HTTP/2 gives a connection's flow
// control window back only as bodies are read, so a handler that waited
// unread would hold window that the running requests on the same
// connection may need to finish, and they would wait on each other.
func (s *Server) enter(r *http.Request) bool {
	select {
	case s.slots <- struct{}{}:
		return true
	case <-r.Context().Done():
		return false
	}
}

func (s *Server) leave() { <-s.slots }

// Serve accepts connections on ln until Close, with cfg, which must require
// and verify client certificates (node.ServerTLS does). It speaks HTTP/2
// only. It returns nil after Close.
func (s *Server) Serve(ln net.Listener, cfg *tls.Config) error {
	if cfg == nil || cfg.ClientAuth != tls.RequireAndVerifyClientCert || cfg.ClientCAs == nil {
		return errors.New("peer serve: tls config must require and verify client certificates of the cluster ca")
	}
	if cfg.MinVersion < tls.VersionTLS12 {
		return errors.New("peer serve: tls config allows versions below 1.2")
	}
	s.mu.Lock()
	if s.hs == nil {
		var protos http.Protocols
		protos.SetHTTP2(true)
		s.hs = &http.Server{
			Handler:           s,
			TLSConfig:         cfg.Clone(),
			Protocols:         &protos,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       5 * time.Minute,
			ErrorLog:          s.opts.ErrorLog,
			HTTP2:             s.HTTP2(),
		}
	}
	hs := s.hs
	s.mu.Unlock()
	if err := hs.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("peer serve %s: %w", ln.Addr(), err)
	}
	return nil
}

// HTTP2 returns the HTTP/2 settings Serve uses: room for the server's
// concurrent requests, receive windows wide enough for batches of chunks,
// and pings that find dead peers. A caller that mounts the Server on its
// own http.Server should use them there.
func (s *Server) HTTP2() *http.HTTP2Config {
	return &http.HTTP2Config{
		MaxConcurrentStreams:          2 * s.opts.MaxConcurrent,
		MaxReceiveBufferPerConnection: 32 << 20,
		MaxReceiveBufferPerStream:     8 << 20,
		SendPingTimeout:               15 * time.Second,
		PingTimeout:                   10 * time.Second,
	}
}

// Close stops serving: listeners close and open connections are cut, so
// peers see this node as unavailable. It does not close the store.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hs == nil {
		return nil
	}
	return s.hs.Close()
}

func (s *Server) has(w http.ResponseWriter, r *http.Request) {
	ids, ok := s.readIDs(w, r)
	if !ok {
		return
	}
	if !s.enter(r) {
		return
	}
	defer s.leave()
	has, err := s.st.Has(r.Context(), ids)
	if err != nil {
		fail(w, err)
		return
	}
	reply(w, encodeBits(has))
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request) {
	ids, ok := s.readIDs(w, r)
	if !ok {
		return
	}
	if !s.enter(r) {
		return
	}
	defer s.leave()
	if err := s.st.Delete(r.Context(), ids); err != nil {
		fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) put(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength > s.opts.MaxBatchBytes {
		http.Error(w, fmt.Sprintf("put of %d bytes: at most %d", r.ContentLength, s.opts.MaxBatchBytes), http.StatusRequestEntityTooLarge)
		return
	}
	hold := s.opts.MaxBatchBytes
	if r.ContentLength >= 0 {
		hold = r.ContentLength
	}
	// Over budget, refuse at once rather than wait with the body unread
	// (see enter); the client retries after a pause.
	if !s.puts.take(hold) {
		w.Header().Set("Retry-After", "1")
		http.Error(w, fmt.Sprintf("busy: put of %d bytes is over the memory budget", hold), http.StatusTooManyRequests)
		return
	}
	defer s.puts.release(hold)
	body, ok := s.readBody(w, r, s.opts.MaxBatchBytes)
	if !ok {
		return
	}
	ids, sealed, err := decodePut(body, s.opts.MaxBatchIDs)
	if err != nil {
		http.Error(w, "put: "+err.Error(), http.StatusBadRequest)
		return
	}
	// Refuse the whole batch before storing any of it.
	for i, id := range ids {
		if id.IsZero() {
			http.Error(w, fmt.Sprintf("put chunk %d: the zero id is reserved", i), http.StatusBadRequest)
			return
		}
		if err := chunk.Check(sealed[i]); err != nil {
			http.Error(w, fmt.Sprintf("put chunk %s: %v", id.Short(), err), http.StatusUnprocessableEntity)
			return
		}
	}
	stored, err := putAll(r.Context(), s.st, ids, sealed)
	if err != nil {
		fail(w, err)
		return
	}
	reply(w, encodeBits(stored))
}

// putAll stores the chunks with a few workers and returns when every Put
// has returned.
func putAll(ctx context.Context, st store.Store, ids []chunk.ID, sealed [][]byte) ([]bool, error) {
	stored := make([]bool, len(ids))
	errs := make([]error, len(ids))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(putWorkers, len(ids)) {
		wg.Go(func() {
			for i := range next {
				stored[i], errs[i] = st.Put(ctx, ids[i], sealed[i])
			}
		})
	}
	for i := range ids {
		next <- i
	}
	close(next)
	wg.Wait()
	return stored, errors.Join(errs...)
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	id, err := chunk.ParseID(r.PathValue("id"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !s.enter(r) {
		return
	}
	defer s.leave()
	b, err := s.st.Get(r.Context(), id)
	if err != nil {
		fail(w, err)
		return
	}
	reply(w, b)
}

func (s *Server) stat(w http.ResponseWriter, r *http.Request) {
	id, err := chunk.ParseID(r.PathValue("id"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !s.enter(r) {
		return
	}
	defer s.leave()
	info, err := s.st.Stat(r.Context(), id)
	if err != nil {
		fail(w, err)
		return
	}
	reply(w, appendInfo(nil, info))
}

func (s *Server) readIDs(w http.ResponseWriter, r *http.Request) ([]chunk.ID, bool) {
	body, ok := s.readBody(w, r, int64(s.opts.MaxBatchIDs)*chunk.IDSize)
	if !ok {
		return nil, false
	}
	ids, err := decodeIDs(body, s.opts.MaxBatchIDs)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return nil, false
	}
	return ids, true
}

func (s *Server) readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	body, err := readAll(http.MaxBytesReader(w, r.Body, limit), r.ContentLength, limit)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		http.Error(w, fmt.Sprintf("request body over %d bytes", limit), http.StatusRequestEntityTooLarge)
		return nil, false
	case err != nil:
		return nil, false // the peer has gone
	}
	return body, true
}

func reply(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(b)
}

// fail answers a store error with its status.
func fail(w http.ResponseWriter, err error) {
	http.Error(w, string(message(err)), status(err))
}

func status(err error) int {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, chunk.ErrCorrupt):
		return http.StatusUnprocessableEntity
	case errors.Is(err, store.ErrClosed), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// budget counts the bytes of put bodies held.
type budget struct {
	mu   sync.Mutex
	free int64
}

func (b *budget) init(n int64) { b.free = n }

// take reserves n bytes if they are free.
func (b *budget) take(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.free < n {
		return false
	}
	b.free -= n
	return true
}

func (b *budget) release(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.free += n
}

// readAll reads r whole into one allocation when its length is announced
// (and within limit), rather than growing a buffer through several copies.
func readAll(r io.Reader, length, limit int64) ([]byte, error) {
	if length < 0 || length > limit {
		return io.ReadAll(r)
	}
	b := make([]byte, length+1) // one spare byte to see a body longer than announced
	n, err := io.ReadFull(r, b)
	switch {
	case err == io.ErrUnexpectedEOF || err == io.EOF:
		return b[:n], nil
	case err != nil:
		return nil, err
	}
	// More than announced: read on, so the limit still applies.
	rest, err := io.ReadAll(r)
	return append(b, rest...), err
}
