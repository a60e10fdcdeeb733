package meta

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Policy says when and how long to keep backups of the objects it is
// assigned to. The catalog checks names and ranges; the appliance checks the
// schedule and zone syntax before a policy reaches the log.
type Policy struct {
	Name string `json:"name"`
	// Schedule is when to back up, as appliance/policy parses it ("daily
	// 02:00 Europe/Berlin", "cron 0 */6 * * *"); empty for none.
	Schedule  string    `json:"schedule,omitempty"`
	Retention Retention `json:"retention"`
	// Targets are the sources ("SOURCE") and objects ("SOURCE/OBJECT") the
	// policy applies to; an object's own assignment wins over its source's.
	Targets []string  `json:"targets,omitempty"`
	Created time.Time `json:"created"`
}

// Retention is which restore points of an object to keep; all zero keeps
// every one.
type Retention struct {
	KeepLast    int `json:"keep_last,omitempty"`
	KeepHourly  int `json:"keep_hourly,omitempty"`
	KeepDaily   int `json:"keep_daily,omitempty"`
	KeepWeekly  int `json:"keep_weekly,omitempty"`
	KeepMonthly int `json:"keep_monthly,omitempty"`
	KeepYearly  int `json:"keep_yearly,omitempty"`
	// LockSeconds is the retention lock: a restore point cannot be
	// deleted, by anyone, until this long after it was taken.
	LockSeconds int64 `json:"lock_seconds,omitempty"`
	// TZ names the zone whose days, weeks and months bucket the points;
	// empty for UTC.
	TZ string `json:"tz,omitempty"`
}

type putPolicyBody struct {
	Policy Policy `json:"policy"`
}

type removePolicyBody struct {
	Name string `json:"name"`
}

func checkPolicy(p Policy) error {
	if err := checkName("policy name", p.Name); err != nil {
		return err
	}
	r := p.Retention
	for _, n := range []int{r.KeepLast, r.KeepHourly, r.KeepDaily, r.KeepWeekly, r.KeepMonthly, r.KeepYearly} {
		if n < 0 || n > 100000 {
			return fmt.Errorf("keep count %d: want 0 to 100000: %w", n, ErrInvalid)
		}
	}
	if r.LockSeconds < 0 {
		return fmt.Errorf("negative lock: %w", ErrInvalid)
	}
	seen := map[string]bool{}
	for _, t := range p.Targets {
		src, obj, _ := strings.Cut(t, "/")
		if !ValidName(src) || (strings.Contains(t, "/") && obj == "") || seen[t] {
			return fmt.Errorf("policy target %q: want SOURCE or SOURCE/OBJECT, once: %w", t, ErrInvalid)
		}
		seen[t] = true
	}
	return nil
}

func (s *state) putPolicy(p Policy) error {
	if err := checkPolicy(p); err != nil {
		return err
	}
	for _, t := range p.Targets {
		src, _, _ := strings.Cut(t, "/")
		if _, ok := s.sources[src]; !ok {
			return fmt.Errorf("policy target %s: source %s: %w", t, src, ErrNotFound)
		}
		for name, other := range s.policies {
			if name != p.Name && slices.Contains(other.Targets, t) {
				return fmt.Errorf("%s is already assigned to policy %s: %w", t, name, ErrConflict)
			}
		}
	}
	if old, ok := s.policies[p.Name]; ok {
		p.Created = old.Created
	}
	p.Targets = slices.Clone(p.Targets)
	s.policies[p.Name] = p
	return nil
}

func (s *state) removePolicy(name string) error {
	if _, ok := s.policies[name]; !ok {
		return ErrNotFound
	}
	delete(s.policies, name)
	return nil
}

// policyFor returns the policy that applies to source/object: the one
// assigned to the object, else the one assigned to its source.
func (s *state) policyFor(source, object string) (Policy, bool) {
	var bySource *Policy
	for _, name := range slices.Sorted(maps.Keys(s.policies)) {
		p := s.policies[name]
		if slices.Contains(p.Targets, source+"/"+object) {
			return p, true
		}
		if bySource == nil && slices.Contains(p.Targets, source) {
			bySource = &p
		}
	}
	if bySource != nil {
		return *bySource, true
	}
	return Policy{}, false
}

// PutPolicy creates or replaces a policy (keeping its creation time).
// Targets must name existing sources, each assigned to one policy only.
func (c *catalog) PutPolicy(ctx context.Context, p Policy) error {
	if err := checkPolicy(p); err != nil {
		return fmt.Errorf("put policy %q: %w", p.Name, err)
	}
	if _, err := c.apply(ctx, PutPolicyCommand, putPolicyBody{Policy: p}); err != nil {
		return fmt.Errorf("put policy %s: %w", p.Name, err)
	}
	return nil
}

// RemovePolicy forgets a policy; ErrNotFound if there is none.
func (c *catalog) RemovePolicy(ctx context.Context, name string) error {
	if _, err := c.apply(ctx, RemovePolicyCommand, removePolicyBody{Name: name}); err != nil {
		return fmt.Errorf("remove policy %s: %w", name, err)
	}
	return nil
}

// Policy returns the named policy.
func (c *catalog) Policy(ctx context.Context, name string) (Policy, error) {
	var p Policy
	var ok bool
	if err := c.read(ctx, func(st *state) { p, ok = st.policies[name] }); err != nil {
		return Policy{}, err
	}
	if !ok {
		return Policy{}, fmt.Errorf("policy %s: %w", name, ErrNotFound)
	}
	p.Targets = slices.Clone(p.Targets)
	return p, nil
}

// Policies lists the policies by name.
func (c *catalog) Policies(ctx context.Context) ([]Policy, error) {
	var out []Policy
	err := c.read(ctx, func(st *state) {
		for _, name := range slices.Sorted(maps.Keys(st.policies)) {
			p := st.policies[name]
			p.Targets = slices.Clone(p.Targets)
			out = append(out, p)
		}
	})
	return out, err
}

// PolicyFor returns the policy applying to an object; ErrNotFound if none.
func (c *catalog) PolicyFor(ctx context.Context, source, object string) (Policy, error) {
	var p Policy
	var ok bool
	if err := c.read(ctx, func(st *state) { p, ok = st.policyFor(source, object) }); err != nil {
		return Policy{}, err
	}
	if !ok {
		return Policy{}, fmt.Errorf("policy for %s/%s: %w", source, object, ErrNotFound)
	}
	p.Targets = slices.Clone(p.Targets)
	return p, nil
}
