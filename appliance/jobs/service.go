package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/cairnhq/cairn/appliance/api"
	"github.com/cairnhq/cairn/appliance/backup"
	"github.com/cairnhq/cairn/appliance/restore"
	"github.com/cairnhq/cairn/cluster/meta"
	"github.com/cairnhq/cairn/plugins"
)

// AddSource validates a source with its plugin and records it.
func (m *Manager) AddSource(ctx context.Context, s meta.Source) (meta.Source, error) {
	if !meta.ValidName(s.Name) {
		return meta.Source{}, invalid("source name %q: use 1-64 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit", s.Name)
	}
	if s.Tenant == "" {
		s.Tenant = DefaultTenant
	}
	s.Created = m.now()
	if _, err := m.sourcePlugin(s); err != nil {
		return meta.Source{}, err
	}
	if err := m.catalog.AddSource(ctx, s); err != nil {
		return meta.Source{}, err
	}
	m.log.Info("source added", "source", s.Name, "kind", s.Kind)
	return s, nil
}

// Sources lists the configured sources.
func (m *Manager) Sources(ctx context.Context) ([]meta.Source, error) {
	return m.catalog.Sources(ctx)
}

// Objects lists what a source can protect.
func (m *Manager) Objects(ctx context.Context, source string) ([]plugins.Object, error) {
	_, p, err := m.source(ctx, source)
	if err != nil {
		return nil, err
	}
	return p.Objects(ctx)
}

func (m *Manager) sourcePlugin(s meta.Source) (plugins.Source, error) {
	f := m.plugins.Sources[s.Kind]
	if f == nil {
		kinds := make([]string, 0, len(m.plugins.Sources))
		for k := range m.plugins.Sources {
			kinds = append(kinds, k)
		}
		slices.Sort(kinds)
		return nil, invalid("source kind %q is not one this appliance offers (%v)", s.Kind, kinds)
	}
	p, err := f(s)
	if err != nil {
		if errors.Is(err, api.ErrInvalid) || errors.Is(err, plugins.ErrNotFound) {
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
	p, err := m.sourcePlugin(s)
	return s, p, err
}

// StartBackup starts a backup of one object. With no object named, the
// source must have exactly one.
func (m *Manager) StartBackup(ctx context.Context, req api.BackupRequest) (meta.Job, error) {
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
	j, err := m.start(meta.Job{Kind: meta.JobBackup, Source: src.Name, Object: object},
		func() (int64, int64) { return progress.Done.Load(), progress.Total.Load() },
		func(ctx context.Context, l *live) error {
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
		})
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
	rp := meta.RestorePoint{
		ID: meta.NewID("rp", m.now(), m.rand), Source: src.Name, Object: object, Tenant: src.Tenant,
		Time: l.job.Started, Job: l.job.ID, Consistency: snap.Consistency(), Disks: res.Disks,
		LogicalBytes: res.LogicalBytes, ReadBytes: res.ReadBytes, NewBytes: res.NewBytes, StoredBytes: res.StoredBytes,
		Chunks: res.Chunks, NewChunks: res.NewChunks, ZeroBlocks: res.ZeroBlocks, Fingerprint: res.Fingerprint,
		Verify: meta.VerifyState{State: meta.VerifyNone}, Duration: res.Duration.Seconds(),
	}
	if base != nil {
		rp.Base = base.ID
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
	f := m.plugins.Targets[scheme]
	if f == nil {
		return meta.Job{}, invalid("restore destination %q: no %q target on this appliance", req.To, scheme)
	}
	target, err := f(loc, req.Overwrite)
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
			return m.restore.Restore(ctx, key, rp, target, progress)
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
			key, err := m.keys.Tenant(ctx, rp.Tenant)
			if err != nil {
				return fmt.Errorf("tenant key: %w", err)
			}
			res, err := m.restore.Verify(ctx, key, rp, progress)
			if err != nil {
				return err
			}
			l.mu.Lock()
			l.job.Verify = &res
			l.mu.Unlock()
			state := meta.VerifyState{State: meta.VerifyOK, At: m.now()}
			if !res.OK {
				state.State = meta.VerifyFailed
				state.Error = fmt.Sprintf("%d corrupt and %d missing chunks", res.Corrupt, res.Missing)
			}
			if err := m.catalog.SetVerify(ctx, rp.ID, state); err != nil {
				return fmt.Errorf("record verification: %w", err)
			}
			if !res.OK {
				return fmt.Errorf("verification found %s", state.Error)
			}
			return nil
		})
}

// RestorePoints lists restore points.
func (m *Manager) RestorePoints(ctx context.Context, f meta.Filter) ([]meta.RestorePoint, error) {
	return m.catalog.RestorePoints(ctx, f)
}

// RestorePoint returns one restore point.
func (m *Manager) RestorePoint(ctx context.Context, id string) (meta.RestorePoint, error) {
	return m.catalog.RestorePoint(ctx, id)
}
