package meta

import (
	"context"
	"fmt"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// maxObject bounds an object's name, which becomes part of an index key.
const maxObject = 4096

// Filter selects restore points; empty fields match everything.
type Filter struct {
	Source string
	Object string
	Tenant string
}

func (f Filter) match(rp RestorePoint) bool {
	return (f.Source == "" || rp.Source == f.Source) &&
		(f.Object == "" || rp.Object == f.Object) &&
		(f.Tenant == "" || rp.Tenant == f.Tenant)
}

// CommitRestorePoint makes a restore point visible, atomically. Its ID must
// be a valid name not used before (ErrExists), its source must exist and its
// base, if set, too (ErrNotFound). An empty tenant is taken from the source;
// a different one, or a base of another tenant, is refused (ErrConflict): the
// chunks it references are sealed under its source's tenant key. An empty
// verify state is stored as VerifyNone.
func (l *Local) CommitRestorePoint(ctx context.Context, rp RestorePoint) error {
	if err := checkPoint(rp); err != nil {
		return fmt.Errorf("commit restore point %q: %w", rp.ID, err)
	}
	err := l.update(ctx, func(tx *bolt.Tx) error {
		points := tx.Bucket(bucketPoints)
		if points.Get([]byte(rp.ID)) != nil {
			return ErrExists
		}
		var src Source
		if err := get(tx, bucketSources, rp.Source, &src); err != nil {
			return fmt.Errorf("source %s: %w", rp.Source, err)
		}
		rp, err := admitPoint(rp, src, func(id string) (RestorePoint, error) {
			var base RestorePoint
			return base, get(tx, bucketPoints, id, &base)
		})
		if err != nil {
			return err
		}
		if err := put(tx, bucketPoints, rp.ID, rp); err != nil {
			return err
		}
		return tx.Bucket(bucketPointsIndex).Put(pointKey(rp), []byte(rp.ID))
	})
	if err != nil {
		return fmt.Errorf("commit restore point %s: %w", rp.ID, err)
	}
	return nil
}

// admitPoint applies the rules every catalog keeps when it commits rp, a
// restore point of source src: an empty tenant is the source's; another
// tenant, or a base of another tenant, is refused (ErrConflict), since the
// chunks are sealed under the source's tenant key; a base must exist; an
// empty verify state becomes VerifyNone. base looks up a committed point.
func admitPoint(rp RestorePoint, src Source, base func(id string) (RestorePoint, error)) (RestorePoint, error) {
	switch rp.Tenant {
	case "":
		rp.Tenant = src.Tenant
	case src.Tenant:
	default:
		return rp, fmt.Errorf("tenant %s differs from tenant %s of source %s: %w", rp.Tenant, src.Tenant, src.Name, ErrConflict)
	}
	if rp.Base != "" {
		b, err := base(rp.Base)
		if err != nil {
			return rp, fmt.Errorf("base %s: %w", rp.Base, err)
		}
		if b.Tenant != rp.Tenant {
			return rp, fmt.Errorf("base %s belongs to tenant %s: %w", b.ID, b.Tenant, ErrConflict)
		}
	}
	if rp.Verify.State == "" {
		rp.Verify.State = VerifyNone
	}
	return rp, nil
}

func checkPoint(rp RestorePoint) error {
	if err := checkName("id", rp.ID); err != nil {
		return err
	}
	if err := checkName("source", rp.Source); err != nil {
		return err
	}
	if rp.Object == "" || len(rp.Object) > maxObject {
		return fmt.Errorf("object must be 1-%d bytes: %w", maxObject, ErrInvalid)
	}
	if rp.Time.IsZero() {
		return fmt.Errorf("no time: %w", ErrInvalid)
	}
	if rp.Base == rp.ID {
		return fmt.Errorf("base is itself: %w", ErrInvalid)
	}
	if rp.Verify.State != "" {
		return checkVerify(rp.Verify)
	}
	return nil
}

func checkVerify(v VerifyState) error {
	switch v.State {
	case VerifyNone, VerifyOK, VerifyFailed:
		return nil
	}
	return fmt.Errorf("verify state %q: want %s, %s or %s: %w", v.State, VerifyNone, VerifyOK, VerifyFailed, ErrInvalid)
}

// RestorePoint returns the restore point with the given ID; ErrNotFound if
// there is none.
func (l *Local) RestorePoint(ctx context.Context, id string) (RestorePoint, error) {
	var rp RestorePoint
	err := l.view(ctx, func(tx *bolt.Tx) error {
		return get(tx, bucketPoints, id, &rp)
	})
	if err != nil {
		return RestorePoint{}, fmt.Errorf("restore point %s: %w", id, err)
	}
	return rp, nil
}

// RestorePoints returns the restore points f selects, oldest first; equal
// times are ordered by ID. With a source set only that source's index
// entries are read.
func (l *Local) RestorePoints(ctx context.Context, f Filter) ([]RestorePoint, error) {
	var out []RestorePoint
	err := l.view(ctx, func(tx *bolt.Tx) error {
		add := func(v []byte) error {
			var rp RestorePoint
			if err := decode(v, &rp); err != nil {
				return fmt.Errorf("decode restore point: %w", err)
			}
			if f.match(rp) {
				out = append(out, rp)
			}
			return nil
		}
		if f.Source == "" {
			return tx.Bucket(bucketPoints).ForEach(func(_, v []byte) error { return add(v) })
		}
		prefix := sourcePrefix(f.Source)
		if f.Object != "" {
			prefix = objectPrefix(f.Source, f.Object)
		}
		points := tx.Bucket(bucketPoints)
		var err error
		scan(tx.Bucket(bucketPointsIndex).Cursor(), prefix, func(id []byte) bool {
			v := points.Get(id)
			if v == nil {
				err = fmt.Errorf("index names missing restore point %s", id)
			} else {
				err = add(v)
			}
			return err == nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list restore points: %w", err)
	}
	slices.SortFunc(out, func(a, b RestorePoint) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// Latest returns the newest restore point of an object whose verification
// has not failed, the one an incremental backup builds on; ErrNotFound if
// there is none.
func (l *Local) Latest(ctx context.Context, source, object string) (RestorePoint, error) {
	var rp RestorePoint
	err := l.view(ctx, func(tx *bolt.Tx) error {
		points := tx.Bucket(bucketPoints)
		err := ErrNotFound
		scanReverse(tx.Bucket(bucketPointsIndex).Cursor(), objectPrefix(source, object), func(id []byte) bool {
			v := points.Get(id)
			if v == nil {
				err = fmt.Errorf("index names missing restore point %s", id)
				return false
			}
			var cand RestorePoint
			if derr := decode(v, &cand); derr != nil {
				err = fmt.Errorf("decode restore point %s: %w", id, derr)
				return false
			}
			if cand.Verify.State == VerifyFailed {
				return true
			}
			rp, err = cand, nil
			return false
		})
		return err
	})
	if err != nil {
		return RestorePoint{}, fmt.Errorf("latest restore point of %s/%s: %w", source, object, err)
	}
	return rp, nil
}

// SetVerify records the outcome of verifying a restore point; ErrNotFound if
// there is no such restore point.
func (l *Local) SetVerify(ctx context.Context, id string, v VerifyState) error {
	if err := checkVerify(v); err != nil {
		return fmt.Errorf("set verify state of %s: %w", id, err)
	}
	err := l.update(ctx, func(tx *bolt.Tx) error {
		var rp RestorePoint
		if err := get(tx, bucketPoints, id, &rp); err != nil {
			return err
		}
		rp.Verify = v
		return put(tx, bucketPoints, id, rp)
	})
	if err != nil {
		return fmt.Errorf("set verify state of %s: %w", id, err)
	}
	return nil
}
