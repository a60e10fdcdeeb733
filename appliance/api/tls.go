package api

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cairnhq/cairn/cluster/pki"
)

// Names of the TLS files in the data directory.
const (
	CAFile         = "ca.pem"
	caKeyFile      = "ca.key"
	serverCertFile = "server.pem"
	serverKeyFile  = "server.key"
)

// EnsureTLS returns the server's TLS configuration from the material in
// dir, creating it on first start: a CA (ECDSA P-256, ten years) as
// DIR/ca.pem with its key in DIR/ca.key, and a server certificate for
// localhost, 127.0.0.1, ::1 and hosts, signed by that CA, as DIR/server.pem
// and DIR/server.key. Keys are written 0600 and refused when group or others
// can read them.
//
// Later starts reuse the CA, which clients trust, and refuse to replace it
// if its key is missing. The server certificate is issued again when it is
// missing, does not cover every host, was not signed by the CA or expires
// within 30 days; the returned configuration also renews it in place while
// the server runs, through GetCertificate: leave its Certificates empty.
func EnsureTLS(dir string, hosts []string) (*tls.Config, error) {
	return ensureTLS(dir, hosts, time.Now)
}

func ensureTLS(dir string, hosts []string, now func() time.Time) (*tls.Config, error) {
	names, err := hostsFor(hosts)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("tls: create %s: %w", dir, err)
	}
	ca, caKey, err := ensureCA(dir, now())
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	iss := &issuer{dir: dir, names: names, ca: ca, caKey: caKey, now: now}
	if err := iss.load(); err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: iss.certificate,
	}, nil
}

// ensureCA loads the CA or creates it. The key is written before the
// certificate, so a crash in between leaves a key without a certificate,
// which no client can trust yet and which is simply certified again.
func ensureCA(dir string, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPath, keyPath := filepath.Join(dir, CAFile), filepath.Join(dir, caKeyFile)
	key, err := readKey(keyPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if _, serr := os.Stat(certPath); serr == nil {
			return nil, nil, fmt.Errorf("%s is missing but %s exists: refusing to replace the CA clients trust; restore the key or remove both files", keyPath, certPath)
		}
		if key, err = newKey(); err != nil {
			return nil, nil, fmt.Errorf("generate CA key: %w", err)
		}
		pemKey, err := pki.KeyPEM(key)
		if err != nil {
			return nil, nil, err
		}
		if err := writeFileAtomic(keyPath, pemKey, 0o600); err != nil {
			return nil, nil, fmt.Errorf("write CA key: %w", err)
		}
	case err != nil:
		return nil, nil, fmt.Errorf("CA key: %w", err)
	}
	cert, err := readCert(certPath)
	if errors.Is(err, fs.ErrNotExist) {
		der, err := newCACert(key, now)
		if err != nil {
			return nil, nil, fmt.Errorf("create CA certificate: %w", err)
		}
		if err := writeFileAtomic(certPath, pki.CertPEM(der), 0o644); err != nil {
			return nil, nil, fmt.Errorf("write CA certificate: %w", err)
		}
		cert, err = x509.ParseCertificate(der)
		if err != nil {
			return nil, nil, err
		}
	} else if err != nil {
		return nil, nil, fmt.Errorf("CA certificate: %w", err)
	}
	if !cert.IsCA || !key.PublicKey.Equal(cert.PublicKey) {
		return nil, nil, fmt.Errorf("%s and %s do not form a CA", certPath, keyPath)
	}
	return cert, key, nil
}

// issuer holds the server certificate and issues it again when needed.
type issuer struct {
	dir   string
	names hostSet
	ca    *x509.Certificate
	caKey *ecdsa.PrivateKey
	now   func() time.Time

	mu   sync.Mutex
	cert *tls.Certificate
}

// load reuses the server certificate on disk when it is still good, and
// issues a new one otherwise.
func (iss *issuer) load() error {
	certPath := filepath.Join(iss.dir, serverCertFile)
	keyPath := filepath.Join(iss.dir, serverKeyFile)
	if _, err := readKey(keyPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("server key: %w", err) // loose permissions, say
	}
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err == nil && iss.good(pair.Leaf) {
		iss.cert = &pair
		return nil
	}
	return iss.issue()
}

// good reports whether a certificate is signed by our CA, covers every
// host and is not about to expire.
func (iss *issuer) good(leaf *x509.Certificate) bool {
	now := iss.now()
	if leaf == nil || !now.Add(renewBefore).Before(leaf.NotAfter) {
		return false
	}
	roots := x509.NewCertPool()
	roots.AddCert(iss.ca)
	opts := x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if _, err := leaf.Verify(opts); err != nil {
		return false
	}
	for _, h := range iss.names.all {
		if leaf.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

// issue creates and stores a new server key and certificate.
func (iss *issuer) issue() error {
	key, err := newKey()
	if err != nil {
		return fmt.Errorf("generate server key: %w", err)
	}
	der, err := newServerCert(key, iss.ca, iss.caKey, iss.names, iss.now())
	if err != nil {
		return fmt.Errorf("issue server certificate: %w", err)
	}
	pemKey, err := pki.KeyPEM(key)
	if err != nil {
		return err
	}
	// Key first: a crash between the writes leaves a pair that does not
	// match, which the next start replaces.
	if err := writeFileAtomic(filepath.Join(iss.dir, serverKeyFile), pemKey, 0o600); err != nil {
		return fmt.Errorf("write server key: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(iss.dir, serverCertFile), pki.CertPEM(der), 0o644); err != nil {
		return fmt.Errorf("write server certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	iss.cert = &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	return nil
}

// certificate is the tls.Config's GetCertificate: it renews the server
// certificate when it nears expiry, and keeps serving the old one while it
// is valid if renewal fails.
func (iss *issuer) certificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	now := iss.now()
	if now.Add(renewBefore).Before(iss.cert.Leaf.NotAfter) {
		return iss.cert, nil
	}
	if err := iss.issue(); err != nil && !now.Before(iss.cert.Leaf.NotAfter) {
		return nil, fmt.Errorf("renew server certificate: %w", err)
	}
	return iss.cert, nil
}
