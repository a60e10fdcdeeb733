package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net"
	"slices"
	"testing"
)

func TestSplitHosts(t *testing.T) {
	dns, ips, err := SplitHosts([]string{"localhost", "127.0.0.1:8443", "[::1]:9", "0.0.0.0", "cairn.example", "127.0.0.1", "localhost", ""})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(dns, []string{"localhost", "cairn.example"}) {
		t.Errorf("dns = %v", dns)
	}
	if len(ips) != 2 || !ips[0].Equal(net.ParseIP("127.0.0.1")) || !ips[1].Equal(net.ParseIP("::1")) {
		t.Errorf("ips = %v", ips)
	}
	for _, bad := range []string{"bad host", "a/b", "näme"} {
		if _, _, err := SplitHosts([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestKeyRoundTrip(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p, err := KeyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseKey(p)
	if err != nil || !got.Equal(key) {
		t.Fatalf("round trip: %v", err)
	}
	for _, bad := range [][]byte{nil, []byte("junk"), CertPEM([]byte{1, 2, 3})} {
		if _, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) accepted", bad)
		}
	}
}
