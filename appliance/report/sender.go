package report

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/cairnhq/cairn/cluster/meta"
)

// Deliverer sends a report somewhere; SMTP and Webhook are ones.
type Deliverer interface {
	Name() string
	Deliver(ctx context.Context, r Report, now time.Time) error
}

// Ledger records which days were sent, in the replicated catalog so that a
// new leader knows; *meta.Replicated is one.
type Ledger interface {
	Job(ctx context.Context, id string) (meta.Job, error)
	PutJob(ctx context.Context, j meta.Job) error
}

// JobReport is the kind of the job record a Sender leaves per sent day.
const JobReport = "report"

// Sender sends the previous day's report once a day at a set time, on the
// Raft leader only.
//
// Once: the sent day is remembered in memory and, with a Ledger, as a job
// record "report-daily-DATE" written after the delivery. A new leader reads
// it and does not send again; only if the leader changes between delivering
// and writing that record is the report sent twice. A delivery that fails is
// recorded as a failed job and not retried until the next day: the webhook
// retries on its own, and a broken mail server would otherwise be hit every
// minute.
type Sender struct {
	Catalog Catalog
	Ledger  Ledger // may be nil: then only memory remembers the sent day
	Leader  func() bool
	// Sync, if set, waits until this node has applied every earlier entry
	// of the replicated log, so that a leader elected a moment ago sees the
	// record its predecessor wrote.
	Sync func(ctx context.Context) error
	Zone *time.Location
	// Hour and Minute of the send time in Zone.
	Hour, Minute int
	To           []Deliverer
	Now          func() time.Time
	Log          *slog.Logger
	last         string
}

// ParseClock reads "HH:MM" (24 h).
func ParseClock(s string) (hour, minute int, err error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, 0, fmt.Errorf("time %q: want HH:MM: %w", s, ErrInvalid)
	}
	return t.Hour(), t.Minute(), nil
}

// Run checks every minute until ctx ends.
func (s *Sender) Run(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		if _, err := s.Tick(ctx); err != nil && ctx.Err() == nil {
			s.Log.Error("daily report", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Tick sends the report of the day before today (in Zone) if this node
// leads, the send time has passed and that day was not sent yet. It returns
// the date sent, or "".
func (s *Sender) Tick(ctx context.Context) (string, error) {
	if len(s.To) == 0 || !s.Leader() {
		return "", nil
	}
	now := s.Now()
	local := now.In(s.Zone)
	due := time.Date(local.Year(), local.Month(), local.Day(), s.Hour, s.Minute, 0, 0, s.Zone)
	if local.Before(due) {
		return "", nil
	}
	day := period(time.Date(local.Year(), local.Month(), local.Day()-1, 0, 0, 0, 0, s.Zone), s.Zone)
	if s.last == day.Date {
		return "", nil
	}
	id := "report-daily-" + day.Date
	if s.Ledger != nil {
		if s.Sync != nil {
			if err := s.Sync(ctx); err != nil {
				return "", fmt.Errorf("catch up with the log: %w", err)
			}
		}
		_, err := s.Ledger.Job(ctx, id)
		if err == nil {
			s.last = day.Date
			s.Log.Info("daily report already sent", "date", day.Date)
			return "", nil
		}
		if !errors.Is(err, meta.ErrNotFound) {
			return "", fmt.Errorf("read sent days: %w", err)
		}
	}
	r, err := Build(ctx, s.Catalog, day, now)
	if err != nil {
		return "", err
	}
	var names []string
	var errs []error
	for _, d := range s.To {
		names = append(names, d.Name())
		if err := d.Deliver(ctx, r, now); err != nil {
			errs = append(errs, err)
			continue
		}
		s.Log.Info("daily report sent", "date", day.Date, "to", d.Name(), "objects", r.Totals.Objects, "failed", r.Totals.Failed, "no_success", r.Totals.NoSuccess)
	}
	s.last = day.Date
	sendErr := errors.Join(errs...)
	if s.Ledger != nil {
		j := meta.Job{ID: id, Kind: JobReport, State: meta.JobSucceeded, Created: now, Started: now, Finished: s.Now(),
			Result: map[string]string{"date": day.Date, "to": strings.Join(names, ", ")}}
		if sendErr != nil {
			j.State, j.Error = meta.JobFailed, sendErr.Error()
		}
		if err := s.Ledger.PutJob(ctx, j); err != nil {
			return day.Date, errors.Join(sendErr, fmt.Errorf("record sent day: %w", err))
		}
	}
	return day.Date, sendErr
}
