package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cairnhq/cairn/appliance/api"
	"github.com/cairnhq/cairn/appliance/policy"
	"github.com/cairnhq/cairn/cluster/meta"
)

// CreatePolicy checks a policy's schedule, zone and lock and records it;
// ErrExists if the name is taken.
func (m *Manager) CreatePolicy(ctx context.Context, req api.PolicyRequest) (meta.Policy, error) {
	p := meta.Policy{Name: req.Name, Created: m.now(), Retention: meta.Retention{
		KeepLast: req.KeepLast, KeepHourly: req.KeepHourly, KeepDaily: req.KeepDaily,
		KeepWeekly: req.KeepWeekly, KeepMonthly: req.KeepMonthly, KeepYearly: req.KeepYearly, TZ: req.TZ}}
	if !meta.ValidName(p.Name) {
		return meta.Policy{}, invalid("policy name %q: use 1-64 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit", p.Name)
	}
	if req.Schedule != "" {
		s, err := policy.ParseSchedule(req.Schedule)
		if err != nil {
			return meta.Policy{}, invalid("%v", err)
		}
		p.Schedule = s.String()
	}
	if req.Lock != "" {
		d, err := policy.ParseLockDuration(req.Lock)
		if err != nil {
			return meta.Policy{}, invalid("%v", err)
		}
		p.Retention.LockSeconds = int64(d / time.Second)
	}
	if _, err := retentionOf(p); err != nil {
		return meta.Policy{}, invalid("%v", err)
	}
	if _, err := m.catalog.Policy(ctx, p.Name); err == nil {
		return meta.Policy{}, fmt.Errorf("policy %s: %w", p.Name, meta.ErrExists)
	}
	if err := m.catalog.PutPolicy(ctx, p); err != nil {
		return meta.Policy{}, err
	}
	m.log.Info("policy created", "policy", p.Name, "schedule", p.Schedule)
	return m.catalog.Policy(ctx, p.Name)
}

// Policies lists the policies.
func (m *Manager) Policies(ctx context.Context) ([]meta.Policy, error) {
	return m.catalog.Policies(ctx)
}

// AssignPolicy applies a policy to a source ("SOURCE") or one object
// ("SOURCE/OBJECT"), taking the target from any policy it had before.
func (m *Manager) AssignPolicy(ctx context.Context, name, target string) (meta.Policy, error) {
	p, err := m.catalog.Policy(ctx, name)
	if err != nil {
		return meta.Policy{}, err
	}
	if slices.Contains(p.Targets, target) {
		return p, nil
	}
	others, err := m.catalog.Policies(ctx)
	if err != nil {
		return meta.Policy{}, err
	}
	for _, o := range others {
		if i := slices.Index(o.Targets, target); i >= 0 && o.Name != name {
			o.Targets = slices.Delete(o.Targets, i, i+1)
			if err := m.catalog.PutPolicy(ctx, o); err != nil {
				return meta.Policy{}, err
			}
		}
	}
	p.Targets = append(p.Targets, target)
	if err := m.catalog.PutPolicy(ctx, p); err != nil {
		return meta.Policy{}, err
	}
	m.log.Info("policy assigned", "policy", name, "target", target)
	return m.catalog.Policy(ctx, name)
}

// retentionOf turns a policy record into appliance/policy's Retention.
func retentionOf(p meta.Policy) (policy.Retention, error) {
	r := policy.Retention{Last: p.Retention.KeepLast, Hourly: p.Retention.KeepHourly, Daily: p.Retention.KeepDaily,
		Weekly: p.Retention.KeepWeekly, Monthly: p.Retention.KeepMonthly, Yearly: p.Retention.KeepYearly,
		Lock: time.Duration(p.Retention.LockSeconds) * time.Second}
	if p.Retention.TZ != "" {
		loc, err := time.LoadLocation(p.Retention.TZ)
		if err != nil || strings.EqualFold(p.Retention.TZ, "local") {
			return r, fmt.Errorf("time zone %q: want an IANA name such as Europe/Berlin", p.Retention.TZ)
		}
		r.Location = loc
	}
	return r, r.Validate()
}

