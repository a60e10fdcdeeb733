package node

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/url"
	"time"

	"github.com/cairnhq/cairn/cluster/pki"
)

// Lifetimes of the cluster's certificates.
const (
	CALifetime   = 10 * 365 * 24 * time.Hour
	NodeLifetime = 365 * 24 * time.Hour
	backdate     = time.Hour // tolerate peers whose clocks run a little behind
)

// CA is a cluster's certificate authority: it issues the certificates
// nodes present to each other.
type CA struct {
	clusterID string
	cert      *x509.Certificate
	key       *ecdsa.PrivateKey
	rand      io.Reader
}

// NewCA creates the CA of cluster clusterID, valid from now for ten years.
// rand supplies serial numbers and keys (Go may use its own source for
// keys; see crypto/ecdsa).
func NewCA(clusterID string, now time.Time, rand io.Reader) (*CA, error) {
	if err := checkID("cluster", clusterID); err != nil {
		return nil, fmt.Errorf("new cluster ca: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand)
	if err != nil {
		return nil, fmt.Errorf("new cluster ca: generate key: %w", err)
	}
	serial, err := serialNumber(rand)
	if err != nil {
		return nil, fmt.Errorf("new cluster ca: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("new cluster ca: %w", err)
	}
	ski := sha256.Sum256(pub)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"Cairn"}, CommonName: "Cairn cluster CA " + clusterID},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(CALifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		SubjectKeyId:          ski[:20],
		URIs:                  []*url.URL{clusterURI(clusterID)},
	}
	der, err := x509.CreateCertificate(rand, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("new cluster ca: sign: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("new cluster ca: %w", err)
	}
	return &CA{clusterID: clusterID, cert: cert, key: key, rand: rand}, nil
}

// LoadCA reads a CA written by CertPEM and KeyPEM. It refuses a key that
// does not match the certificate, or a certificate that is not a cluster CA.
// Certificates it issues draw serial numbers from crypto/rand.
func LoadCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := parseCACert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("load cluster ca: %w", err)
	}
	clusterID, _, _ := parseIdentity(cert.URIs) // checked by parseCACert
	key, err := pki.ParseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load cluster ca: %w", err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, errors.New("load cluster ca: key does not match certificate")
	}
	return &CA{clusterID: clusterID, cert: cert, key: key, rand: rand.Reader}, nil
}

// ClusterID names the cluster whose CA this is.
func (ca *CA) ClusterID() string { return ca.clusterID }

// CertPEM returns the CA certificate, which every node trusts.
func (ca *CA) CertPEM() []byte { return pki.CertPEM(ca.cert.Raw) }

// KeyPEM returns the CA's private key (PKCS #8). Whoever holds it can make
// nodes of the cluster.
func (ca *CA) KeyPEM() ([]byte, error) { return pki.KeyPEM(ca.key) }

// Issue makes the certificate of node nodeID, valid from now for a year
// (never beyond the CA) for both server and client authentication. hosts
// are the names and addresses peers dial it by (a port is ignored,
// wildcard addresses are dropped).
func (ca *CA) Issue(nodeID string, hosts []string, now time.Time) (certPEMOut, keyPEMOut []byte, err error) {
	if err := checkID("node", nodeID); err != nil {
		return nil, nil, fmt.Errorf("issue node certificate: %w", err)
	}
	dns, ips, err := pki.SplitHosts(hosts)
	if err != nil {
		return nil, nil, fmt.Errorf("issue node certificate %s: %w", nodeID, err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), ca.rand)
	if err != nil {
		return nil, nil, fmt.Errorf("issue node certificate %s: generate key: %w", nodeID, err)
	}
	serial, err := serialNumber(ca.rand)
	if err != nil {
		return nil, nil, fmt.Errorf("issue node certificate %s: %w", nodeID, err)
	}
	notAfter := now.Add(NodeLifetime)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{Organization: []string{"Cairn"}, CommonName: nodeID},
		NotBefore:    now.Add(-backdate),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     dns,
		IPAddresses:  ips,
		URIs:         []*url.URL{nodeURI(ca.clusterID, nodeID)},
	}
	der, err := x509.CreateCertificate(ca.rand, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("issue node certificate %s: sign: %w", nodeID, err)
	}
	kp, err := pki.KeyPEM(key)
	if err != nil {
		return nil, nil, fmt.Errorf("issue node certificate %s: %w", nodeID, err)
	}
	return pki.CertPEM(der), kp, nil
}

func serialNumber(r io.Reader) (*big.Int, error) {
	n, err := rand.Int(r, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return n, nil
}
