package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cairnhq/cairn/appliance/api"
	"github.com/cairnhq/cairn/appliance/backup"
	"github.com/cairnhq/cairn/appliance/restore"
	"github.com/cairnhq/cairn/cluster/meta"
	"github.com/cairnhq/cairn/plugins"
)

// AddSource validates a source with its plugin and records it, with its
// secrets sealed. What it returns carries no secrets, sealed or not.
func (m *Manager) AddSource(ctx context.Context, req api.AddSourceRequest) (meta.Source, error) {
	s := meta.Source{Name: req.Name, Kind: req.Kind, Tenant: req.Tenant, Config: req.Config, Created: m.now()}
	if !meta.ValidName(s.Name) {
		return meta.Source{}, invalid("source name %q: use 1-64 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit", s.Name)
	}
	if s.Tenant == "" {
		s.Tenant = DefaultTenant
	}
	if len(req.Secrets) > 0 {
		if m.secrets == nil {
			return meta.Source{}, invalid("source %s: this appliance cannot store secrets", s.Name)
		}
		sealed, err := m.secrets.Seal(s.Name, req.Secrets)
		if err != nil {
			return meta.Source{}, fmt.Errorf("seal the secrets of source %s: %w", s.Name, err)
		}
		s.SealedSecrets = sealed
	}
	if _, err := m.sourcePlugin(ctx, s); err != nil {
		return meta.Source{}, err
	}
	if err := m.catalog.AddSource(ctx, s); err != nil {
		return meta.Source{}, err
	}
	m.log.Info("source added", "source", s.Name, "kind", s.Kind)
	s.SealedSecrets = nil
	return s, nil
}

// Sources lists the configured sources, without their secrets.
func (m *Manager) Sources(ctx context.Context) ([]meta.Source, error) {
	list, err := m.catalog.Sources(ctx)
	for i := range list {
		list[i].SealedSecrets = nil
	}
	return list, err
}

// Objects lists what a source can protect.
func (m *Manager) Objects(ctx context.Context, source string) ([]plugins.Object, error) {
	_, p, err := m.source(ctx, source)
	if err != nil {
		return nil, err
	}
	return p.Objects(ctx)
}

