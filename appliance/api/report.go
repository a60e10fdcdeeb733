package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/cairnhq/cairn/appliance/report"
	"github.com/cairnhq/cairn/cluster/meta"
)

// rawBody is a success response that is not JSON, such as an HTML report.
type rawBody struct {
	contentType string
	data        []byte
}

func (s *Server) writeRaw(w http.ResponseWriter, status int, b rawBody) {
	h := w.Header()
	h.Set("Content-Type", b.contentType)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	// The HTML report has inline styles only: nothing to load, nothing to run.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.WriteHeader(status)
	w.Write(b.data)
}

func (s *Server) reports() (report.Catalog, error) {
	if s.reportCat == nil {
		return nil, fmt.Errorf("this appliance serves no reports: %w", meta.ErrNotFound)
	}
	return s.reportCat, nil
}

// dailyReport serves GET /api/v1/reports/daily?date=YYYY-MM-DD&tz=ZONE&format=json|html.
// The date defaults to today in tz, tz to UTC.
func (s *Server) dailyReport(r *http.Request) (int, any, error) {
	cat, err := s.reports()
	if err != nil {
		return 0, nil, err
	}
	q := r.URL.Query()
	loc, err := report.Zone(q.Get("tz"))
	if err != nil {
		return 0, nil, invalidf("tz %q: want an IANA time zone such as Europe/Berlin", q.Get("tz"))
	}
	now := s.now()
	p := report.DayOf(now, loc)
	if d := q.Get("date"); d != "" {
		if p, err = report.Day(d, q.Get("tz")); err != nil {
			return 0, nil, invalidf("date %q: want YYYY-MM-DD", d)
		}
	}
	format := q.Get("format")
	if format != "" && format != "json" && format != "html" {
		return 0, nil, invalidf("format %q: want json or html", format)
	}
	rep, err := report.Build(r.Context(), cat, p, now)
	if err != nil {
		return 0, nil, err
	}
	if format != "html" {
		return http.StatusOK, rep, nil
	}
	var buf bytes.Buffer
	if err := report.HTML(&buf, rep); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, rawBody{contentType: "text/html; charset=utf-8", data: buf.Bytes()}, nil
}

// DailyReport fetches the daily report of date (empty: today) in tz (empty:
// UTC) as format "json" or "html", as the server wrote it.
func (c *Client) DailyReport(ctx context.Context, date, tz, format string) ([]byte, error) {
	q := url.Values{}
	for k, v := range map[string]string{"date": date, "tz": tz, "format": format} {
		if v != "" {
			q.Set(k, v)
		}
	}
	target := c.base.String() + "/api/v1/reports/daily"
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%w to %s: %w", ErrConnect, c.base.Redacted(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return nil, responseError(resp)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	return data, nil
}

// now is the server's clock; tests set Options.Now.
func (s *Server) now() time.Time {
	if s.clock != nil {
		return s.clock()
	}
	return time.Now()
}
