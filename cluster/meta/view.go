package meta

import (
	"maps"
	"slices"
)

// Reads of the in-memory state. Each returns copies.

func (s *state) source(name string) (Source, bool) {
	src, ok := s.sources[name]
	return cloneSource(src), ok
}

func (s *state) sourceList() []Source {
	var out []Source
	for _, name := range slices.Sorted(maps.Keys(s.sources)) {
		out = append(out, cloneSource(s.sources[name]))
	}
	return out
}

func (s *state) point(id string) (RestorePoint, bool) {
	rp, ok := s.points[id]
	return clonePoint(rp), ok
}

// pointList returns the restore points f selects, oldest first. With source
// and object set it reads only that object's index; otherwise it reads every
// restore point.
func (s *state) pointList(f Filter) []RestorePoint {
	var out []RestorePoint
	if f.Source != "" && f.Object != "" {
		for _, id := range s.byObject[objectIndexKey(f.Source, f.Object)] {
			if rp := s.points[id]; f.match(rp) {
				out = append(out, clonePoint(rp))
			}
		}
		return out
	}
	for _, rp := range s.points {
		if f.match(rp) {
			out = append(out, clonePoint(rp))
		}
	}
	slices.SortFunc(out, comparePoints)
	return out
}

// latest returns the newest restore point of an object whose verification
// has not failed.
func (s *state) latest(source, object string) (RestorePoint, bool) {
	ids := s.byObject[objectIndexKey(source, object)]
	for i := len(ids) - 1; i >= 0; i-- {
		if rp := s.points[ids[i]]; rp.Verify.State != VerifyFailed {
			return clonePoint(rp), true
		}
	}
	return RestorePoint{}, false
}

func (s *state) job(id string) (Job, bool) {
	j, ok := s.jobs[id]
	return cloneJob(j), ok
}

// jobList returns the jobs f selects, newest first, at most f.Limit of them
// if it is positive.
func (s *state) jobList(f JobFilter) []Job {
	var out []Job
	for _, j := range s.jobs {
		if f.match(j) {
			out = append(out, j)
		}
	}
	slices.SortFunc(out, compareJobs)
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	for i := range out {
		out[i] = cloneJob(out[i])
	}
	return out
}

func (s *state) keyList() []WrappedKey {
	var out []WrappedKey
	for _, tenant := range slices.Sorted(maps.Keys(s.keys)) {
		out = append(out, cloneKey(s.keys[tenant]))
	}
	return out
}

func (s *state) membership() Membership {
	m := Membership{Epoch: s.epoch}
	for _, id := range slices.Sorted(maps.Keys(s.nodes)) {
		m.Nodes = append(m.Nodes, cloneNode(s.nodes[id]))
	}
	return m
}
