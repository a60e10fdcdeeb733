// Package apitest provides an in-memory api.Service for tests of the API,
// the CLI and their clients.
//
// Service keeps real state in maps and keeps the real rules: source names
// are unique, a file source's image must exist and is stat'ed for its size,
// restore points and jobs are found or not, a finished job cannot be
// canceled, a restore does not overwrite an existing file unless asked and
// writes a real (sparse) file of the restored size. Instead of running in
// the background, a job advances by one step each time it is read, so a
// follower sees progress without the test sleeping.
package apitest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cairnhq/cairn/appliance/api"
	"github.com/cairnhq/cairn/cluster/meta"
	"github.com/cairnhq/cairn/plugins"
)

// Service is the in-memory api.Service. Use New.
type Service struct {
	mu      sync.Mutex
	steps   int // reads of a job it takes to finish
	now     time.Time
	seq     int
	sources map[string]meta.Source
	points  map[string]meta.RestorePoint
	jobs    map[string]*job
	corrupt map[string]bool
}

// job is a job and what finishing it does.
type job struct {
	meta.Job
	finish func(j *meta.Job) // called with the lock held when Done reaches Total
}

var _ api.Service = (*Service)(nil)

// New returns an empty Service whose clock starts at start and ticks one
// second per event.
func New(start time.Time) *Service {
	return &Service{
		steps:   4,
		now:     start,
		sources: map[string]meta.Source{},
		points:  map[string]meta.RestorePoint{},
		jobs:    map[string]*job{},
		corrupt: map[string]bool{},
	}
}

// SetSteps sets how many reads of a job it takes to finish (default 4).
func (s *Service) SetSteps(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.steps = max(n, 1)
}

// Corrupt makes verification of a restore point find a corrupt chunk.
func (s *Service) Corrupt(restorePoint string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.corrupt[restorePoint] = true
}

func (s *Service) tick() time.Time {
	s.now = s.now.Add(time.Second)
	return s.now
}

func (s *Service) newID(prefix string) string {
	s.seq++
	return fmt.Sprintf("%s-%04d", prefix, s.seq)
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), api.ErrInvalid)
}

