package member

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/cairnhq/cairn/cluster/meta"
	"github.com/cairnhq/cairn/cluster/node"
	"github.com/cairnhq/cairn/cluster/peer"
	"github.com/cairnhq/cairn/cluster/placement"
	"github.com/cairnhq/cairn/cluster/replica"
	"github.com/cairnhq/cairn/cluster/store"
)

// Config configures a member.
type Config struct {
	// Dir holds the member's identity and Raft state (mode 0700).
	Dir string
	// Listen is the cluster listener, HOST:PORT; port 0 picks one.
	Listen string
	// Advertise is the address other members dial; default the listener's.
	Advertise string
	// API is the address of this node's REST API, published to the others.
	API string
	// Join, with Token, makes a node without an identity join the cluster
	// of the member at this address instead of bootstrapping a new one.
	Join  string
	Token string
	// Labels name this node's failure domains (rack, site).
	Labels map[string]string
	// DeadAfter is how long a member may be unreachable before the leader
	// declares it down and its chunks are re-replicated; default 30 s.
	DeadAfter time.Duration
	// Probe is how often members check each other; default 1 s.
	Probe time.Duration
	// Store is this node's chunk store, served to the other members and
	// part of the cluster's (see Chunks); nil runs a member without chunks.
	Store store.Store
	// HealEvery is how often the leader runs a healing round over the
	// chunk data; default 10 s.
	HealEvery time.Duration
	// Raft tunes Raft; nil means raft.DefaultConfig().
	Raft *raft.Config
	Log  *slog.Logger
	Now  func() time.Time
}

// Healer keeps chunk data at its replica count; the appliance implements it
// over the chunk stores. The leader calls Heal after every membership check.
type Healer interface {
	Heal(ctx context.Context, m meta.Membership) (HealReport, error)
}

// HealReport is what one healing round found.
type HealReport struct {
	// UnderReplicated counts chunks with fewer healthy copies than their
	// policy wants, after the round's repairs.
	UnderReplicated int64
	// Drained lists draining nodes that no longer hold any chunk another
	// node lacks: they may leave.
	Drained []string
}

