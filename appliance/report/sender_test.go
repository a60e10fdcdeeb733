package report

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/cluster/meta"
)

type memLedger struct {
	mu   sync.Mutex
	jobs map[string]meta.Job
}

func (l *memLedger) Job(_ context.Context, id string) (meta.Job, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	j, ok := l.jobs[id]
	if !ok {
		return meta.Job{}, fmt.Errorf("job %s: %w", id, meta.ErrNotFound)
	}
	return j, nil
}

func (l *memLedger) PutJob(_ context.Context, j meta.Job) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.jobs[j.ID] = j
	return nil
}

type recorder struct {
	dates []string
	err   error
}

func (r *recorder) Name() string { return "recorder" }
func (r *recorder) Deliver(_ context.Context, rep Report, _ time.Time) error {
	r.dates = append(r.dates, rep.Date)
	return r.err
}

func TestSenderOncePerDayAcrossLeaders(t *testing.T) {
	_, points, jobs := fixture(t)
	ny := mustZone(t, "America/New_York")
	now := at(t, ny, "2026-03-09 06:59")
	ledger := &memLedger{jobs: map[string]meta.Job{}}
	rec := &recorder{}
	leader := true
	syncs := 0
	newSender := func() *Sender {
		return &Sender{Catalog: fakeCatalog{points, jobs}, Ledger: ledger, Leader: func() bool { return leader },
			Sync: func(context.Context) error { syncs++; return nil },
			Zone: ny, Hour: 7, To: []Deliverer{rec}, Now: func() time.Time { return now },
			Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	}
	s := newSender()
	ctx := context.Background()
	tick := func(s *Sender, want string) {
		t.Helper()
		got, err := s.Tick(ctx)
		if err != nil || got != want {
			t.Fatalf("at %s: sent %q (%v), want %q", now.Format(time.DateTime), got, err, want)
		}
	}
	tick(s, "") // before 07:00
	now = now.Add(time.Minute)
	leader = false
	tick(s, "") // not the leader
	leader = true
	tick(s, "2026-03-08")
	tick(s, "")
	now = now.Add(5 * time.Hour)
	tick(s, "")
	tick(newSender(), "") // a new leader reads the record
	now = at(t, ny, "2026-03-10 07:30")
	rec.err = errors.New("mail server down")
	if got, err := newSender().Tick(ctx); got != "2026-03-09" || err == nil {
		t.Fatalf("failing delivery: %q, %v", got, err)
	}
	if j := ledger.jobs["report-daily-2026-03-09"]; j.State != meta.JobFailed || j.Error != "mail server down" || j.Kind != JobReport {
		t.Errorf("record of a failed delivery: %+v", j)
	}
	tick(newSender(), "") // not retried every minute
	if syncs != 4 {
		t.Errorf("%d syncs, want 4: one before each read of the ledger, none when memory knows", syncs)
	}
	if fmt.Sprint(rec.dates) != "[2026-03-08 2026-03-09]" {
		t.Errorf("delivered %v", rec.dates)
	}
	if j := ledger.jobs["report-daily-2026-03-08"]; j.State != meta.JobSucceeded || j.Result["date"] != "2026-03-08" {
		t.Errorf("record: %+v", j)
	}
}

func TestParseClock(t *testing.T) {
	if h, m, err := ParseClock("07:05"); h != 7 || m != 5 || err != nil {
		t.Errorf("07:05 = %d:%d %v", h, m, err)
	}
	for _, bad := range []string{"7", "24:00", "07:60", ""} {
		if _, _, err := ParseClock(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