// kindNames lists the plugin kinds that can do what has says.
func (m *Manager) kindNames(has func(plugins.Kind) bool) []string {
	var names []string
	for name, k := range m.kinds {
		if has(k) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// sourceConfig is a source record as its plugin sees it, secrets opened.
func (m *Manager) sourceConfig(s meta.Source) (plugins.SourceConfig, error) {
	cfg := plugins.SourceConfig{Name: s.Name, Settings: s.Config}
	if len(s.SealedSecrets) == 0 {
		return cfg, nil
	}
	if m.secrets == nil {
		return cfg, fmt.Errorf("source %s has secrets and this appliance cannot open them", s.Name)
	}
	sec, err := m.secrets.Open(s.Name, s.SealedSecrets)
	if err != nil {
		return cfg, err
	}
	cfg.Secrets = sec
	return cfg, nil
}

func (m *Manager) sourcePlugin(ctx context.Context, s meta.Source) (plugins.Source, error) {
	k := m.kinds[s.Kind]
	if k.NewSource == nil {
		return nil, invalid("source kind %q is not one this appliance offers (%v)", s.Kind,
			m.kindNames(func(k plugins.Kind) bool { return k.NewSource != nil }))
	}
	cfg, err := m.sourceConfig(s)
	if err != nil {
		return nil, err
	}
	p, err := k.NewSource(ctx, cfg)
	if err != nil {
		if errors.Is(err, api.ErrInvalid) || errors.Is(err, plugins.ErrInvalid) || errors.Is(err, plugins.ErrNotFound) {
			return nil, fmt.Errorf("source %s: %w", s.Name, err)
		}
		return nil, fmt.Errorf("source %s: %w: %w", s.Name, err, api.ErrInvalid)
	}
	return p, nil
}

func (m *Manager) source(ctx context.Context, name string) (meta.Source, plugins.Source, error) {
	s, err := m.catalog.Source(ctx, name)
	if err != nil {
		return meta.Source{}, nil, err
	}
	p, err := m.sourcePlugin(ctx, s)
	return s, p, err
}

// StartBackup starts a backup of one object. With no object named, the
// source must have exactly one.
func (m *Manager) StartBackup(ctx context.Context, req api.BackupRequest) (meta.Job, error) {
	return m.startBackup(ctx, req, nil)
}

// startBackup starts a backup as a new job, or as taken: a queued job this
// node has taken (TakeJob), already recorded as running here.
func (m *Manager) startBackup(ctx context.Context, req api.BackupRequest, taken *meta.Job) (meta.Job, error) {
	if req.Full && req.ChangedExtents != nil {
		return meta.Job{}, invalid("a full backup reads everything: leave out the changed extents")
	}
	src, plugin, err := m.source(ctx, req.Source)
	if err != nil {
		return meta.Job{}, err
	}
	object := req.Object
	if object == "" {
		objs, err := plugin.Objects(ctx)
		if err != nil {
			return meta.Job{}, fmt.Errorf("list objects of %s: %w", src.Name, err)
		}
		if len(objs) != 1 {
			return meta.Job{}, invalid("source %s has %d objects: name one as %s/OBJECT", src.Name, len(objs), src.Name)
		}
		object = objs[0].Name
	}
	busyKey := src.Name + "/" + object
	m.mu.Lock()
	if other, ok := m.busy[busyKey]; ok {
		m.mu.Unlock()
		return meta.Job{}, fmt.Errorf("back up %s: job %s is already backing it up: %w", busyKey, other, meta.ErrConflict)
	}
	m.busy[busyKey] = ""
	m.mu.Unlock()

	progress := new(backup.Progress)
	count := func() (int64, int64) { return progress.Done.Load(), progress.Total.Load() }
	run := func(ctx context.Context, l *live) error {
		defer func() {
			m.mu.Lock()
			delete(m.busy, busyKey)
			m.mu.Unlock()
		}()
		rp, err := m.runBackup(ctx, l, src, plugin, object, req, progress)
		if err != nil {
			return err
		}
		l.mu.Lock()
		l.job.RestorePoint = rp
		l.mu.Unlock()
		return nil
	}
	var j meta.Job
	if taken != nil {
		j = m.launch(*taken, count, run)
	} else {
		j, err = m.start(meta.Job{Kind: meta.JobBackup, Source: src.Name, Object: object}, count, run)
	}
	if err != nil {
		m.mu.Lock()
		delete(m.busy, busyKey)
		m.mu.Unlock()
		return meta.Job{}, err
	}
	m.mu.Lock()
	if _, ok := m.busy[busyKey]; ok {
		m.busy[busyKey] = j.ID
	}
	m.mu.Unlock()
	return j, nil
}

func (m *Manager) runBackup(ctx context.Context, l *live, src meta.Source, plugin plugins.Source, object string, req api.BackupRequest, progress *backup.Progress) (string, error) {
	key, err := m.keys.Tenant(ctx, src.Tenant)
	if err != nil {
		return "", fmt.Errorf("tenant key: %w", err)
	}
	var base *meta.RestorePoint
	if !req.Full {
		rp, err := m.catalog.Latest(ctx, src.Name, object)
		switch {
		case err == nil:
			base = &rp
		case errors.Is(err, meta.ErrNotFound):
			if req.ChangedExtents != nil {
				l.note("no earlier restore point to apply the changed extents to: taking a full backup")
			}
		default:
			return "", fmt.Errorf("find the base restore point: %w", err)
		}
	}
	opts := plugins.OpenOptions{}
	if base != nil {
		opts.ChangedExtents = req.ChangedExtents
		// Record the base before reading it: while this job runs, no one
		// can delete it (and if someone did just now, the commit will
		// refuse the missing base).
		l.mu.Lock()
		l.job.Base = base.ID
		rec := l.job
		l.mu.Unlock()
		if err := m.catalog.PutJob(ctx, rec); err != nil {
			return "", fmt.Errorf("record the base restore point: %w", err)
		}
	}
	snap, err := plugin.Open(ctx, object, opts)
	if err != nil {
		return "", fmt.Errorf("open %s/%s: %w", src.Name, object, err)
	}
	defer func() {
		if cerr := snap.Close(context.WithoutCancel(ctx)); cerr != nil {
			l.note(fmt.Sprintf("cleaning up the source snapshot failed: %v", cerr))
			m.log.Error("close snapshot", "source", src.Name, "object", object, "err", cerr)
		}
	}()
	res, err := m.backup.Run(ctx, backup.Request{Key: key, Snapshot: snap, Base: base, Progress: progress, Note: l.note})
	if err != nil {
		return "", err
	}
	var objectConfig []byte
	if d, ok := snap.(plugins.Describer); ok {
		if objectConfig, err = d.Describe(ctx); err != nil {
			return "", fmt.Errorf("save the configuration of %s/%s: %w", src.Name, object, err)
		}
	}
	rp := meta.RestorePoint{
		ID: meta.NewID("rp", m.now(), m.rand), Source: src.Name, Object: object, Tenant: src.Tenant,
		Time: l.job.Started, Job: l.job.ID, Consistency: snap.Consistency(), Disks: res.Disks,
		LogicalBytes: res.LogicalBytes, ReadBytes: res.ReadBytes, NewBytes: res.NewBytes, StoredBytes: res.StoredBytes,
		Chunks: res.Chunks, NewChunks: res.NewChunks, ZeroBlocks: res.ZeroBlocks, Fingerprint: res.Fingerprint,
		Verify: meta.VerifyState{State: meta.VerifyNone}, Duration: res.Duration.Seconds(), ObjectConfig: objectConfig,
	}
	if base != nil {
		rp.Base = base.ID
	}
	if rp.LockedUntil, err = m.lockFor(ctx, src.Name, object, rp.Time); err != nil {
		return "", fmt.Errorf("find the retention lock: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if err := m.catalog.CommitRestorePoint(ctx, rp); err != nil {
		return "", fmt.Errorf("commit restore point: %w", err)
	}
	// Only now may the source keep this snapshot as its next base and drop
	// the previous one; failing that does not undo the restore point.
	if c, ok := snap.(plugins.Committer); ok {
		if err := c.Committed(context.WithoutCancel(ctx)); err != nil {
			l.note(fmt.Sprintf("the restore point is committed, but the source could not rotate its change tracking: %v", err))
			m.log.Error("snapshot committed", "source", src.Name, "object", object, "err", err)
		}
	}
	m.log.Info("restore point committed", "restore_point", rp.ID, "source", rp.Source, "object", rp.Object,
		"logical_bytes", rp.LogicalBytes, "read_bytes", rp.ReadBytes, "new_bytes", rp.NewBytes, "fingerprint", rp.Fingerprint)
	return rp.ID, nil
}

// StartRestore restores a restore point to a target.
func (m *Manager) StartRestore(ctx context.Context, req api.RestoreRequest) (meta.Job, error) {
	rp, err := m.catalog.RestorePoint(ctx, req.RestorePoint)
	if err != nil {
		return meta.Job{}, err
	}
	scheme, loc, err := splitTarget(req.To)
	if err != nil {
		return meta.Job{}, err
	}
	k := m.kinds[scheme]
	if k.NewTarget == nil {
		return meta.Job{}, invalid("restore destination %q: no %q target on this appliance (%v)", req.To, scheme,
			m.kindNames(func(k plugins.Kind) bool { return k.NewTarget != nil }))
	}
	cfg := plugins.TargetConfig{Location: loc, Overwrite: req.Overwrite, Options: req.Options,
		Object: rp.Object, ObjectConfig: rp.ObjectConfig}
	// A location naming a source of the same kind restores into that
	// system with its credentials ("openstack:SOURCE").
	if s, err := m.catalog.Source(ctx, loc); err == nil && s.Kind == scheme {
		sc, err := m.sourceConfig(s)
		if err != nil {
			return meta.Job{}, fmt.Errorf("restore to %s: %w", req.To, err)
		}
		cfg.Source = &sc
	}
	target, err := k.NewTarget(ctx, cfg)
	if err != nil {
		return meta.Job{}, fmt.Errorf("restore to %s: %w", req.To, err)
	}
	progress := new(restore.Progress)
	return m.start(meta.Job{Kind: meta.JobRestore, Source: rp.Source, Object: rp.Object, RestorePoint: rp.ID, Target: req.To},
		func() (int64, int64) { return progress.Done.Load(), progress.Total.Load() },
		func(ctx context.Context, l *live) error {
			key, err := m.keys.Tenant(ctx, rp.Tenant)
			if err != nil {
				return fmt.Errorf("tenant key: %w", err)
			}
			if err := m.restore.Restore(ctx, key, rp, target, progress); err != nil {
				return err
			}
			f, ok := target.(plugins.Finisher)
			if !ok {
				return nil
			}
			result, err := f.Finish(ctx)
			if err != nil {
				return fmt.Errorf("finish the restore to %s: %w", req.To, err)
			}
			l.mu.Lock()
			l.job.Result = result
			l.mu.Unlock()
			return nil
		})
}

// StartVerify re-reads and checks every chunk of a restore point and records
// the outcome on it.
func (m *Manager) StartVerify(ctx context.Context, id string) (meta.Job, error) {
	rp, err := m.catalog.RestorePoint(ctx, id)
	if err != nil {
		return meta.Job{}, err
	}
	progress := new(restore.Progress)
	return m.start(meta.Job{Kind: meta.JobVerify, Source: rp.Source, Object: rp.Object, RestorePoint: rp.ID},
		func() (int64, int64) { return progress.Done.Load(), progress.Total.Load() },
		func(ctx context.Context, l *live) error {
			res, err := m.verifyRepairing(ctx, progress, rp)
			if err != nil {
				return err
			}
			l.mu.Lock()
			l.job.Verify = &res
			l.mu.Unlock()
			if !res.OK {
				return fmt.Errorf("verification found %d corrupt and %d missing chunks", res.Corrupt, res.Missing)
			}
			return nil
		})
}

// StartVerifyAll verifies every restore point, repairing damaged copies
// from good replicas as it goes, and records each outcome.
func (m *Manager) StartVerifyAll(ctx context.Context) (meta.Job, error) {
	progress := new(restore.Progress)
	return m.start(meta.Job{Kind: meta.JobVerify},
		func() (int64, int64) { return progress.Done.Load(), progress.Total.Load() },
		func(ctx context.Context, l *live) error {
			points, err := m.catalog.RestorePoints(ctx, meta.Filter{})
			if err != nil {
				return err
			}
			all := meta.VerifyResult{OK: true, RestorePoints: len(points)}
			// First every copy on every node, keyless: a read below meets
			// only the first good copy of each chunk.
			if m.repairer != nil {
				checked, damaged, repaired, err := m.repairer.Scrub(ctx)
				if err != nil {
					return fmt.Errorf("scrub: %w", err)
				}
				all.Repaired += repaired
				if damaged > repaired {
					all.Errors = append(all.Errors, fmt.Sprintf("scrub: %d of %d copies damaged, %d repaired", damaged, checked, repaired))
				}
			}
			var total int64
			for _, rp := range points {
				total += rp.LogicalBytes
			}
			progress.Total.Store(total)
			var done int64
			for _, rp := range points {
				sub := new(restore.Progress)
				stop := make(chan struct{})
				var carry sync.WaitGroup
				carry.Go(func() { // carry the point's progress into the job's
					t := time.NewTicker(200 * time.Millisecond)
					defer t.Stop()
					for base := done; ; {
						select {
						case <-stop:
							return
						case <-t.C:
							progress.Done.Store(base + sub.Done.Load())
						}
					}
				})
				res, err := m.verifyRepairing(ctx, sub, rp)
				close(stop)
				carry.Wait()
				done += rp.LogicalBytes
				progress.Done.Store(done)
				if err != nil {
					return fmt.Errorf("restore point %s: %w", rp.ID, err)
				}
				all.OK = all.OK && res.OK
				all.ChunksChecked += res.ChunksChecked
				all.BytesChecked += res.BytesChecked
				all.Corrupt += res.Corrupt
				all.Missing += res.Missing
				all.Repaired += res.Repaired
				for _, e := range res.Errors {
					if len(all.Errors) < 20 {
						all.Errors = append(all.Errors, rp.ID+": "+e)
					}
				}
				l.mu.Lock()
				l.job.Verify = &all
				l.mu.Unlock()
			}
			if !all.OK {
				return fmt.Errorf("verification found %d corrupt and %d missing chunks", all.Corrupt, all.Missing)
			}
			return nil
		})
}

// verifyRepairing verifies one restore point, counts the damaged copies
// replaced from replicas meanwhile, and records the outcome on the point.
func (m *Manager) verifyRepairing(ctx context.Context, progress *restore.Progress, rp meta.RestorePoint) (meta.VerifyResult, error) {
	key, err := m.keys.Tenant(ctx, rp.Tenant)
	if err != nil {
		return meta.VerifyResult{}, fmt.Errorf("tenant key: %w", err)
	}
	var before int64
	if m.repairer != nil {
		before = m.repairer.Repaired()
	}
	res, err := m.restore.Verify(ctx, key, rp, progress)
	if err != nil {
		return res, err
	}
	if m.repairer != nil {
		if err := m.repairer.WaitRepairs(ctx); err != nil {
			return res, err
		}
		res.Repaired = m.repairer.Repaired() - before
	}
	state := meta.VerifyState{State: meta.VerifyOK, At: m.now()}
	if !res.OK {
		state.State = meta.VerifyFailed
		state.Error = fmt.Sprintf("%d corrupt and %d missing chunks", res.Corrupt, res.Missing)
	}
	if err := m.catalog.SetVerify(ctx, rp.ID, state); err != nil {
		return res, fmt.Errorf("record verification: %w", err)
	}
	return res, nil
}

// RestorePoints lists restore points.
func (m *Manager) RestorePoints(ctx context.Context, f meta.Filter) ([]meta.RestorePoint, error) {
	return m.catalog.RestorePoints(ctx, f)
}

// RestorePoint returns one restore point.
func (m *Manager) RestorePoint(ctx context.Context, id string) (meta.RestorePoint, error) {
	return m.catalog.RestorePoint(ctx, id)
}
