package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cairnhq/cairn/cluster/meta"
	"github.com/cairnhq/cairn/plugins"
)

// ErrConnect marks a request that never got an HTTP answer: the server
// could not be reached, or TLS failed (an unknown CA, a wrong name).
var ErrConnect = errors.New("cannot connect")

// Client talks to the API over HTTPS. It implements Service, with the same
// error kinds: a server error comes back as *Error, which errors.Is matches
// against meta.ErrNotFound and the other sentinels.
type Client struct {
	base  *url.URL
	token string
	hc    *http.Client
}

var _ Service = (*Client)(nil)

// NewClient returns a client for the server at baseURL (https only). caPEM
// holds the CA certificates to trust; empty means the system's roots.
func NewClient(baseURL string, caPEM []byte, token string) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("server URL %q: %w", baseURL, err)
	}
	if u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: want https://HOST[:PORT]", baseURL)
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(caPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, errors.New("CA file holds no PEM certificate")
		}
		tlsCfg.RootCAs = pool
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	u.Path = strings.TrimSuffix(u.Path, "/")
	return &Client{
		base:  u,
		token: token,
		hc:    &http.Client{Transport: tr, Timeout: 2 * time.Minute},
	}, nil
}

// do sends one request and decodes a 2xx answer into out.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	target := c.base.String() + "/api/v1" + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%w to %s: %w", ErrConnect, c.base.Redacted(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return responseError(resp)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", method, path, err)
	}
	return nil
}

// responseError reads an error body into *Error, or makes one up from the
// status when the body is not ours.
func responseError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var eb errorBody
	if json.Unmarshal(data, &eb) == nil && eb.Error != "" && eb.Code != "" {
		return &Error{Status: resp.StatusCode, Code: eb.Code, Message: eb.Error}
	}
	msg := http.StatusText(resp.StatusCode)
	if s := oneLine(string(data)); s != "" {
		msg += ": " + truncate(s, 200)
	}
	return &Error{Status: resp.StatusCode, Code: codeForStatus(resp.StatusCode), Message: "server answered " + strconv.Itoa(resp.StatusCode) + " " + msg}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func esc(s string) string { return url.PathEscape(s) }

// Health checks that the server answers.
func (c *Client) Health(ctx context.Context) error {
	var h health
	return c.do(ctx, http.MethodGet, "/health", nil, nil, &h)
}

// OpenAPI fetches the server's OpenAPI document.
func (c *Client) OpenAPI(ctx context.Context) (json.RawMessage, error) {
	var doc json.RawMessage
	err := c.do(ctx, http.MethodGet, "/openapi.json", nil, nil, &doc)
	return doc, err
}

// AddSource adds a source.
func (c *Client) AddSource(ctx context.Context, s AddSourceRequest) (meta.Source, error) {
	var out meta.Source
	err := c.do(ctx, http.MethodPost, "/sources", nil, s, &out)
	return out, err
}

// Sources lists the sources.
func (c *Client) Sources(ctx context.Context) ([]meta.Source, error) {
	var out sourceList
	err := c.do(ctx, http.MethodGet, "/sources", nil, nil, &out)
	return out.Sources, err
}

// Objects lists what a source can protect.
func (c *Client) Objects(ctx context.Context, source string) ([]plugins.Object, error) {
	var out objectList
	err := c.do(ctx, http.MethodGet, "/sources/"+esc(source)+"/objects", nil, nil, &out)
	return out.Objects, err
}

// StartBackup starts a backup job.
func (c *Client) StartBackup(ctx context.Context, req BackupRequest) (meta.Job, error) {
	var out meta.Job
	err := c.do(ctx, http.MethodPost, "/backups", nil, req, &out)
	return out, err
}

// StartRestore starts a restore job.
func (c *Client) StartRestore(ctx context.Context, req RestoreRequest) (meta.Job, error) {
	var out meta.Job
	err := c.do(ctx, http.MethodPost, "/restore-points/"+esc(req.RestorePoint)+"/restore", nil, req, &out)
	return out, err
}

// StartVerify starts a verify job.
func (c *Client) StartVerify(ctx context.Context, restorePoint string) (meta.Job, error) {
	var out meta.Job
	err := c.do(ctx, http.MethodPost, "/restore-points/"+esc(restorePoint)+"/verify", nil, nil, &out)
	return out, err
}

// RestorePoints lists restore points, filtered by source and object.
func (c *Client) RestorePoints(ctx context.Context, f meta.Filter) ([]meta.RestorePoint, error) {
	q := url.Values{}
	if f.Source != "" {
		q.Set("source", f.Source)
	}
	if f.Object != "" {
		q.Set("object", f.Object)
	}
	var out restorePointList
	err := c.do(ctx, http.MethodGet, "/restore-points", q, nil, &out)
	return out.RestorePoints, err
}

// RestorePoint returns one restore point.
func (c *Client) RestorePoint(ctx context.Context, id string) (meta.RestorePoint, error) {
	var out meta.RestorePoint
	err := c.do(ctx, http.MethodGet, "/restore-points/"+esc(id), nil, nil, &out)
	return out, err
}

// Jobs lists at most limit jobs, newest first; limit <= 0 means the
// server's default.
func (c *Client) Jobs(ctx context.Context, limit int) ([]meta.Job, error) {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out jobList
	err := c.do(ctx, http.MethodGet, "/jobs", q, nil, &out)
	return out.Jobs, err
}

// Job returns one job.
func (c *Client) Job(ctx context.Context, id string) (meta.Job, error) {
	var out meta.Job
	err := c.do(ctx, http.MethodGet, "/jobs/"+esc(id), nil, nil, &out)
	return out, err
}

// CancelJob asks a job to stop.
func (c *Client) CancelJob(ctx context.Context, id string) (meta.Job, error) {
	var out meta.Job
	err := c.do(ctx, http.MethodPost, "/jobs/"+esc(id)+"/cancel", nil, nil, &out)
	return out, err
}
