package report

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the request
// body under the shared secret.
const SignatureHeader = "X-Cairn-Signature"

// Webhook delivers reports as a JSON POST. The body is the report as JSON
// writes it; the receiver checks SignatureHeader with the shared secret.
// Network errors and 5xx answers are retried with doubling backoff; 4xx
// answers are not (the request itself is wrong).
type Webhook struct {
	URL string
	// Secret keys the signature; it never appears in logs or errors.
	Secret []byte
	// Client sends the requests; nil means a client with Timeout.
	Client *http.Client
	// Timeout bounds each attempt; 0 means 30 s.
	Timeout time.Duration
	// Attempts is how many tries at most; 0 means 4.
	Attempts int
	// Backoff is the wait before the second try, doubling after; 0 means 2 s.
	Backoff time.Duration
}

// ParseWebhookURL checks an http or https URL for a webhook.
func ParseWebhookURL(raw string) (Webhook, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Webhook{}, fmt.Errorf("webhook url: want http(s)://host/path: %w", ErrInvalid)
	}
	if u.User != nil {
		return Webhook{}, fmt.Errorf("webhook url: credentials in the URL are refused; use the secret file: %w", ErrInvalid)
	}
	return Webhook{URL: u.String()}, nil
}

// Sign returns the SignatureHeader value of body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Name says where reports go, for logs: scheme and host only, since a path
// or query may hold a token.
func (h Webhook) Name() string {
	u, err := url.Parse(h.URL)
	if err != nil {
		return "webhook"
	}
	return "webhook " + u.Scheme + "://" + u.Host
}

// Deliver posts r.
func (h Webhook) Deliver(ctx context.Context, r Report, _ time.Time) error {
	var body bytes.Buffer
	if err := JSON(&body, r); err != nil {
		return err
	}
	if err := h.post(ctx, body.Bytes()); err != nil {
		return fmt.Errorf("post report to %s: %w", h.Name(), err)
	}
	return nil
}

// errPermanent marks an answer that a retry would not change.
var errPermanent = errors.New("refused")

func (h Webhook) post(ctx context.Context, body []byte) error {
	timeout, attempts, backoff := h.Timeout, h.Attempts, h.Backoff
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	if attempts <= 0 {
		attempts = 4
	}
	if backoff <= 0 {
		backoff = 2 * time.Second
	}
	client := h.Client
	if client == nil {
		client = &http.Client{Timeout: timeout}
	}
	sig := Sign(h.Secret, body)
	var err error
	for i := range attempts {
		if i > 0 {
			t := time.NewTimer(backoff << (i - 1))
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("%w (after: %w)", ctx.Err(), err)
			case <-t.C:
			}
		}
		err = h.once(ctx, client, timeout, body, sig)
		if err == nil || errors.Is(err, errPermanent) {
			return err
		}
	}
	return fmt.Errorf("%d attempts: %w", attempts, err)
}

func (h Webhook) once(ctx context.Context, client *http.Client, timeout time.Duration, body []byte, sig string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("request: %w", errPermanent)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "cairn-report")
	req.Header.Set(SignatureHeader, sig)
	resp, err := client.Do(req)
	if err != nil {
		// url.Error repeats the URL, which may hold a token: keep its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode >= 500:
		return fmt.Errorf("status %s", resp.Status)
	default:
		return fmt.Errorf("status %s: %w", resp.Status, errPermanent)
	}
}
