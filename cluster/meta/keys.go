package meta

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/cairnhq/cairn/cluster/chunk"
)

// PutKey stores a tenant's wrapped key. A tenant has one key and a key ID
// names one key: ErrExists if either is taken, since replacing a key would
// make everything sealed under the old one unreadable.
func (l *Local) PutKey(ctx context.Context, k WrappedKey) error {
	if err := checkKey(k); err != nil {
		return fmt.Errorf("put key of tenant %q: %w", k.Tenant, err)
	}
	err := l.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKeys)
		if b.Get([]byte(k.Tenant)) != nil {
			return fmt.Errorf("tenant has a key: %w", ErrExists)
		}
		err := b.ForEach(func(t, v []byte) error {
			var other WrappedKey
			if err := decode(v, &other); err != nil {
				return fmt.Errorf("decode key of tenant %s: %w", t, err)
			}
			if other.KeyID == k.KeyID {
				return fmt.Errorf("key id %s is used by tenant %s: %w", k.KeyID, other.Tenant, ErrExists)
			}
			return nil
		})
		if err != nil {
			return err
		}
		return put(tx, bucketKeys, k.Tenant, k)
	})
	if err != nil {
		return fmt.Errorf("put key of tenant %s: %w", k.Tenant, err)
	}
	return nil
}

func checkKey(k WrappedKey) error {
	if err := checkName("tenant", k.Tenant); err != nil {
		return err
	}
	if k.KeyID == (chunk.KeyID{}) {
		return fmt.Errorf("zero key id: %w", ErrInvalid)
	}
	if len(k.Wrapped) == 0 {
		return fmt.Errorf("no wrapped secret: %w", ErrInvalid)
	}
	return nil
}

// Keys returns every wrapped key, sorted by tenant.
func (l *Local) Keys(ctx context.Context) ([]WrappedKey, error) {
	var out []WrappedKey
	err := l.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketKeys).ForEach(func(t, v []byte) error {
			var k WrappedKey
			if err := decode(v, &k); err != nil {
				return fmt.Errorf("decode key of tenant %s: %w", t, err)
			}
			out = append(out, k)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	return out, nil
}
