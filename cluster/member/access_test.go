package member

import (
	"context"
	"crypto/tls"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestOutsidersRefused: without a member certificate nothing but the join
// route answers, and a Raft stream is cut.
func TestOutsidersRefused(t *testing.T) {
	m := start(t, filepath.Join(t.TempDir(), "n1"), "", "")
	defer m.Close()
	if _, err := m.Catalog().WaitLeader(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for _, path := range []string{"/cairn/meta/v1/apply", "/cairn/member/v1/status"} {
		method := http.MethodGet
		if strings.Contains(path, "apply") {
			method = http.MethodPost
		}
		req, _ := http.NewRequest(method, "https://"+m.Address()+path, strings.NewReader("\x01"))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s without a member certificate: %s, want 403", path, resp.Status)
		}
	}
	conn, err := tls.Dial("tcp", m.Address(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{raftProto}})
	if err == nil {
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil {
		t.Fatal("a raft stream without a member certificate stayed open")
	}
}
