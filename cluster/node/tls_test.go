package node

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// peer is one node's TLS material.
type peer struct {
	ca        *CA
	cert, key []byte
}

func newPeer(t *testing.T, ca *CA, nodeID string, now time.Time) peer {
	t.Helper()
	cert, key, err := ca.Issue(nodeID, []string{"127.0.0.1"}, now)
	if err != nil {
		t.Fatalf("issue %s: %v", nodeID, err)
	}
	return peer{ca: ca, cert: cert, key: key}
}

// server serves on 127.0.0.1 with ServerTLS, answering each request with
// the caller's PeerID. calls counts requests that reached the handler.
type server struct {
	url   string
	calls atomic.Int32
	log   syncBuffer // the server's complaints about refused handshakes
}

type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitLog waits for the server to log want: it logs a refused handshake
// after the client has already seen it fail.
func (s *server) waitLog(t *testing.T, want string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if strings.Contains(s.log.String(), want) {
			return
		}
	}
	t.Errorf("server log %q lacks %q", s.log.String(), want)
}

func serve(t *testing.T, p peer) *server {
	t.Helper()
	cfg, err := ServerTLS(p.ca.CertPEM(), p.cert, p.key)
	if err != nil {
		t.Fatalf("ServerTLS: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{url: "https://" + ln.Addr().String() + "/"}
	hs := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.calls.Add(1)
			id, err := PeerID(*r.TLS)
			if err != nil {
				http.Error(w, err.Error(), http.StatusForbidden)
				return
			}
			io.WriteString(w, id)
		}),
	}
	hs.ErrorLog = log.New(&s.log, "", 0)
	go hs.Serve(tls.NewListener(ln, cfg))
	t.Cleanup(func() { hs.Close() })
	return s
}

func get(t *testing.T, cfg *tls.Config, rawURL string) (string, error) {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: cfg}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := c.Get(rawURL)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", errors.New(resp.Status + ": " + string(body))
	}
	return string(body), nil
}

func clientTLS(t *testing.T, p peer) *tls.Config {
	t.Helper()
	cfg, err := ClientTLS(p.ca.CertPEM(), p.cert, p.key)
	if err != nil {
		t.Fatalf("ClientTLS: %v", err)
	}
	return cfg
}

func TestMutualTLS(t *testing.T) {
	now := time.Now()
	ca := newTestCA(t, "c1", now)
	srv := serve(t, newPeer(t, ca, "n1", now))
	cfg := clientTLS(t, newPeer(t, ca, "n2", now))
	var seen tls.ConnectionState
	cfg.VerifyConnection = wrapVerify(cfg.VerifyConnection, &seen)

	id, err := get(t, cfg, srv.url)
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	if id != "n2" {
		t.Errorf("server saw peer %q, want n2", id)
	}
	if seen.Version != tls.VersionTLS13 {
		t.Errorf("negotiated TLS %x, want 1.3", seen.Version)
	}
	if got, err := PeerID(seen); err != nil || got != "n1" {
		t.Errorf("client saw peer %q, %v; want n1", got, err)
	}
}

func TestTLS12Minimum(t *testing.T) {
	now := time.Now()
	ca := newTestCA(t, "c1", now)
	srv := serve(t, newPeer(t, ca, "n1", now))
	cfg := clientTLS(t, newPeer(t, ca, "n2", now))
	cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	if _, err := get(t, cfg, srv.url); err != nil {
		t.Errorf("TLS 1.2 refused: %v", err)
	}
	cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS11, tls.VersionTLS11
	if _, err := get(t, cfg, srv.url); err == nil {
		t.Error("TLS 1.1 accepted")
	}
	if srv.calls.Load() != 1 {
		t.Errorf("handler ran %d times, want 1", srv.calls.Load())
	}
}

func wrapVerify(next func(tls.ConnectionState) error, seen *tls.ConnectionState) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		*seen = cs
		return next(cs)
	}
}

