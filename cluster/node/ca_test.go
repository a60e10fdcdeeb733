package node

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"testing"
	"time"

	"github.com/cairnhq/cairn/cluster/pki"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func newTestCA(t *testing.T, clusterID string, now time.Time) *CA {
	t.Helper()
	ca, err := NewCA(clusterID, now, rand.Reader)
	if err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	return ca
}

func TestCARoundTrip(t *testing.T) {
	ca := newTestCA(t, "c1", t0)
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadCA(ca.CertPEM(), keyPEM)
	if err != nil {
		t.Fatalf("LoadCA: %v", err)
	}
	if loaded.ClusterID() != "c1" {
		t.Errorf("cluster id %q, want c1", loaded.ClusterID())
	}
	if !bytes.Equal(loaded.CertPEM(), ca.CertPEM()) {
		t.Error("loaded CA has another certificate")
	}
	// A certificate issued by the loaded CA verifies against the original.
	certPEM, _, err := loaded.Issue("n1", []string{"127.0.0.1"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	verify(t, ca, certPEM, t0.Add(time.Hour))

	other := newTestCA(t, "c1", t0)
	otherKey, _ := other.KeyPEM()
	if _, err := LoadCA(ca.CertPEM(), otherKey); err == nil {
		t.Error("LoadCA accepted a key of another CA")
	}
	if _, err := LoadCA(certPEM, keyPEM); err == nil {
		t.Error("LoadCA accepted a node certificate as CA")
	}
}

func verify(t *testing.T, ca *CA, certPEM []byte, at time.Time) *x509.Certificate {
	t.Helper()
	cert, err := parseCert(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Fatalf("verify for usage %v: %v", usage, err)
		}
	}
	return cert
}

func TestIssue(t *testing.T) {
	ca := newTestCA(t, "c1", t0)
	certPEM, keyPEM, err := ca.Issue("n1", []string{"127.0.0.1:7001", "node1.example", "0.0.0.0", "[::1]:7001", "127.0.0.1"}, t0)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	if _, err := pki.ParseKey(keyPEM); err != nil {
		t.Fatalf("node key: %v", err)
	}
	cert := verify(t, ca, certPEM, t0.Add(time.Hour))
	if cert.Subject.CommonName != "n1" {
		t.Errorf("common name %q, want n1", cert.Subject.CommonName)
	}
	if len(cert.URIs) != 1 || cert.URIs[0].String() != "cairn-node://c1/n1" {
		t.Errorf("URIs %v, want [cairn-node://c1/n1]", cert.URIs)
	}
	for _, h := range []string{"127.0.0.1", "::1", "node1.example"} {
		if err := cert.VerifyHostname(h); err != nil {
			t.Errorf("certificate does not cover %s: %v", h, err)
		}
	}
	if len(cert.IPAddresses) != 2 {
		t.Errorf("IP SANs %v, want 127.0.0.1 and ::1 once each, no wildcard", cert.IPAddresses)
	}
	if got := cert.NotAfter.Sub(t0); got != NodeLifetime {
		t.Errorf("lifetime %v, want %v", got, NodeLifetime)
	}

	// Near the end of the CA, a node certificate stops with it.
	late := t0.Add(CALifetime - 24*time.Hour)
	certPEM, _, err = ca.Issue("n2", nil, late)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ = parseCert(certPEM)
	if !cert.NotAfter.Equal(ca.cert.NotAfter) {
		t.Errorf("not after %v, want the CA's %v", cert.NotAfter, ca.cert.NotAfter)
	}
}

func TestIssueRefusesBadInput(t *testing.T) {
	if _, err := NewCA("", t0, rand.Reader); err == nil {
		t.Error("NewCA accepted an empty cluster id")
	}
	if _, err := NewCA("c/1", t0, rand.Reader); err == nil {
		t.Error("NewCA accepted a cluster id with '/'")
	}
	ca := newTestCA(t, "c1", t0)
	for _, id := range []string{"", "N1", "n/1", "n 1"} {
		if _, _, err := ca.Issue(id, nil, t0); err == nil {
			t.Errorf("Issue accepted node id %q", id)
		}
	}
	if _, _, err := ca.Issue("n1", []string{"bad host!"}, t0); err == nil {
		t.Error("Issue accepted host \"bad host!\"")
	}
}
