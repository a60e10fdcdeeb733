package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"github.com/cairnhq/cairn/appliance/report"
	"github.com/cairnhq/cairn/cluster/meta"
)

// reportConfig is the daily report's delivery and the metrics' access.
type reportConfig struct {
	smtpURL, smtpPasswordFile     string
	webhookURL, webhookSecretFile string
	at, tz                        string
	metricsPublic                 bool
}

func reportFlags(f *pflag.FlagSet, c *reportConfig) {
	f.StringVar(&c.smtpURL, "report-smtp", "", "mail the daily report: smtp://[user@]host[:port]?from=ADDR&to=ADDR[,ADDR] (smtps:// for implicit TLS); STARTTLS is used when offered")
	f.StringVar(&c.smtpPasswordFile, "report-smtp-password-file", "", "file holding the SMTP password (sent only over TLS)")
	f.StringVar(&c.webhookURL, "report-webhook", "", "POST the daily report as JSON to this http(s) URL, signed in X-Cairn-Signature")
	f.StringVar(&c.webhookSecretFile, "report-webhook-secret-file", "", "file holding the webhook's HMAC-SHA256 secret (required with --report-webhook)")
	f.StringVar(&c.at, "report-time", "07:00", "when the leader sends the previous day's report, HH:MM in --report-tz")
	f.StringVar(&c.tz, "report-tz", "", "IANA time zone of --report-time and of the report's day (default: the system's local zone)")
	f.BoolVar(&c.metricsPublic, "metrics-public", false, "serve /metrics without the API token")
}

// reporting is a checked reportConfig.
type reporting struct {
	to           []report.Deliverer
	zone         *time.Location
	hour, minute int
}

// newReporting checks the flags and reads the secret files. Errors name
// the files, never their contents.
func newReporting(c reportConfig) (reporting, error) {
	var r reporting
	var err error
	if r.hour, r.minute, err = report.ParseClock(c.at); err != nil {
		return r, usageError{fmt.Errorf("--report-time: %w", err)}
	}
	r.zone = time.Local
	if c.tz != "" {
		if r.zone, err = report.Zone(c.tz); err != nil {
			return r, usageError{fmt.Errorf("--report-tz: %w", err)}
		}
	}
	if c.smtpURL != "" {
		s, err := report.ParseSMTPURL(c.smtpURL)
		if err != nil {
			return r, usageError{fmt.Errorf("--report-smtp: %w", err)}
		}
		if c.smtpPasswordFile != "" {
			pw, err := secretFile(c.smtpPasswordFile)
			if err != nil {
				return r, err
			}
			s.Password = string(pw)
		}
		// Mail servers check the EHLO name; "localhost" is often refused.
		if h, err := os.Hostname(); err == nil {
			s.Hello = h
		}
		r.to = append(r.to, s)
	} else if c.smtpPasswordFile != "" {
		return r, usageError{fmt.Errorf("--report-smtp-password-file needs --report-smtp")}
	}
	switch {
	case c.webhookURL != "":
		h, err := report.ParseWebhookURL(c.webhookURL)
		if err != nil {
			return r, usageError{fmt.Errorf("--report-webhook: %w", err)}
		}
		if c.webhookSecretFile == "" {
			return r, usageError{fmt.Errorf("--report-webhook needs --report-webhook-secret-file: receivers check the signature")}
		}
		if h.Secret, err = secretFile(c.webhookSecretFile); err != nil {
			return r, err
		}
		r.to = append(r.to, h)
	case c.webhookSecretFile != "":
		return r, usageError{fmt.Errorf("--report-webhook-secret-file needs --report-webhook")}
	}
	return r, nil
}

func secretFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read secret file: %w", err)
	}
	b = bytes.TrimRight(b, "\r\n")
	if len(b) == 0 {
		return nil, fmt.Errorf("secret file %s is empty", path)
	}
	return b, nil
}

// start runs the daily sender, when a delivery is configured, until the
// returned stop is called.
func (r reporting) start(ctx context.Context, catalog *meta.Replicated, log *slog.Logger) (stop func()) {
	if len(r.to) == 0 {
		return func() {}
	}
	catchUp := func(ctx context.Context) error { _, err := catalog.WaitLeader(ctx); return err }
	s := &report.Sender{Catalog: catalog, Ledger: catalog, Leader: catalog.IsLeader, Sync: catchUp, Zone: r.zone,
		Hour: r.hour, Minute: r.minute, To: r.to, Now: time.Now, Log: log}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { s.Run(ctx) })
	var names []any
	for _, d := range r.to {
		names = append(names, d.Name())
	}
	log.Info("daily report", "at", fmt.Sprintf("%02d:%02d", r.hour, r.minute), "zone", r.zone.String(), "to", fmt.Sprint(names...))
	return func() { cancel(); wg.Wait() }
}