func TestServerRefusesClients(t *testing.T) {
	now := time.Now()
	ca := newTestCA(t, "c1", now)
	server := newPeer(t, ca, "n1", now)
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)

	other := newTestCA(t, "c1", now) // same cluster name, another key
	past := now.Add(-2 * NodeLifetime)

	tests := []struct {
		name, why string // why: what the server logs
		after     string // and then, if set
		cfg       func() *tls.Config
	}{
		{"no certificate", "client didn't provide a certificate", "", func() *tls.Config {
			return &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		}},
		{"certificate of another CA", "signed by unknown authority", "", func() *tls.Config {
			p := newPeer(t, other, "n2", now)
			cfg := clientTLS(t, p)
			cfg.RootCAs = roots // trust the server, so only our certificate is at stake
			return cfg
		}},
		{"expired certificate", "has expired or is not yet valid: current time", " is after ", func() *tls.Config {
			return clientTLS(t, newPeer(t, ca, "n2", past))
		}},
		{"certificate not yet valid", "not yet valid: current time", " is before ", func() *tls.Config {
			return clientTLS(t, newPeer(t, ca, "n2", now.Add(48*time.Hour)))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := serve(t, server)
			if id, err := get(t, tt.cfg(), srv.url); err == nil {
				t.Fatalf("server accepted the client as %q", id)
			}
			srv.waitLog(t, tt.why)
			if tt.after != "" {
				srv.waitLog(t, tt.after)
			}
			if n := srv.calls.Load(); n != 0 {
				t.Errorf("handler ran %d times for a refused client", n)
			}
			// The same server takes a proper client: the refusal was not
			// a broken server.
			if _, err := get(t, clientTLS(t, newPeer(t, ca, "n3", now)), srv.url); err != nil {
				t.Errorf("proper client refused: %v", err)
			}
		})
	}
}

func TestClientRefusesServerOfAnotherCA(t *testing.T) {
	now := time.Now()
	ca := newTestCA(t, "c1", now)
	other := newTestCA(t, "c1", now)
	srv := serve(t, newPeer(t, other, "n1", now))
	_, err := get(t, clientTLS(t, newPeer(t, ca, "n2", now)), srv.url)
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("GET from a server of another CA: %v, want an unknown authority error", err)
	}
	if n := srv.calls.Load(); n != 0 {
		t.Errorf("handler ran %d times", n)
	}
}

func TestClientRefusesExpiredServer(t *testing.T) {
	now := time.Now()
	ca := newTestCA(t, "c1", now.Add(-2*NodeLifetime))
	srv := serve(t, newPeer(t, ca, "n1", now.Add(-2*NodeLifetime)))
	_, err := get(t, clientTLS(t, newPeer(t, ca, "n2", now)), srv.url)
	var invalid x509.CertificateInvalidError
	if !errors.As(err, &invalid) || invalid.Reason != x509.Expired {
		t.Fatalf("GET from an expired server: %v, want expired", err)
	}
}

func TestConfigsRefuseBadMaterial(t *testing.T) {
	now := time.Now()
	ca := newTestCA(t, "c1", now)
	p := newPeer(t, ca, "n1", now)
	other := newPeer(t, newTestCA(t, "c1", now), "n1", now)
	for name, f := range map[string]func([]byte, []byte, []byte) (*tls.Config, error){"server": ServerTLS, "client": ClientTLS} {
		if _, err := f(p.cert, p.cert, p.key); err == nil {
			t.Errorf("%s: accepted a node certificate as CA", name)
		}
		if _, err := f(ca.CertPEM(), p.cert, other.key); err == nil {
			t.Errorf("%s: accepted a key that does not match", name)
		}
		cfg, err := f(ca.CertPEM(), p.cert, p.key)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if cfg.MinVersion != tls.VersionTLS12 {
			t.Errorf("%s: min version %x", name, cfg.MinVersion)
		}
	}
}

func TestPeerID(t *testing.T) {
	u := func(s string) []*url.URL {
		p, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return []*url.URL{p}
	}
	root := &x509.Certificate{IsCA: true, URIs: u("cairn-node://c1")}
	tests := []struct {
		name  string
		chain []*x509.Certificate
		want  string // empty: an error
	}{
		{"node of the cluster", []*x509.Certificate{{URIs: u("cairn-node://c1/n1")}, root}, "n1"},
		{"node of another cluster", []*x509.Certificate{{URIs: u("cairn-node://c2/n1")}, root}, ""},
		{"no node", []*x509.Certificate{{URIs: u("cairn-node://c1")}, root}, ""},
		{"no identity", []*x509.Certificate{{URIs: u("spiffe://c1/n1")}, root}, ""},
		{"root names a node", []*x509.Certificate{{URIs: u("cairn-node://c1/n1")}, {URIs: u("cairn-node://c1/n2")}}, ""},
		{"unverified", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cs tls.ConnectionState
			if tt.chain != nil {
				cs.VerifiedChains = [][]*x509.Certificate{tt.chain}
			}
			got, err := PeerID(cs)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("PeerID = %q, want an error", got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("PeerID = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	// PeerCertificates alone are what the peer claims, not what was verified.
	cs := tls.ConnectionState{PeerCertificates: []*x509.Certificate{{URIs: u("cairn-node://c1/n1")}, root}}
	if _, err := PeerID(cs); err == nil || !strings.Contains(err.Error(), "verified") {
		t.Errorf("PeerID of unverified certificates: %v", err)
	}
}
