package report

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/meta"
)

// TestDailyReportDelivered is the evidence: a Sender over a real
// catalog delivers the day's report to a local SMTP server (STARTTLS, AUTH)
// and a local webhook receiver that checks the signature, once.
func TestDailyReportDelivered(t *testing.T) {
	ctx := context.Background()
	cat, err := meta.OpenLocal(filepath.Join(t.TempDir(), "catalog.db"), meta.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	berlin := mustZone(t, "Europe/Berlin")
	day := at(t, berlin, "2026-11-21 02:00")
	if err := cat.AddSource(ctx, meta.Source{Name: "nas", Kind: "file", Tenant: "acme", Created: day.AddDate(0, -1, 0)}); err != nil {
		t.Fatal(err)
	}
	for i, obj := range []string{"vm-1", "vm-2"} {
		rp := meta.RestorePoint{ID: "rp-" + obj, Source: "nas", Object: obj, Tenant: "acme", Time: day.Add(time.Duration(i) * time.Hour),
			Consistency: "crash", Job: "job-" + obj, LogicalBytes: 8 << 20, ReadBytes: 8 << 20, StoredBytes: 2 << 20, Duration: 4,
			Disks:       []meta.Disk{{Key: "disk0", Capacity: 8 << 20, BlockSize: 4 << 20, Root: chunk.ID{1}, Levels: 1, Fingerprint: "f", Method: "full"}},
			Fingerprint: "fp", Verify: meta.VerifyState{State: meta.VerifyNone}}
		if err := cat.CommitRestorePoint(ctx, rp); err != nil {
			t.Fatal(err)
		}
		if err := cat.PutJob(ctx, meta.Job{ID: "job-" + obj, Kind: meta.JobBackup, State: meta.JobSucceeded, Source: "nas", Object: obj,
			Created: rp.Time, Started: rp.Time, Finished: rp.Time.Add(4 * time.Second), RestorePoint: rp.ID}); err != nil {
			t.Fatal(err)
		}
	}
	if err := cat.PutJob(ctx, meta.Job{ID: "job-vm-3", Kind: meta.JobBackup, State: meta.JobFailed, Source: "nas", Object: "vm-3",
		Created: day, Started: day, Finished: day.Add(time.Minute), Error: "snapshot: <quiesce> timed out"}); err != nil {
		t.Fatal(err)
	}

	srvTLS, cliTLS := testCert(t)
	mailSrv := startSMTP(t, srvTLS, "cairn", "mail-password")
	mailer, err := ParseSMTPURL("smtp://cairn@" + mailSrv.ln.Addr().String() + "?from=cairn@example.org&to=ops@example.org")
	if err != nil {
		t.Fatal(err)
	}
	mailer.Password, mailer.TLS = "mail-password", cliTLS
	hookSrv, calls, got := receiver(t, "hook-secret")
	hook, err := ParseWebhookURL(hookSrv.URL + "/cairn")
	if err != nil {
		t.Fatal(err)
	}
	hook.Secret = []byte("hook-secret")

	var logs strings.Builder
	now := at(t, berlin, "2026-11-22 07:00")
	s := &Sender{Catalog: cat, Ledger: cat, Leader: func() bool { return true }, Zone: berlin, Hour: 7,
		To: []Deliverer{mailer, hook}, Now: func() time.Time { return now }, Log: slog.New(slog.NewJSONHandler(&logs, nil))}
	if date, err := s.Tick(ctx); date != "2026-11-21" || err != nil {
		t.Fatalf("Tick: %q, %v", date, err)
	}
	if date, _ := s.Tick(ctx); date != "" {
		t.Fatal("sent twice")
	}

	msgs := mailSrv.received()
	if len(msgs) != 1 || !msgs[0].tls || msgs[0].authed != "cairn" {
		t.Fatalf("mail server got %d messages", len(msgs))
	}
	_, text, html := parseMail(t, msgs[0].data)
	for _, want := range []string{"nas/vm-1", "nas/vm-2", "nas/vm-3", "quiesce"} {
		if !strings.Contains(text, want) || !strings.Contains(html, want) {
			t.Errorf("mail lacks %q", want)
		}
	}
	if !strings.Contains(html, "&lt;quiesce&gt;") {
		t.Error("job error not escaped in the HTML part")
	}
	if calls.Load() != 1 {
		t.Fatalf("webhook called %d times", calls.Load())
	}
	rep := <-got
	if rep.Date != "2026-11-21" || rep.Totals.Succeeded != 2 || rep.Totals.Failed != 1 || rep.Totals.NoSuccess != 1 ||
		rep.Objects[0].DedupeRatio == nil || *rep.Objects[0].DedupeRatio != 4 {
		b, _ := json.Marshal(rep)
		t.Errorf("webhook got %s", b)
	}
	j, err := cat.Job(ctx, "report-daily-2026-11-21")
	if err != nil || j.State != meta.JobSucceeded || j.Kind != JobReport {
		t.Errorf("sent-day record: %+v, %v", j, err)
	}
	for _, secret := range []string{"mail-password", "hook-secret"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("logs show %q", secret)
		}
	}
	var line map[string]any
	if err := json.NewDecoder(strings.NewReader(logs.String())).Decode(&line); err != nil || line["msg"] != "daily report sent" {
		t.Errorf("log is not structured JSON: %q", logs.String())
	}
}
