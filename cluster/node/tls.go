package node

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// ServerTLS returns the configuration a node serves its cluster listener
// with: it presents the node's certificate and requires every client to
// present a certificate of the cluster CA caPEM naming a node of that
// cluster. Set Time on the result to verify against another clock.
func ServerTLS(caPEM, certPEM, keyPEM []byte) (*tls.Config, error) {
	cfg, pool, err := baseTLS(caPEM, certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("server tls: %w", err)
	}
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	cfg.ClientCAs = pool
	return cfg, nil
}

// ClientTLS returns the configuration a node dials its peers with: it
// presents the node's certificate and trusts only servers whose
// certificate comes from the cluster CA caPEM, names a node of that
// cluster and covers the dialled host.
func ClientTLS(caPEM, certPEM, keyPEM []byte) (*tls.Config, error) {
	cfg, pool, err := baseTLS(caPEM, certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("client tls: %w", err)
	}
	cfg.RootCAs = pool
	return cfg, nil
}

func baseTLS(caPEM, certPEM, keyPEM []byte) (*tls.Config, *x509.CertPool, error) {
	ca, err := parseCACert(caPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster ca: %w", err)
	}
	clusterID, _, _ := parseIdentity(ca.URIs) // checked by parseCACert
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("node certificate: %w", err)
	}
	// An empty pool plus our CA: never the system roots.
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{pair},
		// The handshake has verified the chain by now; this refuses a
		// certificate of the cluster CA that names no node of the cluster.
		VerifyConnection: func(cs tls.ConnectionState) error {
			if _, err := peerIn(cs, clusterID); err != nil {
				return fmt.Errorf("cluster %s: %w", clusterID, err)
			}
			return nil
		},
	}
	return cfg, pool, nil
}

// PeerID returns the ID of the node at the other end of a connection made
// with ServerTLS or ClientTLS. It reads only the verified chain, and
// refuses a peer whose certificate names a cluster other than the one its
// CA names.
func PeerID(state tls.ConnectionState) (string, error) {
	return peerIn(state, "")
}

// peerIn is PeerID that also requires cluster clusterID, unless empty.
func peerIn(state tls.ConnectionState, clusterID string) (string, error) {
	if len(state.VerifiedChains) == 0 || len(state.VerifiedChains[0]) < 2 {
		return "", errors.New("peer id: no verified peer certificate")
	}
	chain := state.VerifiedChains[0]
	root := chain[len(chain)-1]
	caCluster, caNode, err := parseIdentity(root.URIs)
	if err != nil {
		return "", fmt.Errorf("peer id: root: %w", err)
	}
	if caNode != "" {
		return "", fmt.Errorf("peer id: root names node %q", caNode)
	}
	if clusterID != "" && caCluster != clusterID {
		return "", fmt.Errorf("peer id: root is the ca of cluster %q", caCluster)
	}
	peerCluster, peerNode, err := parseIdentity(chain[0].URIs)
	if err != nil {
		return "", fmt.Errorf("peer id: %w", err)
	}
	if peerNode == "" {
		return "", errors.New("peer id: certificate names no node")
	}
	if peerCluster != caCluster {
		return "", fmt.Errorf("peer id: node %s of cluster %q, ca of cluster %q", peerNode, peerCluster, caCluster)
	}
	return peerNode, nil
}