// Member is this process as a member of a Cairn cluster.
type Member struct {
	cfg     Config
	id      *identity
	catalog *meta.Replicated
	mux     *mux
	http    *http.Server
	routes  *http.ServeMux
	client  *http.Client // member-to-member HTTP/2 over mutual TLS
	server  *tls.Config
	dial    *tls.Config
	log     *slog.Logger
	now     func() time.Time

	mu       sync.Mutex
	shared   []byte               // the appliance's secret, served to joiners
	joined   []byte               // the secret received when this node joined
	lastSeen map[string]time.Time // member ID → last successful probe
	healer   Healer
	report   HealReport
	healed   bool
	lastHeal time.Time

	chunks *chunks

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start makes this process a member: it bootstraps a one-member cluster on
// first start, joins the cluster at cfg.Join if asked, or resumes as the
// member it was. It returns once the member serves its cluster listener;
// the catalog may not know a leader yet (see meta.Replicated.WaitLeader).
func Start(ctx context.Context, cfg Config) (_ *Member, err error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.DeadAfter <= 0 {
		cfg.DeadAfter = 30 * time.Second
	}
	if cfg.Probe <= 0 {
		cfg.Probe = time.Second
	}
	if cfg.HealEvery <= 0 {
		cfg.HealEvery = 10 * time.Second
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("member: %w", err)
	}
	m := &Member{cfg: cfg, log: cfg.Log, now: cfg.Now, lastSeen: map[string]time.Time{}}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("member: cluster listener: %w", err)
	}
	defer func() {
		if err != nil {
			ln.Close()
		}
	}()
	advertise := cfg.Advertise
	if advertise == "" {
		advertise = ln.Addr().String()
	}
	if host, _, err := net.SplitHostPort(advertise); err != nil || net.ParseIP(host).IsUnspecified() {
		return nil, fmt.Errorf("member: advertise address %q: give one other members can dial (--cluster-advertise)", advertise)
	}
	m.cfg.Advertise = advertise

	bootstrap := false
	m.id, err = loadIdentity(cfg.Dir)
	switch {
	case err == nil:
		if cfg.Join != "" {
			m.log.Info("already a member: ignoring --join", "node", m.id.NodeID)
		}
	case isNotExist(err) && cfg.Join != "":
		if cfg.Token == "" {
			return nil, errors.New("member: joining needs a join token (--token)")
		}
		if m.id, err = m.joinCluster(ctx); err != nil {
			return nil, err
		}
	case isNotExist(err):
		host, _, _ := net.SplitHostPort(advertise)
		if m.id, err = bootstrapIdentity(newNodeID(m.now()), []string{host}, m.now()); err != nil {
			return nil, fmt.Errorf("member: bootstrap: %w", err)
		}
		if err := m.id.save(cfg.Dir); err != nil {
			return nil, fmt.Errorf("member: save identity: %w", err)
		}
		bootstrap = true
	default:
		return nil, fmt.Errorf("member: %w", err)
	}

	if m.server, m.dial, err = tlsConfigs(m.id); err != nil {
		return nil, fmt.Errorf("member: %w", err)
	}
	m.mux = newMux(ln, m.server, m.dial, tcpAddr(advertise), m.log)
	m.client = &http.Client{Transport: &http.Transport{TLSClientConfig: m.dial.Clone(), ForceAttemptHTTP2: true,
		MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute}}
	m.routes = http.NewServeMux()
	m.routes.HandleFunc("POST /cairn/member/v1/join", m.handleJoin)
	m.routes.Handle("POST /cairn/meta/v1/apply", m.membersOnly(http.HandlerFunc(m.handleApply)))
	m.routes.Handle("GET /cairn/member/v1/health", m.membersOnly(http.HandlerFunc(m.handleHealth)))
	m.routes.Handle("GET /cairn/member/v1/status", m.membersOnly(http.HandlerFunc(m.handleStatus)))
	m.routes.Handle("POST /cairn/member/v1/gc/sweep", m.membersOnly(http.HandlerFunc(m.handleSweep)))
	m.http = &http.Server{Handler: m.routes, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(m.log.Handler(), slog.LevelDebug)}

	rcfg := raft.DefaultConfig()
	if cfg.Raft != nil {
		c := *cfg.Raft
		rcfg = &c
	}
	rcfg.Logger = nil
	rcfg.LogOutput = discard
	transport := raft.NewNetworkTransport(raftLayer{m.mux}, 3, 10*time.Second, discard)
	m.catalog, err = meta.OpenReplicated(filepath.Join(cfg.Dir, "raft"), meta.ReplicatedOptions{
		ID: m.id.NodeID, Transport: transport, Bootstrap: bootstrap, Config: rcfg, Forward: m.forward,
	})
	if err != nil {
		m.mux.close()
		return nil, err
	}
	if cfg.Store != nil {
		m.chunks = &chunks{self: m.id.NodeID, local: cfg.Store, log: m.log,
			clients: map[string]*peer.Client{}, addrs: map[string]string{}}
		rs, err := replica.New(placement.Map{}, m.node, replica.Options{MinAcks: WriteAcks, Corrupt: m.quarantine})
		if err != nil {
			m.catalog.Close()
			m.mux.close()
			return nil, err
		}
		m.chunks.store = rs
		m.healer = chunkHealer{m}
		srv := peer.NewServer(cfg.Store, peer.ServerOptions{ErrorLog: slog.NewLogLogger(m.log.Handler(), slog.LevelDebug)})
		m.Handle("/cairn/v1/", srv)
		m.http.HTTP2 = srv.HTTP2() // large windows for chunk transfers
	}
	// Serve only now: every handler reads the catalog.
	go m.http.Serve(httpListener{m.mux})
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel = cancel
	m.wg.Add(2)
	go m.probeLoop(bg)
	go m.leaderLoop(bg)
	if m.chunks != nil {
		m.wg.Add(1)
		go m.mapLoop(bg)
	}
	m.log.Info("cluster member serving", "node", m.id.NodeID, "cluster_address", advertise, "bootstrap", bootstrap)
	return m, nil
}

func (m *Member) joinCluster(ctx context.Context) (*identity, error) {
	nodeID := newNodeID(m.now())
	rep, err := join(ctx, m.cfg.Join, m.cfg.Token, joinRequest{NodeID: nodeID, Address: m.cfg.Advertise, API: m.cfg.API})
	if err != nil {
		return nil, fmt.Errorf("member: %w", err)
	}
	id := &identity{NodeID: nodeID, CACert: rep.CACert, CAKey: rep.CAKey, NodeCert: rep.NodeCert, NodeKey: rep.NodeKey}
	if err := id.save(m.cfg.Dir); err != nil {
		return nil, fmt.Errorf("member: save identity: %w", err)
	}
	m.joined = rep.Secret
	m.log.Info("joined cluster", "cluster", rep.ClusterID, "node", nodeID, "via", m.cfg.Join)
	return id, nil
}

