package meta

import (
	"maps"
	"slices"
)

// The in-memory state stores copies and hands out copies, as the package
// contract requires; these make them.

func cloneSource(s Source) Source {
	s.Config = maps.Clone(s.Config)
	return s
}

func clonePoint(rp RestorePoint) RestorePoint {
	rp.Disks = slices.Clone(rp.Disks)
	return rp
}

func cloneJob(j Job) Job {
	j.Messages = slices.Clone(j.Messages)
	if j.Verify != nil {
		v := *j.Verify
		v.Errors = slices.Clone(v.Errors)
		j.Verify = &v
	}
	return j
}

func cloneKey(k WrappedKey) WrappedKey {
	k.Wrapped = slices.Clone(k.Wrapped)
	return k
}
