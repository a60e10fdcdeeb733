package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/appliance/report"
)

func TestNewReporting(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("sm-Xq7-value\n"), 0o600)
	sec := filepath.Join(dir, "hook")
	os.WriteFile(sec, []byte("hk-Zq9-value"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)

	r, err := newReporting(reportConfig{smtpURL: "smtp://u@127.0.0.1:2525?from=a@example.org&to=b@example.org", smtpPasswordFile: pw,
		webhookURL: "https://hooks.example.org/x", webhookSecretFile: sec, at: "06:30", tz: "Europe/Berlin"})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.to) != 2 || r.hour != 6 || r.minute != 30 || r.zone.String() != "Europe/Berlin" {
		t.Fatalf("reporting %+v", r)
	}
	if s := r.to[0].(report.SMTP); s.Password != "sm-Xq7-value" {
		t.Error("password file not read or not trimmed")
	}
	if h := r.to[1].(report.Webhook); string(h.Secret) != "hk-Zq9-value" {
		t.Error("secret file not read")
	}
	if r, err := newReporting(reportConfig{at: "07:00"}); err != nil || len(r.to) != 0 {
		t.Errorf("no delivery: %v, %d", err, len(r.to))
	}
	for _, c := range []reportConfig{
		{at: "7am"},
		{at: "07:00", tz: "Nowhere/City"},
		{at: "07:00", smtpURL: "smtp://u:inline-secret@h?from=a@b&to=c@d"},
		{at: "07:00", smtpPasswordFile: pw},
		{at: "07:00", webhookURL: "https://h/x"},
		{at: "07:00", webhookURL: "https://h/x", webhookSecretFile: empty},
		{at: "07:00", webhookURL: "https://h/x", webhookSecretFile: filepath.Join(dir, "missing")},
		{at: "07:00", webhookSecretFile: sec},
	} {
		_, err := newReporting(c)
		if err == nil {
			t.Errorf("%+v accepted", c)
			continue
		}
		for _, secret := range []string{"inline-secret", "sm-Xq7-value", "hk-Zq9-value"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error shows a secret: %v", err)
			}
		}
	}
}
