package meta

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/cairnhq/cairn/cluster/chunk"
)

// state is the replicated catalog in memory: records by key plus the indexes
// Latest and RemoveSource need. Stored values are never changed in place and
// index slices are replaced, never appended to, so a shallow clone of the
// maps is an immutable view (see clone).
type state struct {
	sources  map[string]Source
	points   map[string]RestorePoint
	byObject map[string][]string // objectIndexKey → IDs by time, then ID
	bySource map[string]int      // source → number of restore points
	jobs     map[string]Job
	active   map[string]struct{} // IDs of queued and running jobs
	keys     map[string]WrappedKey
	keyIDs   map[chunk.KeyID]string // key ID → tenant
	nodes    map[string]Node
	epoch    uint64
	tokens   map[string]JoinToken // by hash
	gc       GCRound              // the latest garbage-collection round
	policies map[string]Policy
	runs     map[string]Run // scheduled runs by Run.key
}

func newState() *state {
	return &state{
		sources:  map[string]Source{},
		points:   map[string]RestorePoint{},
		byObject: map[string][]string{},
		bySource: map[string]int{},
		jobs:     map[string]Job{},
		active:   map[string]struct{}{},
		keys:     map[string]WrappedKey{},
		keyIDs:   map[chunk.KeyID]string{},
		nodes:    map[string]Node{},
		tokens:   map[string]JoinToken{},
		policies: map[string]Policy{},
		runs:     map[string]Run{},
	}
}

// clone returns a view that later changes to s do not affect. It copies the
// maps, not the values they hold.
func (s *state) clone() *state {
	return &state{
		sources:  maps.Clone(s.sources),
		points:   maps.Clone(s.points),
		byObject: maps.Clone(s.byObject),
		bySource: maps.Clone(s.bySource),
		jobs:     maps.Clone(s.jobs),
		active:   maps.Clone(s.active),
		keys:     maps.Clone(s.keys),
		keyIDs:   maps.Clone(s.keyIDs),
		nodes:    maps.Clone(s.nodes),
		epoch:    s.epoch,
		tokens:   maps.Clone(s.tokens),
		gc:       s.gc,
		policies: maps.Clone(s.policies),
		runs:     maps.Clone(s.runs),
	}
}

// objectIndexKey joins source and object; source names never hold a zero
// byte (ValidName).
func objectIndexKey(source, object string) string {
	return source + "\x00" + object
}

func comparePoints(a, b RestorePoint) int {
	if c := a.Time.Compare(b.Time); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// compareJobs orders jobs newest first, then by ID descending.
func compareJobs(a, b Job) int {
	if c := b.Created.Compare(a.Created); c != 0 {
		return c
	}
	return strings.Compare(b.ID, a.ID)
}

func (s *state) addSource(src Source) error {
	if err := checkSource(src); err != nil {
		return err
	}
	if _, ok := s.sources[src.Name]; ok {
		return ErrExists
	}
	s.sources[src.Name] = src
	return nil
}

func (s *state) removeSource(name string) error {
	if _, ok := s.sources[name]; !ok {
		return ErrNotFound
	}
	if n := s.bySource[name]; n > 0 {
		return fmt.Errorf("%d restore points still belong to it: %w", n, ErrConflict)
	}
	for _, pn := range slices.Sorted(maps.Keys(s.policies)) {
		for _, t := range s.policies[pn].Targets {
			if src, _, _ := strings.Cut(t, "/"); src == name {
				return fmt.Errorf("policy %s is assigned to %s: %w", pn, t, ErrConflict)
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(s.active)) {
		if j := s.jobs[id]; j.Source == name {
			return fmt.Errorf("job %s (%s) still uses it: %w", j.ID, j.State, ErrConflict)
		}
	}
	delete(s.sources, name)
	return nil
}

func (s *state) commit(rp RestorePoint) error {
	if err := checkPoint(rp); err != nil {
		return err
	}
	if _, ok := s.points[rp.ID]; ok {
		return ErrExists
	}
	src, ok := s.sources[rp.Source]
	if !ok {
		return fmt.Errorf("source %s: %w", rp.Source, ErrNotFound)
	}
	// Fencing: a job that was interrupted (its node declared down, its
	// lease expired) or canceled may have been retried; its late restore
	// point would be a second one for the same run.
	if j, ok := s.jobs[rp.Job]; ok && rp.Job != "" && j.State != JobRunning {
		return fmt.Errorf("restore point of job %s: the job is %s, no longer running: %w", rp.Job, j.State, ErrConflict)
	}
	rp, err := admitPoint(rp, src, func(id string) (RestorePoint, error) {
		b, ok := s.points[id]
		if !ok {
			return b, ErrNotFound
		}
		return b, nil
	})
	if err != nil {
		return err
	}
	s.insertPoint(rp)
	return nil
}

// insertPoint stores rp and indexes it, replacing the index slice.
func (s *state) insertPoint(rp RestorePoint) {
	s.points[rp.ID] = rp
	s.bySource[rp.Source]++
	key := objectIndexKey(rp.Source, rp.Object)
	ids := s.byObject[key]
	i, _ := slices.BinarySearchFunc(ids, rp, func(id string, rp RestorePoint) int {
		return comparePoints(s.points[id], rp)
	})
	s.byObject[key] = slices.Insert(slices.Clip(ids), i, rp.ID)
}

func (s *state) setVerify(id string, v VerifyState) error {
	if err := checkVerify(v); err != nil {
		return err
	}
	rp, ok := s.points[id]
	if !ok {
		return ErrNotFound
	}
	rp.Verify = v
	s.points[id] = rp
	return nil
}

func (s *state) putJob(j Job) error {
	if err := checkJob(j); err != nil {
		return err
	}
	s.jobs[j.ID] = j
	if active(j.State) {
		s.active[j.ID] = struct{}{}
	} else {
		delete(s.active, j.ID)
	}
	return nil
}

// interrupt marks every queued or running job interrupted at now and
// returns them newest first.
func (s *state) interrupt(node string, now time.Time) []Job {
	var out []Job
	for _, id := range slices.Sorted(maps.Keys(s.active)) {
		if !s.jobs[id].runsOn(node) {
			continue
		}
		j := interrupted(s.jobs[id], now)
		s.jobs[id] = j
		delete(s.active, id)
		out = append(out, cloneJob(j))
	}
	slices.SortFunc(out, compareJobs)
	return out
}

func (s *state) putKey(k WrappedKey) error {
	if err := checkKey(k); err != nil {
		return err
	}
	if _, ok := s.keys[k.Tenant]; ok {
		return fmt.Errorf("tenant has a key: %w", ErrExists)
	}
	if other, ok := s.keyIDs[k.KeyID]; ok {
		return fmt.Errorf("key id %s is used by tenant %s: %w", k.KeyID, other, ErrExists)
	}
	s.keys[k.Tenant] = k
	s.keyIDs[k.KeyID] = k.Tenant
	return nil
}

// setNode adds or replaces a member; the epoch moves only if something
// changed.
func (s *state) setNode(n Node) error {
	if err := checkNode(n); err != nil {
		return err
	}
	if old, ok := s.nodes[n.ID]; ok && old.Address == n.Address && old.State == n.State && old.API == n.API && maps.Equal(old.Labels, n.Labels) {
		return nil
	}
	s.nodes[n.ID] = n
	s.epoch++
	return nil
}

func (s *state) removeNode(id string) error {
	if _, ok := s.nodes[id]; !ok {
		return ErrNotFound
	}
	delete(s.nodes, id)
	s.epoch++
	return nil
}
