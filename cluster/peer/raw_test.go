package peer_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/peer"
	"github.com/cairnhq/cairn/cluster/peer/peertest"
	"github.com/cairnhq/cairn/cluster/store"
	"github.com/cairnhq/cairn/cluster/store/storetest"
)

// rawClient speaks to a server with plain net/http, to send what a Client
// never would.
func rawClient(t *testing.T, cfg *tls.Config) *http.Client {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func post(t *testing.T, hc *http.Client, url string, body []byte) (int, string, *http.Response) {
	t.Helper()
	resp, err := hc.Post(url, "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("post %s: %v", url, err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(text), resp
}

func TestServerValidates(t *testing.T) {
	ca := peertest.NewCA(t, "c1")
	mem := store.NewMemory(store.Options{})
	n := peertest.Serve(t, ca, "n1", mem, peer.ServerOptions{MaxBatchIDs: 8})
	hc := rawClient(t, ca.ClientTLS(t, "n2"))
	base := "https://" + n.Addr + "/cairn/v1/"
	mk := storetest.NewMaker(t, 1, 5)
	ch := mk.Chunk(t, 1000)
	frame := func(id chunk.ID, n uint32, b []byte) []byte {
		out := append(id[:], 0, 0, 0, 0)
		binary.BigEndian.PutUint32(out[chunk.IDSize:], n)
		return append(out, b...)
	}

	code, _, resp := post(t, hc, base+"has", make([]byte, 64))
	if code != http.StatusOK || resp.ProtoMajor != 2 || resp.TLS.Version != tls.VersionTLS13 {
		t.Fatalf("has: %d over %s, TLS %x; want 200 over HTTP/2 and TLS 1.3", code, resp.Proto, resp.TLS.Version)
	}
	tests := []struct {
		name, path string
		body       []byte
		code       int
	}{
		{"ids not whole", "has", make([]byte, 33), http.StatusBadRequest},
		{"too many ids", "delete", make([]byte, 9*chunk.IDSize), http.StatusRequestEntityTooLarge},
		{"put header cut", "put", frame(ch.ID, 10, nil)[:20], http.StatusBadRequest},
		{"put length past the end", "put", frame(ch.ID, uint32(len(ch.Sealed)+1), ch.Sealed), http.StatusBadRequest},
		{"put longer than a chunk", "put", frame(ch.ID, chunk.MaxSealed+1, nil), http.StatusBadRequest},
		{"put under the zero id", "put", frame(chunk.Zero, uint32(len(ch.Sealed)), ch.Sealed), http.StatusBadRequest},
		{"put of a corrupt chunk", "put", frame(ch.ID, uint32(len(ch.Sealed)-1), ch.Sealed[:len(ch.Sealed)-1]), http.StatusUnprocessableEntity},
		{"put of garbage", "put", frame(ch.ID, 100, make([]byte, 100)), http.StatusUnprocessableEntity},
		{"unknown operation", "format", nil, http.StatusNotFound},
	}
	for _, tc := range tests {
		if code, text, _ := post(t, hc, base+tc.path, tc.body); code != tc.code {
			t.Errorf("%s: %d %q, want %d", tc.name, code, text, tc.code)
		}
	}
	if has, _ := mem.Has(context.Background(), []chunk.ID{ch.ID, chunk.Zero}); has[0] || has[1] {
		t.Fatal("a refused put stored something")
	}
	if code, _, _ := post(t, hc, base+"put", frame(ch.ID, uint32(len(ch.Sealed)), ch.Sealed)); code != http.StatusOK {
		t.Fatalf("good put: %d", code)
	}

	// An announced body over the limit is refused before it is read.
	c := n.Client(t, "n2", peer.ClientOptions{BatchBytes: 1 << 30})
	big := make([]byte, peer.DefaultMaxBatchBytes)
	_, err := c.PutBatch(context.Background(), []chunk.ID{{1}, {2}}, [][]byte{big, big[:1]})
	if !errors.Is(err, peer.ErrRefused) || !strings.Contains(err.Error(), "413") {
		t.Fatalf("put over the size limit: %v, want ErrRefused (413)", err)
	}
}

func TestServerRefusesNoCertificate(t *testing.T) {
	ca := peertest.NewCA(t, "c1")
	st := &counting{Store: store.NewMemory(store.Options{})}
	n := peertest.Serve(t, ca, "n1", st, peer.ServerOptions{})
	cfg := ca.ClientTLS(t, "n2")
	cfg.Certificates = nil
	// With TLS 1.3 the client learns of the refusal after its side of the
	// handshake, so the error text varies; what matters is that nothing
	// got through.
	if _, err := rawClient(t, cfg).Post("https://"+n.Addr+"/cairn/v1/has", "", nil); err == nil {
		t.Fatal("request without a client certificate got an answer")
	}
	if st.calls.Load() != 0 {
		t.Fatal("request without a client certificate reached the store")
	}
}

func TestServeRefusesLaxTLS(t *testing.T) {
	ca := peertest.NewCA(t, "c1")
	srv := peer.NewServer(store.NewMemory(store.Options{}), peer.ServerOptions{})
	cfg := ca.ServerTLS(t, "n1")
	cfg.ClientAuth = tls.RequestClientCert
	if err := srv.Serve(nil, cfg); err == nil {
		t.Fatal("served with client certificates optional")
	}
	cfg = ca.ServerTLS(t, "n1")
	cfg.MinVersion = tls.VersionTLS11
	if err := srv.Serve(nil, cfg); err == nil {
		t.Fatal("served allowing TLS 1.1")
	}
}

// TestHandlerChecksPeer mounts the server as a handler behind TLS that
// lets clients without a certificate in (as a cluster listener that also
// takes join requests must): the handler itself refuses them.
func TestHandlerChecksPeer(t *testing.T) {
	ca := peertest.NewCA(t, "c1")
	st := &counting{Store: store.NewMemory(store.Options{})}
	cfg := ca.ServerTLS(t, "n1")
	cfg.ClientAuth = tls.VerifyClientCertIfGiven
	cfg.VerifyConnection = nil // node.ServerTLS would refuse them here
	cfg.NextProtos = []string{"h2"}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: peer.NewServer(st, peer.ServerOptions{})}
	go hs.Serve(ln)
	defer hs.Close()
	url := "https://" + ln.Addr().String() + "/cairn/v1/has"

	anon := ca.ClientTLS(t, "n2")
	anon.Certificates = nil
	if code, text, _ := post(t, rawClient(t, anon), url, make([]byte, 32)); code != http.StatusForbidden {
		t.Fatalf("has without a certificate: %d %q, want 403", code, text)
	}
	if code, text, _ := post(t, rawClient(t, ca.ClientTLS(t, "n2")), url, make([]byte, 32)); code != http.StatusOK {
		t.Fatalf("has from a member: %d %q, want 200", code, text)
	}
	if st.calls.Load() != 1 {
		t.Fatalf("store called %d times, want once", st.calls.Load())
	}
}
