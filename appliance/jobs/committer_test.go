package jobs_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/appliance/api"
	"github.com/cairnhq/cairn/cluster/meta"
	"github.com/cairnhq/cairn/plugins"
	"github.com/cairnhq/cairn/plugins/file"
)

// ledger is a file plugin kind whose snapshots record, in order, whether
// they were told their restore point was committed and when they closed.
type ledger struct {
	mu     sync.Mutex
	events []string
}

func (l *ledger) add(e string) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *ledger) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.events
	l.events = nil
	return e
}

func (l *ledger) kind() plugins.Kind {
	return plugins.Kind{Name: "ledger", NewSource: func(_ context.Context, cfg plugins.SourceConfig) (plugins.Source, error) {
		return ledgerSource{file.New(cfg.Settings["path"]), l}, nil
	}}
}

type ledgerSource struct {
	*file.Source
	l *ledger
}

func (s ledgerSource) Open(ctx context.Context, object string, opts plugins.OpenOptions) (plugins.Snapshot, error) {
	snap, err := s.Source.Open(ctx, object, opts)
	if err != nil {
		return nil, err
	}
	s.l.add("opened")
	return ledgerSnapshot{snap, s.l}, nil
}

type ledgerSnapshot struct {
	plugins.Snapshot
	l *ledger
}

func (s ledgerSnapshot) Committed(context.Context) error { s.l.add("committed"); return nil }

func (s ledgerSnapshot) Close(ctx context.Context) error {
	s.l.add("closed")
	return s.Snapshot.Close(ctx)
}

// TestCommitterTold checks a snapshot hears Committed after its restore
// point is in the catalog and before Close, and never for a failed backup.
func TestCommitterTold(t *testing.T) {
	ctx := context.Background()
	l := &ledger{}
	f := newFixture(t, l.kind())
	img := f.image(t, "a.img", 8<<20)
	if _, err := f.m.AddSource(ctx, api.AddSourceRequest{Name: "l", Kind: "ledger", Config: map[string]string{"path": img}}); err != nil {
		t.Fatal(err)
	}
	j, err := f.m.StartBackup(ctx, api.BackupRequest{Source: "l"})
	if err != nil {
		t.Fatal(err)
	}
	if j = wait(t, f.m, j.ID); j.State != meta.JobSucceeded {
		t.Fatalf("backup: %s %s", j.State, j.Error)
	}
	if got := l.take(); !slices.Equal(got, []string{"opened", "committed", "closed"}) {
		t.Fatalf("a committed backup told its snapshot %q, want committed then closed", got)
	}

	// New data to store, every Put held, and the job canceled once the
	// snapshot is open.
	f.image(t, "a.img", 8<<20)
	f.store.open = make(chan struct{})
	j, err = f.m.StartBackup(ctx, api.BackupRequest{Source: "l", Full: true})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		l.mu.Lock()
		opened := len(l.events) > 0
		l.mu.Unlock()
		if opened {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second backup never opened its snapshot")
		}
	}
	if _, err := f.m.CancelJob(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	if j = wait(t, f.m, j.ID); j.State != meta.JobCanceled {
		t.Fatalf("canceled backup is %s", j.State)
	}
	close(f.store.open)
	if got := l.take(); !slices.Equal(got, []string{"opened", "closed"}) {
		t.Fatalf("a canceled backup told its snapshot %q, want only closed", got)
	}
}
