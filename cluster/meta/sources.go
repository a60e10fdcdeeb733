package meta

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// AddSource records a new source. Its name and tenant must be valid names
// (ValidName) and its kind set; ErrExists if the name is taken.
func (l *Local) AddSource(ctx context.Context, s Source) error {
	if err := checkSource(s); err != nil {
		return fmt.Errorf("add source %q: %w", s.Name, err)
	}
	err := l.update(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bucketSources).Get([]byte(s.Name)) != nil {
			return ErrExists
		}
		return put(tx, bucketSources, s.Name, s)
	})
	if err != nil {
		return fmt.Errorf("add source %s: %w", s.Name, err)
	}
	return nil
}

func checkSource(s Source) error {
	if err := checkName("name", s.Name); err != nil {
		return err
	}
	if err := checkName("tenant", s.Tenant); err != nil {
		return err
	}
	if s.Kind == "" {
		return fmt.Errorf("no kind: %w", ErrInvalid)
	}
	return nil
}

// Source returns the named source; ErrNotFound if there is none.
func (l *Local) Source(ctx context.Context, name string) (Source, error) {
	var s Source
	err := l.view(ctx, func(tx *bolt.Tx) error {
		return get(tx, bucketSources, name, &s)
	})
	if err != nil {
		return Source{}, fmt.Errorf("source %s: %w", name, err)
	}
	return s, nil
}

// Sources returns every source, sorted by name.
func (l *Local) Sources(ctx context.Context) ([]Source, error) {
	var out []Source
	err := l.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSources).ForEach(func(k, v []byte) error {
			var s Source
			if err := decode(v, &s); err != nil {
				return fmt.Errorf("decode source %s: %w", k, err)
			}
			out = append(out, s)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list sources: %w", err)
	}
	return out, nil
}

// RemoveSource forgets a source. It refuses with ErrConflict while restore
// points of the source exist or a queued or running job uses it: removing it
// would orphan them.
func (l *Local) RemoveSource(ctx context.Context, name string) error {
	err := l.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSources)
		if b.Get([]byte(name)) == nil {
			return ErrNotFound
		}
		n := 0
		scan(tx.Bucket(bucketPointsIndex).Cursor(), sourcePrefix(name), func([]byte) bool {
			n++
			return true
		})
		if n > 0 {
			return fmt.Errorf("%d restore points still belong to it: %w", n, ErrConflict)
		}
		jobs, err := activeJobs(tx)
		if err != nil {
			return err
		}
		for _, j := range jobs {
			if j.Source == name {
				return fmt.Errorf("job %s (%s) still uses it: %w", j.ID, j.State, ErrConflict)
			}
		}
		return b.Delete([]byte(name))
	})
	if err != nil {
		return fmt.Errorf("remove source %s: %w", name, err)
	}
	return nil
}