// AddSource adds a "file" source whose config names an existing image. A
// file source has no secrets, so any are refused.
func (s *Service) AddSource(ctx context.Context, req api.AddSourceRequest) (meta.Source, error) {
	src := meta.Source{Name: req.Name, Kind: req.Kind, Tenant: req.Tenant, Config: req.Config}
	if len(req.Secrets) > 0 {
		return meta.Source{}, invalid("file source %s: a file source has no secrets", src.Name)
	}
	if src.Kind != "file" {
		return meta.Source{}, invalid("source kind %q: only \"file\" here", src.Kind)
	}
	path := src.Config["path"]
	if path == "" {
		return meta.Source{}, invalid("file source %s: config needs a path", src.Name)
	}
	if _, err := os.Stat(path); err != nil {
		return meta.Source{}, invalid("file source %s: %v", src.Name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sources[src.Name]; ok {
		return meta.Source{}, fmt.Errorf("add source %s: %w", src.Name, meta.ErrExists)
	}
	if src.Tenant == "" {
		src.Tenant = "default"
	}
	src.Created = s.tick()
	s.sources[src.Name] = src
	return src, nil
}

// Sources lists sources by name.
func (s *Service) Sources(ctx context.Context) ([]meta.Source, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []meta.Source
	for _, src := range s.sources {
		out = append(out, src)
	}
	slices.SortFunc(out, func(a, b meta.Source) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Objects returns the one object of a file source: its image, by base name.
func (s *Service) Objects(ctx context.Context, source string) ([]plugins.Object, error) {
	s.mu.Lock()
	src, ok := s.sources[source]
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("source %s: %w", source, meta.ErrNotFound)
	}
	path := src.Config["path"]
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", source, err)
	}
	return []plugins.Object{{Name: filepath.Base(path), Kind: "image", Size: fi.Size(), Disks: 1,
		Info: map[string]string{"path": path}}}, nil
}

// StartBackup starts a backup job. Extents past the end of the image make
// the job fail, as the real engine does.
func (s *Service) StartBackup(ctx context.Context, req api.BackupRequest) (meta.Job, error) {
	if req.Full && req.ChangedExtents != nil {
		return meta.Job{}, invalid("a full backup reads everything: leave out the changed extents")
	}
	objs, err := s.Objects(ctx, req.Source)
	if err != nil {
		return meta.Job{}, err
	}
	obj := objs[0]
	if req.Object != "" && req.Object != obj.Name {
		return meta.Job{}, fmt.Errorf("object %s/%s: %w", req.Source, req.Object, plugins.ErrNotFound)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	base := s.latest(req.Source, obj.Name)
	j := &job{Job: meta.Job{Kind: meta.JobBackup, Source: req.Source, Object: obj.Name}}
	read := obj.Size
	switch {
	case req.Full:
	case base == nil && req.ChangedExtents != nil:
		j.Messages = append(j.Messages, "no earlier restore point to apply the changed extents to: taking a full backup")
	case base == nil:
	case req.ChangedExtents == nil:
		j.Messages = append(j.Messages, "no changed-extent list: reading everything and comparing hashes with the base")
	default:
		read = 0
		for _, e := range req.ChangedExtents {
			if e.End() > obj.Size {
				j.Error = fmt.Sprintf("extent %d+%d ends past the end of the image (%d bytes)", e.Offset, e.Length, obj.Size)
			}
			read += e.Length
		}
	}
	j.Progress.Total = read
	j.finish = func(mj *meta.Job) {
		rp := meta.RestorePoint{
			ID: s.newID("rp"), Source: mj.Source, Object: mj.Object, Tenant: "default", Time: mj.Started,
			Job: mj.ID, Consistency: "none", LogicalBytes: obj.Size, ReadBytes: read, NewBytes: read,
			StoredBytes: read / 2, Verify: meta.VerifyState{State: meta.VerifyNone}, Duration: 1.5,
			Disks: []meta.Disk{{Key: "disk0", Capacity: obj.Size, BlockSize: 4 << 20, Method: "allocated"}},
		}
		if base != nil {
			rp.Base = base.ID
		}
		sum := sha256.Sum256([]byte(rp.ID))
		rp.Fingerprint = hex.EncodeToString(sum[:])
		s.points[rp.ID] = rp
		mj.RestorePoint = rp.ID
	}
	return s.start(j), nil
}

// latest returns the newest restore point of an object, or nil.
func (s *Service) latest(source, object string) *meta.RestorePoint {
	var best *meta.RestorePoint
	for _, rp := range s.points {
		if rp.Source == source && rp.Object == object && (best == nil || rp.Time.After(best.Time)) {
			best = &rp
		}
	}
	return best
}

// start records a new job; the lock is held.
func (s *Service) start(j *job) meta.Job {
	j.ID = s.newID("job")
	j.Created = s.tick()
	j.Started = j.Created
	j.State = meta.JobRunning
	s.jobs[j.ID] = j
	return copyJob(j.Job)
}

// StartRestore starts a restore into a file.
func (s *Service) StartRestore(ctx context.Context, req api.RestoreRequest) (meta.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, ok := s.points[req.RestorePoint]
	if !ok {
		return meta.Job{}, fmt.Errorf("restore point %s: %w", req.RestorePoint, meta.ErrNotFound)
	}
	path, ok := strings.CutPrefix(req.To, "file:")
	if !ok || path == "" {
		return meta.Job{}, invalid("restore destination %q: only file:PATH here", req.To)
	}
	if _, err := os.Stat(path); err == nil && !req.Overwrite {
		return meta.Job{}, fmt.Errorf("restore to %s: %w", path, plugins.ErrExists)
	}
	j := &job{Job: meta.Job{Kind: meta.JobRestore, Source: rp.Source, Object: rp.Object, Target: req.To, RestorePoint: rp.ID}}
	j.Progress.Total = rp.LogicalBytes
	j.finish = func(mj *meta.Job) {
		if err := writeSparse(path, rp.LogicalBytes); err != nil {
			mj.State, mj.Error = meta.JobFailed, err.Error()
		}
	}
	return s.start(j), nil
}

func writeSparse(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// StartVerify starts a verification; it fails for restore points marked
// with Corrupt, with the result still recorded on the job.
func (s *Service) StartVerify(ctx context.Context, id string) (meta.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, ok := s.points[id]
	if !ok {
		return meta.Job{}, fmt.Errorf("restore point %s: %w", id, meta.ErrNotFound)
	}
	j := &job{Job: meta.Job{Kind: meta.JobVerify, Source: rp.Source, Object: rp.Object, RestorePoint: id}}
	j.Progress.Total = rp.NewBytes
	j.finish = func(mj *meta.Job) {
		res := &meta.VerifyResult{OK: true, ChunksChecked: 3, BytesChecked: rp.NewBytes, Fingerprint: rp.Fingerprint}
		state := meta.VerifyState{State: meta.VerifyOK, At: s.now}
		if s.corrupt[id] {
			res.OK, res.Corrupt = false, 1
			res.Errors = []string{"chunk 0001: authentication failed"}
			state = meta.VerifyState{State: meta.VerifyFailed, At: s.now, Error: "1 corrupt and 0 missing chunks"}
			mj.State, mj.Error = meta.JobFailed, "verification found 1 corrupt and 0 missing chunks"
		}
		mj.Verify = res
		rp.Verify = state
		s.points[id] = rp
	}
	return s.start(j), nil
}

// RestorePoints lists restore points, oldest first.
func (s *Service) RestorePoints(ctx context.Context, f meta.Filter) ([]meta.RestorePoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []meta.RestorePoint
	for _, rp := range s.points {
		if (f.Source == "" || rp.Source == f.Source) && (f.Object == "" || rp.Object == f.Object) {
			out = append(out, rp)
		}
	}
	slices.SortFunc(out, func(a, b meta.RestorePoint) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// RestorePoint returns one restore point.
func (s *Service) RestorePoint(ctx context.Context, id string) (meta.RestorePoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, ok := s.points[id]
	if !ok {
		return meta.RestorePoint{}, fmt.Errorf("restore point %s: %w", id, meta.ErrNotFound)
	}
	return rp, nil
}

// Jobs lists at most limit jobs, newest first.
func (s *Service) Jobs(ctx context.Context, limit int) ([]meta.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []meta.Job
	for _, j := range s.jobs {
		out = append(out, copyJob(j.Job))
	}
	slices.SortFunc(out, func(a, b meta.Job) int { return strings.Compare(b.ID, a.ID) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Job returns a job after advancing it by one step.
func (s *Service) Job(ctx context.Context, id string) (meta.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[id]
	if !ok {
		return meta.Job{}, fmt.Errorf("job %s: %w", id, meta.ErrNotFound)
	}
	s.advance(j)
	return copyJob(j.Job), nil
}

// advance moves a running job one step on; the lock is held.
func (s *Service) advance(j *job) {
	if j.Done() {
		return
	}
	if j.Error != "" {
		j.State, j.Finished = meta.JobFailed, s.tick()
		return
	}
	step := max(j.Progress.Total/int64(s.steps), 1)
	j.Progress.Done = min(j.Progress.Done+step, j.Progress.Total)
	if j.Progress.Done < j.Progress.Total {
		return
	}
	j.State = meta.JobSucceeded
	j.finish(&j.Job)
	j.Finished = s.tick()
}

// CancelJob cancels a running job; a finished one is a conflict.
func (s *Service) CancelJob(ctx context.Context, id string) (meta.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[id]
	if !ok {
		return meta.Job{}, fmt.Errorf("job %s: %w", id, meta.ErrNotFound)
	}
	if j.Done() {
		return meta.Job{}, fmt.Errorf("cancel job %s: it has already %s: %w", id, j.State, meta.ErrConflict)
	}
	j.State, j.Finished = meta.JobCanceled, s.tick()
	return copyJob(j.Job), nil
}

func copyJob(j meta.Job) meta.Job {
	j.Messages = slices.Clone(j.Messages)
	if j.Verify != nil {
		v := *j.Verify
		v.Errors = slices.Clone(v.Errors)
		j.Verify = &v
	}
	return j
}

// Catalog returns the service's restore points and jobs as the catalog
// interfaces of package report and metrics see them.
func (s *Service) Catalog() Catalog { return Catalog{s} }

// Catalog is a Service read through meta's filters.
type Catalog struct{ s *Service }

// RestorePoints lists restore points.
func (c Catalog) RestorePoints(ctx context.Context, f meta.Filter) ([]meta.RestorePoint, error) {
	return c.s.RestorePoints(ctx, f)
}

// Jobs lists the jobs f selects, without advancing them.
func (c Catalog) Jobs(ctx context.Context, f meta.JobFilter) ([]meta.Job, error) {
	all, err := c.s.Jobs(ctx, 1<<30)
	if err != nil {
		return nil, err
	}
	var out []meta.Job
	for _, j := range all {
		if (f.Kind == "" || j.Kind == f.Kind) && (f.State == "" || j.State == f.State) &&
			(f.Source == "" || j.Source == f.Source) && (f.Object == "" || j.Object == f.Object) {
			out = append(out, j)
		}
	}
	return out, nil
}

// StartGC is refused: the fake keeps no chunks to collect.
func (s *Service) StartGC(ctx context.Context, req api.GCRequest) (meta.Job, error) {
	return meta.Job{}, invalid("this test appliance has no garbage collector")
}

// DeleteRestorePoint forgets a restore point.
func (s *Service) DeleteRestorePoint(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.points[id]; !ok {
		return fmt.Errorf("restore point %s: %w", id, meta.ErrNotFound)
	}
	delete(s.points, id)
	return nil
}

// CreatePolicy is refused: the fake keeps no policies.
func (s *Service) CreatePolicy(ctx context.Context, req api.PolicyRequest) (meta.Policy, error) {
	return meta.Policy{}, invalid("this test appliance keeps no policies")
}

// Policies lists none.
func (s *Service) Policies(ctx context.Context) ([]meta.Policy, error) { return nil, nil }

// AssignPolicy finds no policy.
func (s *Service) AssignPolicy(ctx context.Context, name, target string) (meta.Policy, error) {
	return meta.Policy{}, fmt.Errorf("policy %s: %w", name, meta.ErrNotFound)
}

// Prune keeps everything: no object has a policy.
func (s *Service) Prune(ctx context.Context, dryRun bool) (api.PruneResult, error) {
	return api.PruneResult{DryRun: dryRun, Objects: []api.PruneObject{}}, nil
}
