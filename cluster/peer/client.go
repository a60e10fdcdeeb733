package peer

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/node"
	"github.com/cairnhq/cairn/cluster/store"
)

// Errors a Client returns besides the store's own; see the package doc.
var (
	ErrUnavailable = errors.New("peer unavailable")
	ErrRefused     = errors.New("peer refused the request")
)

// errBusy is a peer refusing a put for want of memory for it; the client
// retries.
var errBusy = fmt.Errorf("%w: busy", ErrUnavailable)

// Client defaults.
const (
	DefaultTimeout    = 30 * time.Second
	DefaultBatchBytes = 16 << 20
	// putStreams is how many put requests of one PutBatch are in flight.
	putStreams = 4
)

// ClientOptions tune a Client; zero fields take the defaults.
type ClientOptions struct {
	// Timeout bounds each request that is not a stream (Walk and GetBatch
	// are bounded by their ctx only, since they may rightly run long).
	Timeout time.Duration
	// BatchBytes is the size past which PutBatch splits its chunks into
	// more requests; keep it at or under the server's MaxBatchBytes.
	BatchBytes int
	// BatchIDs is the most IDs or chunks sent in one request; keep it at or
	// under the server's MaxBatchIDs.
	BatchIDs int
}

func (o ClientOptions) withDefaults() ClientOptions {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.BatchBytes <= 0 {
		o.BatchBytes = DefaultBatchBytes
	}
	if o.BatchIDs <= 0 {
		o.BatchIDs = DefaultMaxBatchIDs
	}
	return o
}

// Client is the store of node nodeID at addr, reached over one HTTP/2
// connection that requests share. It implements store.Store; Close closes
// the client's connections, not the remote store. Safe for concurrent use.
type Client struct {
	node, addr string
	base       string
	opts       ClientOptions
	hc         *http.Client
	tr         *http.Transport
	closed     atomic.Bool
	// Body bytes sent and received, for measuring network cost per
	// logical byte.
	sent, received atomic.Int64
}

var _ store.Store = (*Client)(nil)

// NewClient returns a client of node nodeID listening at addr (host:port),
// dialled with cfg (node.ClientTLS). It connects on first use. The server
// must present a certificate naming nodeID.
func NewClient(nodeID, addr string, cfg *tls.Config, opts ClientOptions) (*Client, error) {
	if cfg == nil || cfg.RootCAs == nil || len(cfg.Certificates) == 0 {
		return nil, fmt.Errorf("peer %s at %s: tls config must hold the cluster ca and this node's certificate", nodeID, addr)
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("peer %s: address %q: %w", nodeID, addr, err)
	}
	cfg = cfg.Clone()
	cluster := cfg.VerifyConnection
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if cluster != nil {
			if err := cluster(cs); err != nil {
				return err
			}
		}
		got, err := node.PeerID(cs)
		if err != nil {
			return err
		}
		if got != nodeID {
			return fmt.Errorf("server is node %s, not %s", got, nodeID)
		}
		return nil
	}
	var protos http.Protocols
	protos.SetHTTP2(true)
	tr := &http.Transport{
		TLSClientConfig:     cfg,
		Protocols:           &protos,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: 10 * time.Second,
		IdleConnTimeout:     5 * time.Minute,
		// A stream whose reader stalls (a Walk whose caller is busy) holds
		// its window's worth of the connection's; with the connection's
		// window many streams wide, the other requests keep flowing.
		HTTP2: &http.HTTP2Config{
			MaxReceiveBufferPerConnection: 64 << 20,
			MaxReceiveBufferPerStream:     4 << 20,
			SendPingTimeout:               15 * time.Second,
			PingTimeout:                   10 * time.Second,
		},
	}
	opts = opts.withDefaults()
	return &Client{
		node: nodeID, addr: addr, base: "https://" + addr + prefix, opts: opts,
		tr: tr, hc: &http.Client{Transport: tr},
	}, nil
}

// Node returns the ID of the node the client talks to.
func (c *Client) Node() string { return c.node }

// Traffic returns the request and reply body bytes this client has sent
// and received (TLS and HTTP/2 framing not counted).
func (c *Client) Traffic() (sent, received int64) {
	return c.sent.Load(), c.received.Load()
}

