package member

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/cairnhq/cairn/cluster/meta"
	"github.com/cairnhq/cairn/cluster/node"
)

// A join token as people handle it: the node layer's token (prefix and
// secret) and, after a dot, the SHA-256 of the cluster CA's certificate, so
// the joining node checks that it talks to the right cluster before it sends
// the secret (as kubeadm's discovery hash does).
type joinToken struct {
	secret      []byte
	fingerprint string
}

func parseJoinToken(s string) (joinToken, error) {
	s = strings.TrimSpace(s)
	tok, fp, ok := strings.Cut(s, ".")
	if !ok {
		return joinToken{}, errors.New("join token: missing the cluster fingerprint after the dot; copy the whole token that `cairn cluster join-token` printed")
	}
	secret, err := node.ParseToken(tok)
	if err != nil {
		return joinToken{}, err
	}
	if b, err := hex.DecodeString(fp); err != nil || len(b) != sha256.Size {
		return joinToken{}, errors.New("join token: the cluster fingerprint is not 64 hex digits")
	}
	return joinToken{secret: secret, fingerprint: strings.ToLower(fp)}, nil
}

func tokenHash(secret []byte) string {
	sum := sha256.Sum256(secret)
	return hex.EncodeToString(sum[:])
}

// joinRequest is what a joining node sends; joinReply what it gets back.
type joinRequest struct {
	Token   string `json:"token"`
	NodeID  string `json:"node_id"`
	Address string `json:"address"` // where members reach it (cluster)
	API     string `json:"api,omitempty"`
}

type joinReply struct {
	ClusterID string `json:"cluster_id"`
	CACert    []byte `json:"ca_cert"`
	CAKey     []byte `json:"ca_key"`
	NodeCert  []byte `json:"node_cert"`
	NodeKey   []byte `json:"node_key"`
	// Secret is the appliance's shared secret (its master key), which every
	// member needs to read what the others wrote.
	Secret []byte `json:"secret"`
}

// maxJoinBody bounds a join request and reply: certificates and keys only.
const maxJoinBody = 64 << 10

// join asks the member at addr to admit this node, proving the cluster by
// the CA fingerprint in the token before sending the token itself.
func join(ctx context.Context, addr, token string, req joinRequest) (*joinReply, error) {
	tok, err := parseJoinToken(token)
	if err != nil {
		return nil, err
	}
	req.Token = token
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		// No CA yet: the chain the member presents must end in a CA whose
		// fingerprint the token names, and the leaf must verify under it.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			return verifyByFingerprint(raw, tok.fingerprint)
		},
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: false}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	body, _ := json.Marshal(req)
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+addr+"/cairn/member/v1/join", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("join %s: %w", addr, err)
	}
	resp, err := client.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("join %s: %w", addr, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxJoinBody+1))
	if err != nil {
		return nil, fmt.Errorf("join %s: read the reply: %w", addr, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("join %s: refused: %s", addr, strings.TrimSpace(string(b)))
	}
	rep, err := parseJoinReply(b)
	if err != nil {
		return nil, fmt.Errorf("join %s: %w", addr, err)
	}
	if caFingerprintPEM(rep.CACert) != tok.fingerprint {
		return nil, fmt.Errorf("join %s: the CA in the reply is not the one the token names", addr)
	}
	return rep, nil
}

func parseJoinReply(b []byte) (*joinReply, error) {
	if len(b) > maxJoinBody {
		return nil, errors.New("join reply too large")
	}
	var rep joinReply
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		return nil, fmt.Errorf("join reply: %w", err)
	}
	if rep.ClusterID == "" || len(rep.CACert) == 0 || len(rep.CAKey) == 0 || len(rep.NodeCert) == 0 || len(rep.NodeKey) == 0 {
		return nil, errors.New("join reply: incomplete")
	}
	if _, err := node.LoadCA(rep.CACert, rep.CAKey); err != nil {
		return nil, fmt.Errorf("join reply: %w", err)
	}
	if _, err := node.ClientTLS(rep.CACert, rep.NodeCert, rep.NodeKey); err != nil {
		return nil, fmt.Errorf("join reply: %w", err)
	}
	return &rep, nil
}

