package member

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/cairnhq/cairn/cluster/node"
)

// raftProto is the ALPN protocol of Raft's streams. Every other connection
// to the cluster listener is HTTP (HTTP/2 between members).
const raftProto = "cairn-raft/1"

// mux splits the cluster listener by the protocol negotiated in the TLS
// handshake: Raft's streams go to the Raft transport, everything else to
// the HTTP server. One port, one certificate, one place that checks peers.
type mux struct {
	ln      net.Listener
	tlsConf *tls.Config // server side
	dial    *tls.Config // client side, for Raft
	advert  net.Addr
	log     *slog.Logger

	raftc chan net.Conn
	httpc chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newMux(ln net.Listener, server, client *tls.Config, advertise net.Addr, log *slog.Logger) *mux {
	m := &mux{ln: ln, tlsConf: server, dial: client, advert: advertise, log: log,
		raftc: make(chan net.Conn), httpc: make(chan net.Conn), done: make(chan struct{})}
	go m.serve()
	return m
}

func (m *mux) serve() {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			m.close()
			return
		}
		go m.route(c)
	}
}

// route finishes the handshake (bounded, so a silent client cannot hold a
// goroutine) and hands the connection on. A Raft stream needs a verified
// member certificate; HTTP routes check their callers themselves, since a
// joining node has no certificate yet.
func (m *mux) route(c net.Conn) {
	tc := tls.Server(c, m.tlsConf)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return
	}
	dst := m.httpc
	if tc.ConnectionState().NegotiatedProtocol == raftProto {
		if _, err := node.PeerID(tc.ConnectionState()); err != nil {
			m.log.Warn("refused a raft connection without a member certificate", "remote", c.RemoteAddr().String())
			tc.Close()
			return
		}
		dst = m.raftc
	}
	select {
	case dst <- tc:
	case <-m.done:
		tc.Close()
	}
}

func (m *mux) close() {
	m.once.Do(func() {
		close(m.done)
		m.ln.Close()
	})
}

// httpListener is the HTTP half of the mux as a net.Listener.
type httpListener struct{ m *mux }

func (l httpListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.m.httpc:
		return c, nil
	case <-l.m.done:
		return nil, net.ErrClosed
	}
}
func (l httpListener) Close() error   { l.m.close(); return nil }
func (l httpListener) Addr() net.Addr { return l.m.ln.Addr() }

// raftLayer is the Raft half of the mux as raft.StreamLayer.
type raftLayer struct{ m *mux }

func (l raftLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.m.raftc:
		return c, nil
	case <-l.m.done:
		return nil, net.ErrClosed
	}
}
func (l raftLayer) Close() error   { l.m.close(); return nil }
func (l raftLayer) Addr() net.Addr { return l.m.advert }

// Dial opens a Raft stream to a member; the member's certificate must come
// from the cluster CA and cover the dialled host.
func (l raftLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	host, _, err := net.SplitHostPort(string(address))
	if err != nil {
		return nil, err
	}
	cfg := l.m.dial.Clone()
	cfg.ServerName = host
	cfg.NextProtos = []string{raftProto}
	d := &net.Dialer{Timeout: timeout}
	c, err := tls.DialWithDialer(d, "tcp", string(address), cfg)
	if err != nil {
		return nil, fmt.Errorf("raft dial %s: %w", address, err)
	}
	if c.ConnectionState().NegotiatedProtocol != raftProto {
		c.Close()
		return nil, fmt.Errorf("raft dial %s: the peer does not speak %s", address, raftProto)
	}
	return c, nil
}

var _ raft.StreamLayer = raftLayer{}

// tcpAddr is an advertised address that need not be local.
type tcpAddr string

func (a tcpAddr) Network() string { return "tcp" }
func (a tcpAddr) String() string  { return string(a) }

// discard swallows raft's own logger output unless asked for.
var discard io.Writer = io.Discard
