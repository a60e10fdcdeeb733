package e2e

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// mailbox is a plain SMTP server on loopback that keeps each message.
type mailbox struct {
	ln   net.Listener
	mu   sync.Mutex
	msgs []string
}

func startMailbox(t *testing.T) *mailbox {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	m := &mailbox{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go m.serve(c)
		}
	}()
	return m
}

func (m *mailbox) serve(c net.Conn) {
	defer c.Close()
	rd := bufio.NewReader(c)
	io.WriteString(c, "220 mailbox\r\n")
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			return
		}
		switch verb, _, _ := strings.Cut(strings.TrimSpace(line), " "); strings.ToUpper(verb) {
		case "EHLO", "HELO":
			io.WriteString(c, "250 mailbox\r\n")
		case "DATA":
			io.WriteString(c, "354 go on\r\n")
			var b strings.Builder
			for {
				l, err := rd.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(l)
			}
			m.mu.Lock()
			m.msgs = append(m.msgs, b.String())
			m.mu.Unlock()
			io.WriteString(c, "250 queued\r\n")
		case "QUIT":
			io.WriteString(c, "221 bye\r\n")
			return
		default:
			io.WriteString(c, "250 ok\r\n")
		}
	}
}

func (m *mailbox) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.msgs)
}

// TestDailyReportDelivery runs cairnd with both deliveries and a send time
// already passed: the previous day's report reaches the mail server and the
// webhook receiver once, a restarted daemon does not send it again, and
// /metrics and cairn report daily show today's backup.
func TestDailyReportDelivery(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "hook.secret")
	if err := os.WriteFile(secret, []byte("e2e-hook-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var hooks []map[string]any
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mac := hmac.New(sha256.New, []byte("e2e-hook-secret"))
		mac.Write(body)
		if !hmac.Equal([]byte(r.Header.Get("X-Cairn-Signature")), []byte("sha256="+hex.EncodeToString(mac.Sum(nil)))) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var rep map[string]any
		if err := json.Unmarshal(body, &rep); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		hooks = append(hooks, rep)
		mu.Unlock()
	}))
	defer hook.Close()
	box := startMailbox(t)
	hooked := func() int { mu.Lock(); defer mu.Unlock(); return len(hooks) }

	data := filepath.Join(dir, "data")
	flags := []string{"--report-webhook", hook.URL + "/cairn", "--report-webhook-secret-file", secret,
		"--report-smtp", "smtp://" + box.ln.Addr().String() + "?from=cairn@example.org&to=ops@example.org",
		"--report-time", "00:00", "--report-tz", "UTC"}
	d := startDaemon(t, data, "", flags...)
	waitFor(t, "the report delivered to both", 30*time.Second, func() bool { return hooked() == 1 && box.count() == 1 })
	mu.Lock()
	generated, _ := time.Parse(time.RFC3339Nano, hooks[0]["generated"].(string))
	yesterday := generated.UTC().AddDate(0, 0, -1).Format(time.DateOnly)
	if hooks[0]["date"] != yesterday || generated.IsZero() {
		t.Errorf("webhook got the report of %v made at %v, want the day before", hooks[0]["date"], hooks[0]["generated"])
	}
	mu.Unlock()
	box.mu.Lock()
	msg := box.msgs[0]
	box.mu.Unlock()
	if !strings.Contains(msg, "multipart/alternative") || !strings.Contains(msg, "Cairn daily report "+yesterday) {
		t.Errorf("mail:\n%.600s", msg)
	}
	waitFor(t, "the sent day recorded", 10*time.Second, func() bool {
		out, _, _ := d.cairn("job", "list", "-o", "json")
		return strings.Contains(out, `"report-daily-`+yesterday+`"`)
	})

	img := filepath.Join(dir, "disk.img")
	randomImage(t, img, 4<<20)
	d.ok("source", "add", "file", "disk", "--path", img)
	d.backup("disk")
	out := d.ok("report", "daily", "--tz", "UTC")
	if !strings.Contains(out, "disk/disk.img") || !strings.Contains(out, "succeeded") {
		t.Errorf("cairn report daily:\n%s", out)
	}
	req, _ := http.NewRequest("GET", "https://"+d.addr+"/metrics", nil)
	token, _ := os.ReadFile(filepath.Join(data, "admin.token"))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	ca, _ := os.ReadFile(filepath.Join(data, "ca.pem"))
	resp, err := httpsClient(t, ca).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `cairn_restore_points{object="disk.img",source="disk"} 1`) ||
		!strings.Contains(string(metrics), "cairn_cluster_is_leader 1") {
		t.Errorf("/metrics:\n%s", metrics)
	}

	d.kill()
	d = startDaemon(t, data, d.addr, flags...)
	waitFor(t, "the restarted sender to find the sent day", 30*time.Second, func() bool {
		return strings.Contains(d.logText(), "daily report already sent")
	})
	if hooked() != 1 || box.count() != 1 {
		t.Errorf("after a restart: %d webhook calls and %d mails, want the report sent once", hooked(), box.count())
	}
}

// httpsClient trusts the appliance's CA.
func httpsClient(t *testing.T, caPEM []byte) *http.Client {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.pem holds no certificate")
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}
