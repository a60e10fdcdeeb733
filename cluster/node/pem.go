package node

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// parseCert reads the first certificate of a PEM bundle.
func parseCert(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	return cert, nil
}

// parseCACert reads a cluster CA certificate: a CA naming a cluster and no
// node.
func parseCACert(data []byte) (*x509.Certificate, error) {
	cert, err := parseCert(data)
	if err != nil {
		return nil, err
	}
	if !cert.IsCA {
		return nil, errors.New("certificate is not a CA")
	}
	_, nodeID, err := parseIdentity(cert.URIs)
	if err != nil {
		return nil, fmt.Errorf("ca certificate: %w", err)
	}
	if nodeID != "" {
		return nil, fmt.Errorf("ca certificate names node %q", nodeID)
	}
	return cert, nil
}