// lockFor is when a new restore point of source/object stops being locked
// under its policy; zero if it has none.
func (m *Manager) lockFor(ctx context.Context, source, object string, taken time.Time) (time.Time, error) {
	p, err := m.catalog.PolicyFor(ctx, source, object)
	if errors.Is(err, meta.ErrNotFound) || (err == nil && p.Retention.LockSeconds == 0) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	return taken.Add(time.Duration(p.Retention.LockSeconds) * time.Second), nil
}

// Prune applies each object's policy: it deletes the restore points the
// retention rules do not keep, never one that is locked, that a running
// job uses, or of an object without a policy. With dryRun it only reports.
func (m *Manager) Prune(ctx context.Context, dryRun bool) (api.PruneResult, error) {
	res := api.PruneResult{DryRun: dryRun, Objects: []api.PruneObject{}}
	points, err := m.catalog.RestorePoints(ctx, meta.Filter{})
	if err != nil {
		return res, err
	}
	inUse := map[string]bool{}
	for _, state := range []string{meta.JobRunning, meta.JobQueued} {
		js, err := m.catalog.Jobs(ctx, meta.JobFilter{State: state})
		if err != nil {
			return res, err
		}
		for _, j := range js {
			inUse[j.Base] = true
			if j.Kind != meta.JobBackup {
				inUse[j.RestorePoint] = true
			}
		}
	}
	byObject := map[[2]string][]meta.RestorePoint{}
	var order [][2]string
	for _, rp := range points {
		k := [2]string{rp.Source, rp.Object}
		if _, ok := byObject[k]; !ok {
			order = append(order, k)
		}
		byObject[k] = append(byObject[k], rp)
	}
	slices.SortFunc(order, func(a, b [2]string) int { return strings.Compare(a[0]+"/"+a[1], b[0]+"/"+b[1]) })
	now := m.now()
	for _, k := range order {
		p, err := m.catalog.PolicyFor(ctx, k[0], k[1])
		if errors.Is(err, meta.ErrNotFound) {
			continue
		}
		if err != nil {
			return res, err
		}
		r, err := retentionOf(p)
		if err != nil {
			return res, fmt.Errorf("policy %s: %w", p.Name, err)
		}
		var pts []policy.Point
		for _, rp := range byObject[k] {
			pts = append(pts, policy.Point{ID: rp.ID, Time: rp.Time, Base: rp.Base,
				Protected: inUse[rp.ID] || now.Before(rp.LockedUntil), Failed: rp.Verify.State == meta.VerifyFailed})
		}
		keep, remove := policy.Plan(pts, r, now)
		obj := api.PruneObject{Source: k[0], Object: k[1], Policy: p.Name, Kept: []api.PrunedPoint{}, Removed: []api.PrunedPoint{}}
		for _, kp := range keep {
			obj.Kept = append(obj.Kept, api.PrunedPoint{ID: kp.ID, Time: kp.Time, Reasons: kp.Reasons})
		}
		for _, rp := range remove {
			pp := api.PrunedPoint{ID: rp.ID, Time: rp.Time}
			if !dryRun {
				if err := m.catalog.DeleteRestorePoint(ctx, rp.ID, now); err != nil {
					// The catalog has the last word (a lock, a job that
					// started meanwhile): report and go on.
					pp.Error = err.Error()
					obj.Kept = append(obj.Kept, pp)
					continue
				}
				m.log.Info("restore point pruned", "restore_point", rp.ID, "policy", p.Name)
			}
			obj.Removed = append(obj.Removed, pp)
			res.Removed++
		}
		res.Kept += len(obj.Kept)
		res.Objects = append(res.Objects, obj)
	}
	return res, nil
}