// tlsConfigs returns the cluster listener's configuration, which also lets
// a joining node without a certificate reach the join route, and the one
// members dial each other with.
func tlsConfigs(id *identity) (server, client *tls.Config, err error) {
	server, err = node.ServerTLS(id.CACert, id.NodeCert, id.NodeKey)
	if err != nil {
		return nil, nil, err
	}
	client, err = node.ClientTLS(id.CACert, id.NodeCert, id.NodeKey)
	if err != nil {
		return nil, nil, err
	}
	ca, err := parseCertPEM(id.CACert)
	if err != nil {
		return nil, nil, err
	}
	// Present the CA after the leaf, so a joining node can check it
	// against the fingerprint in its token.
	server.Certificates[0].Certificate = append(server.Certificates[0].Certificate, ca.Raw)
	server.ClientAuth = tls.VerifyClientCertIfGiven
	verify := server.VerifyConnection
	server.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return nil // a joining node; routes other than join refuse it
		}
		return verify(cs)
	}
	server.NextProtos = []string{raftProto, "h2", "http/1.1"}
	return server, client, nil
}

func parseCertPEM(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(blk.Bytes)
}

// membersOnly refuses callers without a verified member certificate.
func (m *Member) membersOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			http.Error(w, "members only", http.StatusForbidden)
			return
		}
		if _, err := node.PeerID(*r.TLS); err != nil {
			http.Error(w, "members only", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Handle serves h for pattern on the cluster listener, to verified members
// only (the chunk protocol, for one).
func (m *Member) Handle(pattern string, h http.Handler) { m.routes.Handle(pattern, m.membersOnly(h)) }

// ID returns this node's ID.
func (m *Member) ID() string { return m.id.NodeID }

// Address returns the address other members dial this one at.
func (m *Member) Address() string { return m.cfg.Advertise }

// Catalog returns the replicated catalog.
func (m *Member) Catalog() *meta.Replicated { return m.catalog }

// ClientTLS returns the configuration to dial other members with.
func (m *Member) ClientTLS() *tls.Config { return m.dial.Clone() }

// JoinedSecret returns the appliance secret this node received when it
// joined in this start, or nil if it bootstrapped or was already a member.
func (m *Member) JoinedSecret() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.joined
}

// SetSecret gives the member the appliance secret to hand to nodes it
// admits.
func (m *Member) SetSecret(b []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.shared = b
}

func (m *Member) secret() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.shared
}

// SetHealer installs the chunk healer the leader runs.
func (m *Member) SetHealer(h Healer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.healer = h
}

// IssueJoinToken makes a join token, valid for node.DefaultTokenTTL, that
// any member redeems once.
func (m *Member) IssueJoinToken(ctx context.Context) (string, time.Time, error) {
	secret := make([]byte, 32)
	if _, err := io.ReadFull(rand.Reader, secret); err != nil {
		return "", time.Time{}, err
	}
	expires := m.now().Add(node.DefaultTokenTTL).UTC().Truncate(time.Second)
	if err := m.catalog.PutJoinToken(ctx, meta.JoinToken{Hash: tokenHash(secret), Expires: expires}); err != nil {
		return "", time.Time{}, err
	}
	ca, err := parseCertPEM(m.id.CACert)
	if err != nil {
		return "", time.Time{}, err
	}
	return node.TokenPrefix + base64.RawURLEncoding.EncodeToString(secret) + "." + caFingerprint(ca.Raw), expires, nil
}

// Close stops the member: its background work, Raft and the listener.
func (m *Member) Close() error {
	m.cancel()
	m.wg.Wait()
	err := m.catalog.Close()
	m.http.Close()
	m.mux.close()
	m.client.CloseIdleConnections()
	if m.chunks != nil {
		m.chunks.store.Close()
		m.chunks.close()
	}
	return err
}

// Ready waits until the cluster has a leader and this member is in the
// membership (and, with a store, in its own placement map), so writes
// through it can be placed.
func (m *Member) Ready(ctx context.Context) error {
	if _, err := m.catalog.WaitLeader(ctx); err != nil {
		return err
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ms, err := m.catalog.Membership(ctx)
		if err != nil {
			return err
		}
		in := false
		for _, n := range ms.Nodes {
			in = in || n.ID == m.id.NodeID
		}
		if in && m.chunks != nil {
			if err := m.refreshChunks(ctx); err != nil {
				return err
			}
		}
		if in {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait to be a member: %w", ctx.Err())
		case <-tick.C:
		}
	}
}
