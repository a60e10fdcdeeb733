package report

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// receiver is a webhook endpoint that checks the signature as a user's
// receiver would, and answers the statuses it is told to, in order.
func receiver(t *testing.T, secret string, statuses ...int) (*httptest.Server, *atomic.Int32, chan Report) {
	t.Helper()
	var calls atomic.Int32
	got := make(chan Report, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(calls.Add(1))
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "want a JSON POST", http.StatusBadRequest)
			return
		}
		if !hmac.Equal([]byte(r.Header.Get(SignatureHeader)), []byte(Sign([]byte(secret), body))) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if n <= len(statuses) && statuses[n-1] != http.StatusOK {
			w.WriteHeader(statuses[n-1])
			return
		}
		var rep Report
		if err := json.Unmarshal(body, &rep); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		got <- rep
	}))
	t.Cleanup(srv.Close)
	return srv, &calls, got
}

func TestWebhookDeliversSigned(t *testing.T) {
	srv, calls, got := receiver(t, "shared-secret", http.StatusBadGateway, http.StatusServiceUnavailable)
	h, err := ParseWebhookURL(srv.URL + "/hook?token=abc")
	if err != nil {
		t.Fatal(err)
	}
	h.Secret, h.Backoff = []byte("shared-secret"), time.Millisecond
	r := sampleReport(t)
	if err := h.Deliver(context.Background(), r, r.Generated); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 3 {
		t.Errorf("%d calls, want 3 (two 5xx retried)", calls.Load())
	}
	rep := <-got
	if rep.Date != "2026-03-08" || len(rep.Objects) != 4 || rep.Objects[0].Object != "db01" || rep.Totals.Failed != 2 {
		t.Errorf("received %+v", rep)
	}
}

func TestWebhookNoRetryOn4xx(t *testing.T) {
	srv, calls, _ := receiver(t, "right")
	h := Webhook{URL: srv.URL + "/hook?token=very-private", Secret: []byte("wrong-secret"), Backoff: time.Millisecond}
	r := sampleReport(t)
	err := h.Deliver(context.Background(), r, r.Generated)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("err = %v, want the 401", err)
	}
	if calls.Load() != 1 {
		t.Errorf("%d calls, want 1: a 4xx is not retried", calls.Load())
	}
	for _, secret := range []string{"wrong-secret", "very-private"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error shows %q: %v", secret, err)
		}
	}
}

func TestWebhookRetriesNetworkErrors(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	h := Webhook{URL: url, Secret: []byte("s"), Attempts: 3, Backoff: time.Millisecond}
	start := time.Now()
	err := h.Deliver(context.Background(), sampleReport(t), time.Now())
	if err == nil || !strings.Contains(err.Error(), "3 attempts") {
		t.Fatalf("err = %v, want 3 attempts", err)
	}
	if time.Since(start) < 3*time.Millisecond {
		t.Error("no backoff between attempts")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h.Backoff = time.Hour
	if err := h.Deliver(ctx, sampleReport(t), time.Now()); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: err = %v", err)
	}
}

func TestParseWebhookURL(t *testing.T) {
	for _, bad := range []string{"ftp://h/x", "http://", "https://user:pw@h/x", ":"} {
		if _, err := ParseWebhookURL(bad); err == nil {
			t.Errorf("%q accepted", bad)
		} else if strings.Contains(err.Error(), "pw") {
			t.Errorf("error shows the password: %v", err)
		}
	}
	if h, _ := ParseWebhookURL("https://hooks.example.org/a/b?token=x"); h.Name() != "webhook https://hooks.example.org" {
		t.Errorf("Name = %q: path and query may hold tokens", h.Name())
	}
}

func TestWebhookTimeoutRetried(t *testing.T) {
	var calls atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			select { // hang until the client gives up
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()
	defer close(release)
	h := Webhook{URL: srv.URL, Secret: []byte("s"), Timeout: 50 * time.Millisecond, Attempts: 2, Backoff: time.Millisecond}
	if err := h.Deliver(context.Background(), sampleReport(t), time.Now()); err != nil {
		t.Fatalf("second attempt should succeed: %v", err)
	}
	if calls.Load() != 2 {
		t.Errorf("%d calls, want 2", calls.Load())
	}
}
