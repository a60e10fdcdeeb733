package meta

import (
	"context"
	"fmt"
	"slices"
	"time"
)

type deletePointBody struct {
	ID  string    `json:"id"`
	Now time.Time `json:"now"`
}

// deletePoint forgets a restore point, unless its retention lock has not
// expired by now (no one may delete it, admins included), a running
// backup uses it as its base, or a running restore or verify reads it. Its chunks stay until garbage collection
// finds them unreferenced. Restore points built on it stay whole: every
// restore point is a full one.
func (s *state) deletePoint(id string, now time.Time) error {
	rp, ok := s.points[id]
	if !ok {
		return ErrNotFound
	}
	if now.Before(rp.LockedUntil) {
		return fmt.Errorf("restore point %s is under a retention lock until %s: %w", id, rp.LockedUntil.UTC().Format(time.RFC3339), ErrConflict)
	}
	for jid := range s.active {
		j := s.jobs[jid]
		if j.Base == id {
			return fmt.Errorf("restore point %s is the base of running job %s: %w", id, j.ID, ErrConflict)
		}
		if j.Kind != JobBackup && j.RestorePoint == id {
			return fmt.Errorf("running %s job %s reads restore point %s: %w", j.Kind, j.ID, id, ErrConflict)
		}
	}
	delete(s.points, id)
	if s.bySource[rp.Source]--; s.bySource[rp.Source] == 0 {
		delete(s.bySource, rp.Source)
	}
	key := objectIndexKey(rp.Source, rp.Object)
	ids := slices.DeleteFunc(slices.Clone(s.byObject[key]), func(x string) bool { return x == id })
	if len(ids) == 0 {
		delete(s.byObject, key)
	} else {
		s.byObject[key] = ids
	}
	return nil
}

// DeleteRestorePoint forgets a restore point at now; ErrNotFound if there
// is none, ErrConflict while its retention lock holds or a running backup
// builds on it.
func (c *catalog) DeleteRestorePoint(ctx context.Context, id string, now time.Time) error {
	if _, err := c.apply(ctx, DeletePointCommand, deletePointBody{ID: id, Now: now}); err != nil {
		return fmt.Errorf("delete restore point %s: %w", id, err)
	}
	return nil
}
