package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/appliance/api"
	"github.com/cairnhq/cairn/appliance/api/apitest"
	"github.com/cairnhq/cairn/appliance/report"
)

// backup runs a backup of source web on the fake service to completion.
func backup(t *testing.T, srv *apitest.Server) {
	t.Helper()
	status, job, _ := call(t, srv, "POST", "/api/v1/backups", srv.Token, `{"source":"web"}`)
	if status != 202 {
		t.Fatalf("backup: %d %v", status, job)
	}
	for range 100 {
		_, j, _ := call(t, srv, "GET", "/api/v1/jobs/"+job["id"].(string), srv.Token, "")
		if j["state"] == "succeeded" {
			return
		}
	}
	t.Fatal("backup did not finish")
}

func get(t *testing.T, srv *apitest.Server, path, token string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestDailyReportEndpoint(t *testing.T) {
	srv := apitest.NewServer(t)
	img := image(t, 1<<20)
	call(t, srv, "POST", "/api/v1/sources", srv.Token, `{"name":"web","kind":"file","config":{"path":"`+img+`"}}`)
	backup(t, srv)

	// The fake's clock starts at 2025-11-01 09:00 UTC.
	c := srv.APIClient(t)
	data, err := c.DailyReport(context.Background(), "2025-11-01", "Europe/Berlin", "")
	if err != nil {
		t.Fatal(err)
	}
	var rep report.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatalf("report does not parse: %v: %s", err, data)
	}
	if rep.Date != "2025-11-01" || rep.TimeZone != "Europe/Berlin" || len(rep.Objects) != 1 ||
		rep.Objects[0].Source != "web" || rep.Objects[0].Result != report.ResultSucceeded || rep.Objects[0].ReadBytes != 1<<20 ||
		rep.Objects[0].StoredBytes != 1<<19 || rep.Totals.Succeeded != 1 {
		t.Errorf("report %s", data)
	}
	data, err = c.DailyReport(context.Background(), "2025-11-02", "", "")
	if err != nil || json.Unmarshal(data, &rep) != nil || len(rep.Objects) != 1 || !rep.Objects[0].NoSuccess || rep.Objects[0].Result != "none" {
		t.Errorf("next day: %s, %v", data, err)
	}

	status, h, body := get(t, srv, "/api/v1/reports/daily?date=2025-11-01&format=html", srv.Token)
	if status != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") || !strings.Contains(body, "web/") ||
		!strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Errorf("html: %d %v %.200s", status, h, body)
	}
	for _, bad := range []string{"?date=2025-13-01", "?tz=Nowhere/Land", "?format=pdf", "?day=1"} {
		if st, eb, _ := call(t, srv, "GET", "/api/v1/reports/daily"+bad, srv.Token, ""); st != 400 || eb["code"] != "invalid" {
			t.Errorf("%s: %d %v", bad, st, eb)
		}
	}
	if st, _, _ := call(t, srv, "GET", "/api/v1/reports/daily", "", ""); st != 401 {
		t.Errorf("no token: %d", st)
	}
}

func metric(t *testing.T, text, name string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		return ""
	}
	return m[1]
}

func TestMetricsEndpoint(t *testing.T) {
	srv := apitest.NewServer(t)
	if st, h, _ := get(t, srv, "/metrics", ""); st != 401 || h.Get("WWW-Authenticate") == "" {
		t.Errorf("/metrics without a token: %d", st)
	}
	img := image(t, 1<<20)
	call(t, srv, "POST", "/api/v1/sources", srv.Token, `{"name":"web","kind":"file","config":{"path":"`+img+`"}}`)
	_, _, before := get(t, srv, "/metrics", srv.Token)
	if v := metric(t, before, `cairn_restore_points{object="disk.img",source="web"}`); v != "" {
		t.Errorf("restore points before any backup: %s", v)
	}
	backup(t, srv)
	st, h, after := get(t, srv, "/metrics", srv.Token)
	if st != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: %d %v", st, h)
	}
	for name, want := range map[string]string{
		`cairn_restore_points{object="disk.img",source="web"}`:                           "1",
		`cairn_jobs{kind="backup",state="succeeded"}`:                                    "1",
		`cairn_backup_read_bytes{object="disk.img",source="web"}`:                        "1.048576e+06",
		`cairn_backup_stored_bytes{object="disk.img",source="web"}`:                      "524288",
		`cairn_last_successful_backup_timestamp_seconds{object="disk.img",source="web"}`: "1.761987602e+09",
		`cairn_scrape_source_up{source="catalog"}`:                                       "1",
	} {
		if got := metric(t, after, name); got != want {
			t.Errorf("%s = %q, want %s", name, got, want)
		}
	}
	backup(t, srv)
	_, _, again := get(t, srv, "/metrics", srv.Token)
	if got := metric(t, again, `cairn_restore_points{object="disk.img",source="web"}`); got != "2" {
		t.Errorf("restore points after a second backup = %q, want 2", got)
	}
	if got := metric(t, again, `cairn_jobs{kind="backup",state="succeeded"}`); got != "2" {
		t.Errorf("succeeded backups = %q, want 2", got)
	}
	if metric(t, again, "go_goroutines") == "" {
		t.Error("no Go runtime metrics")
	}
}

func TestDailyReportDefaultsToToday(t *testing.T) {
	svc := apitest.New(time.Date(2025, 11, 1, 9, 0, 0, 0, time.UTC))
	now := time.Date(2026, 3, 8, 23, 30, 0, 0, time.UTC) // already the 9th in Berlin
	h := api.NewServer(svc, api.Options{Token: "t", Reports: svc.Catalog(), Now: func() time.Time { return now }})
	for tz, want := range map[string]string{"": "2026-03-08", "Europe/Berlin": "2026-03-09"} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/api/v1/reports/daily?tz="+tz, nil)
		req.Header.Set("Authorization", "Bearer t")
		h.ServeHTTP(rec, req)
		var rep report.Report
		if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil || rep.Date != want || !rep.Generated.Equal(now) {
			t.Errorf("tz %q: %d %s, want the report of %s", tz, rec.Code, rec.Body, want)
		}
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/api/v1/reports/daily", nil)
	req.Header.Set("Authorization", "Bearer t")
	api.NewServer(svc, api.Options{Token: "t"}).ServeHTTP(rec, req)
	if rec.Code != 404 {
		t.Errorf("without a report source: %d, want 404", rec.Code)
	}
}
