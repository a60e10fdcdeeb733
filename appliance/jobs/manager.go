// Package jobs runs the appliance's long work — backups, restores and
// verifications — as job records in the catalog, and serves the REST API's
// Service on top of the catalog, the key ring, the chunk store and the
// plugins.
//
// A job is recorded before it starts and again when it ends; while it runs,
// its live progress is kept in memory and overlaid on the record. A restore
// point is committed to the catalog only after every chunk it references is
// stored, so a job that dies leaves no restore point behind. At start the
// manager marks jobs left running by a previous process as interrupted.
package jobs

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/cairnhq/cairn/appliance/api"
	"github.com/cairnhq/cairn/appliance/backup"
	"github.com/cairnhq/cairn/appliance/restore"
	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/meta"
	"github.com/cairnhq/cairn/plugins"
)

// Catalog is what the manager needs of the cluster's metadata.
type Catalog interface {
	AddSource(ctx context.Context, s meta.Source) error
	Source(ctx context.Context, name string) (meta.Source, error)
	Sources(ctx context.Context) ([]meta.Source, error)
	CommitRestorePoint(ctx context.Context, rp meta.RestorePoint) error
	RestorePoint(ctx context.Context, id string) (meta.RestorePoint, error)
	RestorePoints(ctx context.Context, f meta.Filter) ([]meta.RestorePoint, error)
	Latest(ctx context.Context, source, object string) (meta.RestorePoint, error)
	SetVerify(ctx context.Context, id string, v meta.VerifyState) error
	PutJob(ctx context.Context, j meta.Job) error
	Job(ctx context.Context, id string) (meta.Job, error)
	Jobs(ctx context.Context, f meta.JobFilter) ([]meta.Job, error)
	InterruptRunning(ctx context.Context, node string, now time.Time) ([]meta.Job, error)
	DeleteRestorePoint(ctx context.Context, id string, now time.Time) error
	BeginGC(ctx context.Context, r meta.GCRound) (meta.GCRound, error)
	PutPolicy(ctx context.Context, p meta.Policy) error
	Policy(ctx context.Context, name string) (meta.Policy, error)
	Policies(ctx context.Context) ([]meta.Policy, error)
	PolicyFor(ctx context.Context, source, object string) (meta.Policy, error)
	TakeJob(ctx context.Context, id, node string, now, until time.Time, perSource, perNode int) (meta.Job, error)
	RenewLease(ctx context.Context, id, node string, until time.Time) (meta.Job, error)
	CancelJob(ctx context.Context, id string, now time.Time) (meta.Job, error)
	ExpireLeases(ctx context.Context, now time.Time) ([]meta.Job, error)
	FinishJob(ctx context.Context, j meta.Job) error
	ClaimRun(ctx context.Context, r meta.Run) error
	UpdateRun(ctx context.Context, r meta.Run) error
	Runs(ctx context.Context) ([]meta.Run, error)
	EndGC(ctx context.Context, r meta.GCRound) error
}

// Keys hands out tenants' chunk keys.
type Keys interface {
	Tenant(ctx context.Context, name string) (*chunk.Key, error)
}

// Store is the chunk storage backups write to and restores read from.
type Store interface {
	backup.Store
	Delete(ctx context.Context, ids []chunk.ID) error
}

// Repairer replaces damaged chunk copies from replicas; the cluster member
// is one.
type Repairer interface {
	Repaired() int64
	WaitRepairs(ctx context.Context) error
	// Scrub checks every copy on every node without keys and repairs the
	// damaged ones; it returns the copies checked, damaged and repaired.
	Scrub(ctx context.Context) (checked, damaged, repaired int64, err error)
}

// Secrets seals and opens sources' credentials; *keys.Secrets is one.
type Secrets interface {
	Seal(source string, secrets map[string]string) ([]byte, error)
	Open(source string, sealed []byte) (map[string]string, error)
}

// Options configure a Manager.
type Options struct {
	Backup  *backup.Engine  // default: an engine over the store
	Restore *restore.Engine // default: an engine over the store
	Now     func() time.Time
	Rand    io.Reader
	Log     *slog.Logger
	// Secrets seals sources' credentials; without it, a source with secrets
	// is refused.
	Secrets Secrets
	// Quarantine is told of a chunk a restore or verify proved corrupt;
	// the default deletes it from the store, so the next backup of its
	// data stores it again.
	Quarantine func(ctx context.Context, id chunk.ID)
	// Repairer, if set, replaces damaged copies from good replicas as reads
	// find them; verifications count its repairs.
	Repairer Repairer
	// Collector sweeps the nodes' stores for garbage collection; without it
	// StartGC is refused.
	Collector Collector
	// Node is the ID of the cluster member this manager runs on: its jobs
	// carry it, and at start only its own unfinished jobs are interrupted.
	Node string
	// Lease is how long a running job's lease lasts; the manager renews it
	// every third of that. Default 30 s.
	Lease time.Duration
}

