package api

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestEnsureTLSCreatesFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cairn-data")
	if _, err := EnsureTLS(dir, []string{"backup.example.com", "192.0.2.7", "0.0.0.0:8443"}); err != nil {
		t.Fatal(err)
	}
	perms := map[string]os.FileMode{"ca.pem": 0o644, "ca.key": 0o600, "server.pem": 0o644, "server.key": 0o600}
	for name, want := range perms {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s mode %04o, want %04o", name, got, want)
		}
	}
	ca, err := readCert(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	caKey, err := readKey(filepath.Join(dir, "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	if !ca.IsCA || caKey.Curve != elliptic.P256() || !caKey.PublicKey.Equal(ca.PublicKey) {
		t.Error("ca.pem/ca.key are not a P-256 CA pair")
	}
	if life := ca.NotAfter.Sub(ca.NotBefore); life < 9*365*24*time.Hour {
		t.Errorf("CA valid for %v, want about ten years", life)
	}
	leaf, err := readCert(filepath.Join(dir, "server.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Errorf("server key is %T, want ECDSA", leaf.PublicKey)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, host := range []string{"localhost", "127.0.0.1", "::1", "backup.example.com", "192.0.2.7"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: roots}); err != nil {
			t.Errorf("server certificate does not verify for %s: %v", host, err)
		}
	}
	for _, ip := range leaf.IPAddresses {
		if ip.IsUnspecified() {
			t.Errorf("server certificate names the wildcard address %v", ip)
		}
	}
}

func TestEnsureTLSReusesAndRenews(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	if _, err := ensureTLS(dir, nil, clock); err != nil {
		t.Fatal(err)
	}
	ca1 := readFile(t, filepath.Join(dir, "ca.pem"))
	srv1 := readFile(t, filepath.Join(dir, "server.pem"))

	now = now.Add(300 * 24 * time.Hour)
	if _, err := ensureTLS(dir, nil, clock); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, filepath.Join(dir, "server.pem")), srv1) {
		t.Error("server certificate replaced while it had two months left")
	}

	now = now.Add(40 * 24 * time.Hour) // 25 days before expiry
	cfg, err := ensureTLS(dir, nil, clock)
	if err != nil {
		t.Fatal(err)
	}
	srv2 := readFile(t, filepath.Join(dir, "server.pem"))
	if bytes.Equal(srv2, srv1) {
		t.Error("server certificate not renewed 25 days before expiry")
	}
	if !bytes.Equal(readFile(t, filepath.Join(dir, "ca.pem")), ca1) {
		t.Error("CA replaced on a later start")
	}

	// A running server renews in place.
	now = now.Add(340 * 24 * time.Hour)
	cert, err := cfg.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if !now.Add(renewBefore).Before(cert.Leaf.NotAfter) {
		t.Error("GetCertificate served a certificate about to expire")
	}
	if bytes.Equal(readFile(t, filepath.Join(dir, "server.pem")), srv2) {
		t.Error("renewal in place did not store the new certificate")
	}

	// New hosts get a new certificate from the same CA.
	if _, err := ensureTLS(dir, []string{"nas.example.net", "[2001:db8::1]:8443"}, clock); err != nil {
		t.Fatal(err)
	}
	leaf, err := readCert(filepath.Join(dir, "server.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if leaf.VerifyHostname("nas.example.net") != nil || leaf.VerifyHostname("2001:db8::1") != nil {
		t.Error("server certificate not reissued for new hosts")
	}
}

func TestEnsureTLSRefuses(t *testing.T) {
	t.Run("CA key lost", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := EnsureTLS(dir, nil); err != nil {
			t.Fatal(err)
		}
		os.Remove(filepath.Join(dir, "ca.key"))
		_, err := EnsureTLS(dir, nil)
		if err == nil || !strings.Contains(err.Error(), "refusing to replace the CA") {
			t.Errorf("err = %v, want a refusal to replace the CA", err)
		}
	})
	t.Run("readable CA key", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := EnsureTLS(dir, nil); err != nil {
			t.Fatal(err)
		}
		os.Chmod(filepath.Join(dir, "ca.key"), 0o644)
		if _, err := EnsureTLS(dir, nil); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("err = %v, want a complaint about the key's mode", err)
		}
	})
	t.Run("bad host", func(t *testing.T) {
		if _, err := EnsureTLS(t.TempDir(), []string{"not a host"}); err == nil {
			t.Error("accepted a host name with spaces")
		}
	})
}

// TestTLSHandshake serves with the configuration and connects with a
// client that trusts only ca.pem: TLS 1.3 is chosen, TLS 1.1 refused.
func TestTLSHandshake(t *testing.T) {
	dir := t.TempDir()
	cfg, err := EnsureTLS(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion %s, want TLS 1.2 stated, whatever Go's default", tls.VersionName(cfg.MinVersion))
	}
	// Not httptest: it would add its own certificate to cfg.Certificates,
	// which clients without SNI (any IP address) would then be served.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(nil, Options{}).HTTPServer("", cfg)
	go srv.ServeTLS(ln, "", "")
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(readFile(t, filepath.Join(dir, "ca.pem")))
	addr := ln.Addr().String()

	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("client trusting ca.pem: %v", err)
	}
	if v := conn.ConnectionState().Version; v != tls.VersionTLS13 {
		t.Errorf("negotiated %s, want TLS 1.3", tls.VersionName(v))
	}
	conn.Close()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	resp, err := hc.Get("https://" + addr + "/api/v1/health")
	if err != nil {
		t.Fatalf("GET health over TLS: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("health over TLS: %s", resp.Status)
	}

	conn12, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, MaxVersion: tls.VersionTLS12})
	if err != nil {
		t.Errorf("TLS 1.2 client refused: %v", err)
	} else {
		conn12.Close()
	}
	if c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, MaxVersion: tls.VersionTLS11}); err == nil {
		c.Close()
		t.Error("TLS 1.1 client accepted")
	}
	if c, err := tls.Dial("tcp", addr, &tls.Config{}); err == nil {
		c.Close()
		t.Error("client without the CA accepted the certificate")
	}
}