// Close drops the client's connections; later calls return store.ErrClosed.
func (c *Client) Close() error {
	if c.closed.Swap(true) {
		return store.ErrClosed
	}
	c.tr.CloseIdleConnections()
	return nil
}

// errorf names the peer and the operation in err.
func (c *Client) errorf(op string, err error) error {
	return fmt.Errorf("peer %s (%s): %s: %w", c.node, c.addr, op, err)
}

// begin refuses a call on a closed client or with a done ctx.
func (c *Client) begin(ctx context.Context, op string) error {
	if c.closed.Load() {
		return c.errorf(op, store.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return c.errorf(op, err)
	}
	return nil
}

// call sends one request and returns the reply body of a 2xx answer. A
// stream's body is returned open, with cancel to call when done; otherwise
// the body is read whole (at most limit bytes) and cancel is nil.
func (c *Client) call(parent context.Context, method, path string, body []byte, stream bool, limit int64) ([]byte, io.ReadCloser, context.CancelFunc, error) {
	ctx := parent
	var cancel context.CancelFunc
	if stream {
		ctx, cancel = context.WithCancel(ctx)
	} else {
		ctx, cancel = context.WithTimeout(ctx, c.opts.Timeout)
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
		c.sent.Add(int64(len(body)))
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		cancel()
		if err := parent.Err(); err != nil {
			return nil, nil, nil, err
		}
		return nil, nil, nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if resp.StatusCode/100 != 2 {
		defer cancel()
		defer resp.Body.Close()
		text, _ := io.ReadAll(io.LimitReader(resp.Body, maxMessage))
		return nil, nil, nil, statusError(resp.StatusCode, string(bytes.TrimSpace(text)))
	}
	if stream {
		return nil, resp.Body, cancel, nil
	}
	defer cancel()
	defer resp.Body.Close()
	b, err := readAll(io.LimitReader(resp.Body, limit+1), resp.ContentLength, limit)
	c.received.Add(int64(len(b)))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: read reply: %v", ErrUnavailable, err)
	}
	if int64(len(b)) > limit {
		return nil, nil, nil, fmt.Errorf("%w: reply over %d bytes", errMalformed, limit)
	}
	return b, nil, nil, nil
}

// statusError maps a reply status back to the error the server met.
func statusError(code int, text string) error {
	var kind error
	switch code {
	case http.StatusNotFound:
		kind = store.ErrNotFound
	case http.StatusUnprocessableEntity:
		kind = chunk.ErrCorrupt
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusMethodNotAllowed:
		kind = ErrRefused
	case http.StatusForbidden:
		kind = ErrRefused
	case http.StatusTooManyRequests:
		kind = errBusy
	default:
		kind = ErrUnavailable
	}
	return fmt.Errorf("%w (%d): %s", kind, code, text)
}

// Has answers for ids in order, in requests of at most BatchIDs.
func (c *Client) Has(ctx context.Context, ids []chunk.ID) ([]bool, error) {
	op := fmt.Sprintf("has %d chunks", len(ids))
	if err := c.begin(ctx, op); err != nil {
		return nil, err
	}
	out := make([]bool, 0, len(ids))
	for part := range slices.Chunk(ids, c.opts.BatchIDs) {
		b, _, _, err := c.call(ctx, http.MethodPost, "has", appendIDs(nil, part), false, int64(len(part)))
		if err == nil {
			var has []bool
			if has, err = decodeBits(b, len(part)); err == nil {
				out = append(out, has...)
				continue
			}
		}
		return nil, c.errorf(op, err)
	}
	return out, nil
}

// Delete forgets ids on the peer.
func (c *Client) Delete(ctx context.Context, ids []chunk.ID) error {
	op := fmt.Sprintf("delete %d chunks", len(ids))
	if err := c.begin(ctx, op); err != nil {
		return err
	}
	for part := range slices.Chunk(ids, c.opts.BatchIDs) {
		if _, _, _, err := c.call(ctx, http.MethodPost, "delete", appendIDs(nil, part), false, 0); err != nil {
			return c.errorf(op, err)
		}
	}
	return nil
}

// Put stores one chunk on the peer; see PutBatch.
func (c *Client) Put(ctx context.Context, id chunk.ID, sealed []byte) (bool, error) {
	stored, err := c.PutBatch(ctx, []chunk.ID{id}, [][]byte{sealed})
	if err != nil {
		return false, err
	}
	return stored[0], nil
}

// PutBatch stores sealed[i] under ids[i] on the peer and reports which
// were newly stored. It returns nil only when the peer's store acknowledged
// every chunk, so they are durable there. A batch larger than BatchBytes
// goes as several requests, a few at a time; on error some of them may
// have been stored, which a retry makes whole (Put never overwrites).
func (c *Client) PutBatch(ctx context.Context, ids []chunk.ID, sealed [][]byte) ([]bool, error) {
	op := fmt.Sprintf("put %d chunks", len(ids))
	if len(ids) != len(sealed) {
		return nil, c.errorf(op, fmt.Errorf("%d ids for %d chunks", len(ids), len(sealed)))
	}
	if err := c.begin(ctx, op); err != nil {
		return nil, err
	}
	for _, id := range ids {
		if id.IsZero() {
			return nil, c.errorf(op, errors.New("the zero id is reserved"))
		}
	}
	stored := make([]bool, len(ids))
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		slots = make(chan struct{}, putStreams)
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for lo := 0; lo < len(ids); {
		hi, size := lo, 0
		for hi < len(ids) && hi-lo < c.opts.BatchIDs && (hi == lo || size+putHeaderSize+len(sealed[hi]) <= c.opts.BatchBytes) {
			size += putHeaderSize + len(sealed[hi])
			hi++
		}
		slots <- struct{}{}
		part, parts, done := ids[lo:hi], sealed[lo:hi], stored[lo:hi]
		wg.Go(func() {
			defer func() { <-slots }()
			err := c.putPart(ctx, part, parts, done, size)
			if err != nil {
				mu.Lock()
				if first == nil {
					first = err
					cancel()
				}
				mu.Unlock()
			}
		})
		lo = hi
	}
	wg.Wait()
	if first != nil {
		return nil, c.errorf(op, first)
	}
	return stored, nil
}

func (c *Client) putPart(ctx context.Context, ids []chunk.ID, sealed [][]byte, stored []bool, size int) error {
	body := make([]byte, 0, size)
	for i, id := range ids {
		body = appendPut(body, id, sealed[i])
	}
	// A busy peer (its memory for puts taken) is asked again after a pause,
	// for up to Timeout.
	var b []byte
	var err error
	deadline := time.Now().Add(c.opts.Timeout)
	for pause := 5 * time.Millisecond; ; pause = min(2*pause, time.Second) {
		b, _, _, err = c.call(ctx, http.MethodPost, "put", body, false, int64(len(ids)))
		if !errors.Is(err, errBusy) || time.Now().Add(pause).After(deadline) {
			break
		}
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	if err != nil {
		return err
	}
	got, err := decodeBits(b, len(ids))
	if err != nil {
		return err
	}
	copy(stored, got)
	return nil
}

// Get returns id's sealed bytes after checking them with chunk.Check.
func (c *Client) Get(ctx context.Context, id chunk.ID) ([]byte, error) {
	op := "get chunk " + id.Short()
	if err := c.begin(ctx, op); err != nil {
		return nil, err
	}
	b, _, _, err := c.call(ctx, http.MethodGet, "chunk/"+id.String(), nil, false, chunk.MaxSealed)
	if err == nil {
		err = chunk.Check(b)
	}
	if err != nil {
		return nil, c.errorf(op, err)
	}
	return b, nil
}

// Stat reports id's size and last reference on the peer.
func (c *Client) Stat(ctx context.Context, id chunk.ID) (store.Info, error) {
	op := "stat chunk " + id.Short()
	if err := c.begin(ctx, op); err != nil {
		return store.Info{}, err
	}
	b, _, _, err := c.call(ctx, http.MethodGet, "stat/"+id.String(), nil, false, infoSize)
	var info store.Info
	if err == nil {
		info, err = decodeInfo(b)
	}
	if err != nil {
		return store.Info{}, c.errorf(op, err)
	}
	return info, nil
}
