package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestReportDaily(t *testing.T) {
	srv := withSource(t)
	ok(t, srv, "backup", "run", "web", "--wait")

	r := ok(t, srv, "report", "daily", "--date", "2025-11-01")
	if !strings.Contains(r.stdout, "Cairn daily report for 2025-11-01 (UTC)") || !strings.Contains(r.stdout, "web/disk.img") ||
		!strings.Contains(r.stdout, "succeeded") || !strings.Contains(r.stdout, "512.0 KiB") {
		t.Errorf("report daily:\n%s", r.stdout)
	}
	r = ok(t, srv, "report", "daily", "--date", "2025-11-02", "--tz", "Europe/Berlin", "-o", "json")
	var rep struct {
		TimeZone string `json:"time_zone"`
		Totals   struct {
			NoSuccess int `json:"no_success"`
		} `json:"totals"`
	}
	if !strings.HasPrefix(r.stdout, "{\n  \"date\": \"2025-11-02\"") {
		t.Errorf("report daily -o json not indented:\n%.100s", r.stdout)
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.TimeZone != "Europe/Berlin" || rep.Totals.NoSuccess != 1 {
		t.Errorf("report daily -o json: %+v %v\n%s", rep, err, r.stdout)
	}
	r = ok(t, srv, "report", "daily", "--date", "2025-11-01", "--format", "html")
	if !strings.HasPrefix(r.stdout, "<!DOCTYPE html>") || !strings.Contains(r.stdout, "web/disk.img") {
		t.Errorf("report daily --format html:\n%.300s", r.stdout)
	}
	fails(t, srv, exitUsage, "--format", "report", "daily", "--format", "pdf")
	fails(t, srv, exitUsage, "--date", "report", "daily", "--date", "yesterday")
	fails(t, srv, exitUsage, "--tz", "report", "daily", "--tz", "Mars/Base")
}