// verifyByFingerprint checks a presented chain [leaf, ..., CA] against the
// CA fingerprint a token carries.
func verifyByFingerprint(raw [][]byte, fingerprint string) error {
	if len(raw) < 2 {
		return errors.New("the member did not present its cluster CA")
	}
	caDER := raw[len(raw)-1]
	if subtle.ConstantTimeCompare([]byte(caFingerprint(caDER)), []byte(fingerprint)) != 1 {
		return errors.New("the member's cluster CA does not match the join token: wrong cluster, or someone in between")
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	leaf, err := x509.ParseCertificate(raw[0])
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	_, err = leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	return err
}

func caFingerprintPEM(caPEM []byte) string {
	cert, err := parseCertPEM(caPEM)
	if err != nil {
		return ""
	}
	return caFingerprint(cert.Raw)
}

// handleJoin admits a node: it redeems the token through the replicated
// state (so a token issued anywhere redeems once, anywhere), issues the
// node's certificate and adds it to Raft and to the membership. Only the
// leader admits; another member passes the request on to it.
func (m *Member) handleJoin(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxJoinBody+1))
	if err != nil || len(body) > maxJoinBody {
		http.Error(w, "join request too large or unreadable", http.StatusBadRequest)
		return
	}
	if !m.catalog.IsLeader() {
		m.proxyToLeader(w, r, "/cairn/member/v1/join", body)
		return
	}
	var req joinRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		http.Error(w, "join request: "+err.Error(), http.StatusBadRequest)
		return
	}
	rep, status, err := m.admit(r.Context(), req)
	if err != nil {
		m.log.Warn("join refused", "node", req.NodeID, "remote", r.RemoteAddr, "err", err)
		http.Error(w, err.Error(), status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(rep)
}

func (m *Member) admit(ctx context.Context, req joinRequest) (*joinReply, int, error) {
	tok, err := parseJoinToken(req.Token)
	if err != nil {
		return nil, http.StatusBadRequest, err
	}
	if tok.fingerprint != caFingerprintPEM(m.id.CACert) {
		return nil, http.StatusForbidden, errors.New("the token belongs to another cluster")
	}
	if !meta.ValidName(req.NodeID) {
		return nil, http.StatusBadRequest, fmt.Errorf("node id %q is not a valid name", req.NodeID)
	}
	host, _, err := net.SplitHostPort(req.Address)
	if err != nil || host == "" {
		return nil, http.StatusBadRequest, fmt.Errorf("node address %q: want HOST:PORT", req.Address)
	}
	members, err := m.catalog.Membership(ctx)
	if err != nil {
		return nil, http.StatusServiceUnavailable, err
	}
	for _, n := range members.Nodes {
		if n.ID == req.NodeID || n.Address == req.Address {
			return nil, http.StatusConflict, fmt.Errorf("node %s at %s is already a member (as %s at %s)", req.NodeID, req.Address, n.ID, n.Address)
		}
	}
	secret := m.secret()
	if secret == nil {
		return nil, http.StatusServiceUnavailable, errors.New("this member is not ready to admit nodes")
	}
	if err := m.catalog.RedeemJoinToken(ctx, tokenHash(tok.secret), req.NodeID, m.now()); err != nil {
		status := http.StatusForbidden
		if errors.Is(err, meta.ErrClosed) {
			status = http.StatusServiceUnavailable
		}
		return nil, status, err
	}
	ca, err := node.LoadCA(m.id.CACert, m.id.CAKey)
	if err != nil {
		return nil, http.StatusInternalServerError, err
	}
	cert, key, err := ca.Issue(req.NodeID, []string{host}, m.now())
	if err != nil {
		return nil, http.StatusInternalServerError, err
	}
	// A non-voter first: a voter that has not started yet would count
	// against the quorum. The leader promotes it once it answers.
	if err := m.catalog.SetNode(ctx, meta.Node{ID: req.NodeID, Address: req.Address, API: req.API, State: meta.NodeActive}); err != nil {
		return nil, http.StatusServiceUnavailable, err
	}
	if err := m.catalog.AddNonvoter(ctx, req.NodeID, req.Address); err != nil {
		return nil, http.StatusServiceUnavailable, err
	}
	m.log.Info("node joined", "node", req.NodeID, "address", req.Address)
	return &joinReply{ClusterID: ca.ClusterID(), CACert: m.id.CACert, CAKey: m.id.CAKey,
		NodeCert: cert, NodeKey: key, Secret: secret}, 0, nil
}