// DefaultTenant owns sources created without a tenant.
const DefaultTenant = "default"

// Manager runs jobs and implements api.Service.
type Manager struct {
	catalog   Catalog
	keys      Keys
	store     Store
	kinds     map[string]plugins.Kind // by name
	secrets   Secrets
	node      string
	collector Collector
	repairer  Repairer
	lease     time.Duration
	backup    *backup.Engine
	restore   *restore.Engine
	now       func() time.Time
	rand      io.Reader
	log       *slog.Logger

	ctx    context.Context // parent of every job; canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	live   map[string]*live  // running jobs by ID
	busy   map[string]string // "source/object" → ID of the backup running on it
}

// live is the in-memory state of a running job.
type live struct {
	mu       sync.Mutex
	job      meta.Job
	cancel   context.CancelFunc
	progress func() (done, total int64)
}

var _ api.Service = (*Manager)(nil)

// New returns a manager and marks jobs a previous process left running as
// interrupted.
// kinds are the plugins the appliance offers, wired explicitly by the daemon.
func New(ctx context.Context, catalog Catalog, keys Keys, store Store, kinds []plugins.Kind, opts Options) (*Manager, error) {
	m := &Manager{catalog: catalog, keys: keys, store: store, kinds: map[string]plugins.Kind{}, secrets: opts.Secrets, node: opts.Node, collector: opts.Collector, repairer: opts.Repairer, lease: opts.Lease,
		backup: opts.Backup, restore: opts.Restore, now: opts.Now, rand: opts.Rand, log: opts.Log,
		live: map[string]*live{}, busy: map[string]string{}}
	for _, k := range kinds {
		if _, dup := m.kinds[k.Name]; dup || k.Name == "" {
			return nil, fmt.Errorf("plugin kind %q wired twice or unnamed", k.Name)
		}
		m.kinds[k.Name] = k
	}
	if m.backup == nil {
		m.backup = &backup.Engine{Store: store}
	}
	if m.restore == nil {
		q := opts.Quarantine
		if q == nil {
			q = m.quarantine
		}
		m.restore = &restore.Engine{Store: store, Quarantine: q}
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.lease <= 0 {
		m.lease = 30 * time.Second
	}
	if m.rand == nil {
		m.rand = rand.Reader
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	stale, err := catalog.InterruptRunning(ctx, m.node, m.now())
	if err != nil {
		return nil, fmt.Errorf("mark interrupted jobs: %w", err)
	}
	for _, j := range stale {
		m.log.Warn("job interrupted by a restart", "job", j.ID, "kind", j.Kind, "source", j.Source, "object", j.Object)
	}
	m.ctx, m.cancel = context.WithCancel(context.WithoutCancel(ctx))
	return m, nil
}

// quarantine forgets a chunk proven corrupt, so the next backup that meets
// its data stores it again instead of deduplicating against the damaged copy
// (and restore points that share it become whole again). Its bytes stay in
// their segment until compaction.
func (m *Manager) quarantine(ctx context.Context, id chunk.ID) {
	if err := m.store.Delete(context.WithoutCancel(ctx), []chunk.ID{id}); err != nil {
		m.log.Error("quarantine corrupt chunk", "chunk", id.String(), "err", err)
		return
	}
	m.log.Warn("corrupt chunk quarantined: the next backup of its data stores it again", "chunk", id.String())
}

// Close stops every running job, records it as interrupted, and waits.
func (m *Manager) Close() {
	m.cancel()
	m.wg.Wait()
}

// start records a job and runs fn in the background. fn returns the error
// that failed the job, if any; it may edit the job through the live record.
func (m *Manager) start(j meta.Job, progress func() (int64, int64), fn func(ctx context.Context, l *live) error) (meta.Job, error) {
	j.ID = meta.NewID("job", m.now(), m.rand)
	j.Node = m.node
	j.State = meta.JobRunning
	j.Created = m.now()
	j.Started = j.Created
	j.Lease = j.Started.Add(m.lease)
	if err := m.catalog.PutJob(m.ctx, j); err != nil {
		return meta.Job{}, fmt.Errorf("record %s job: %w", j.Kind, err)
	}
	return m.launch(j, progress, fn), nil
}

// launch runs fn for j, a job recorded as running on this node, and keeps
// its lease: renewed every third of the lease, it carries cancel requests
// made on other nodes; once lost (the job was interrupted meanwhile), the
// work stops and the record is left as it is.
func (m *Manager) launch(j meta.Job, progress func() (int64, int64), fn func(ctx context.Context, l *live) error) meta.Job {
	ctx, cancel := context.WithCancel(m.ctx)
	l := &live{job: j, cancel: cancel, progress: progress}
	m.mu.Lock()
	m.live[j.ID] = l
	m.mu.Unlock()
	m.log.Info("job started", "job", j.ID, "kind", j.Kind, "source", j.Source, "object", j.Object, "restore_point", j.RestorePoint)

	m.wg.Add(2)
	go func() {
		defer m.wg.Done()
		m.keepLease(ctx, j.ID, cancel)
	}()
	go func() {
		defer m.wg.Done()
		defer cancel()
		err := fn(ctx, l)
		l.mu.Lock()
		done, total := progress()
		l.job.Progress = meta.Progress{Done: done, Total: total}
		l.job.Finished = m.now()
		switch {
		case err == nil:
			l.job.State = meta.JobSucceeded
		case m.ctx.Err() != nil:
			l.job.State, l.job.Error = meta.JobInterrupted, "the appliance stopped while the job ran"
		case ctx.Err() != nil:
			l.job.State, l.job.Error = meta.JobCanceled, "canceled"
		default:
			l.job.State, l.job.Error = meta.JobFailed, err.Error()
		}
		l.job.Lease = time.Time{}
		final := l.job
		l.mu.Unlock()
		switch perr := m.catalog.FinishJob(context.WithoutCancel(ctx), final); {
		case errors.Is(perr, meta.ErrConflict):
			m.log.Warn("job lost its lease: its record stays as the cluster left it", "job", final.ID, "state", final.State, "error", final.Error)
		case perr != nil:
			m.log.Error("record finished job", "job", final.ID, "err", perr)
		}
		m.mu.Lock()
		delete(m.live, final.ID)
		m.mu.Unlock()
		lvl := slog.LevelInfo
		if final.State != meta.JobSucceeded {
			lvl = slog.LevelWarn
		}
		m.log.Log(context.Background(), lvl, "job finished", "job", final.ID, "kind", final.Kind, "state", final.State,
			"error", final.Error, "seconds", final.Finished.Sub(final.Started).Seconds())
	}()
	return j
}

// keepLease renews job id's lease until ctx ends. A cancel request recorded
// on the job cancels it, and so does a refused renewal (the job no longer
// runs here).
func (m *Manager) keepLease(ctx context.Context, id string, cancel context.CancelFunc) {
	tick := time.NewTicker(m.lease / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		j, err := m.catalog.RenewLease(ctx, id, m.node, m.now().Add(m.lease))
		switch {
		case errors.Is(err, meta.ErrConflict) || errors.Is(err, meta.ErrNotFound):
			m.log.Warn("job lost its lease: stopping it", "job", id, "err", err)
			cancel()
			return
		case err != nil:
			if ctx.Err() == nil {
				m.log.Warn("renew job lease", "job", id, "err", err)
			}
		case j.CancelRequested:
			m.log.Info("job canceled from another node", "job", id)
			cancel()
		}
	}
}

// note adds a message a user should see to a running job.
func (l *live) note(msg string) {
	l.mu.Lock()
	l.job.Messages = append(l.job.Messages, msg)
	l.mu.Unlock()
}

// Job returns a job, with live progress while it runs.
func (m *Manager) Job(ctx context.Context, id string) (meta.Job, error) {
	m.mu.Lock()
	l := m.live[id]
	m.mu.Unlock()
	if l != nil {
		return l.snapshot(), nil
	}
	return m.catalog.Job(ctx, id)
}

func (l *live) snapshot() meta.Job {
	l.mu.Lock()
	defer l.mu.Unlock()
	j := l.job
	if !j.Done() {
		done, total := l.progress()
		j.Progress = meta.Progress{Done: done, Total: total}
	}
	j.Messages = append([]string(nil), j.Messages...)
	return j
}

// Jobs lists jobs newest first, with live progress for running ones.
func (m *Manager) Jobs(ctx context.Context, limit int) ([]meta.Job, error) {
	js, err := m.catalog.Jobs(ctx, meta.JobFilter{Limit: limit})
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range js {
		if l := m.live[js[i].ID]; l != nil {
			js[i] = l.snapshot()
		}
	}
	return js, nil
}

// CancelJob asks a job to stop: a queued one is canceled at once, one
// running here stops now, and one running on another node stops when that
// node next renews its lease (within a third of the lease).
func (m *Manager) CancelJob(ctx context.Context, id string) (meta.Job, error) {
	m.mu.Lock()
	l := m.live[id]
	m.mu.Unlock()
	if l != nil {
		l.cancel()
		return l.snapshot(), nil
	}
	j, err := m.catalog.CancelJob(ctx, id, m.now())
	if err != nil {
		return j, fmt.Errorf("cancel job %s: %w", id, err)
	}
	return j, nil
}

// invalid wraps a message as a bad request.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), api.ErrInvalid)
}

// splitTarget parses "scheme:location".
func splitTarget(to string) (string, string, error) {
	scheme, loc, ok := strings.Cut(to, ":")
	if !ok || scheme == "" || loc == "" {
		return "", "", invalid("restore destination %q: want SCHEME:LOCATION, such as file:/path/to/disk.img", to)
	}
	return scheme, loc, nil
}
