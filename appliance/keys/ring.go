package keys

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/meta"
)

// KeyStore keeps wrapped tenant keys; *meta.Local satisfies it. PutKey must
// refuse with meta.ErrExists a tenant that already has a key, which is how
// two writers racing to create one agree on a single key.
type KeyStore interface {
	Keys(ctx context.Context) ([]meta.WrappedKey, error)
	PutKey(ctx context.Context, k meta.WrappedKey) error
}

// Ring hands out tenant chunk keys. It creates a tenant's key on first use,
// stores it wrapped under the master key and keeps unwrapped keys in memory
// only. A Ring is safe for concurrent use.
type Ring struct {
	store KeyStore
	rand  io.Reader
	now   func() time.Time // stamps new keys; only informational, so not injected
	kek   cipher.AEAD

	miss sync.Mutex // serialises store reads and key creation

	mu      sync.Mutex // guards the maps
	tenants map[string]*chunk.Key
	ids     map[chunk.KeyID]*chunk.Key
}

// NewRing returns a Ring over store. rand makes secrets, key IDs and nonces;
// nil means crypto/rand.
func NewRing(master *Master, store KeyStore, rand io.Reader) *Ring {
	if rand == nil {
		rand = cryptoRand
	}
	kek := master.derive("cairn tenant kek v1", 32)
	defer clear(kek)
	return &Ring{
		store:   store,
		rand:    rand,
		now:     time.Now,
		kek:     newGCM(kek),
		tenants: make(map[string]*chunk.Key),
		ids:     make(map[chunk.KeyID]*chunk.Key),
	}
}

var cryptoRand = rand.Reader

// Tenant returns the tenant's chunk key, creating and storing it on first
// use. A wrapped key that fails to unwrap (another master key, or a record
// altered or moved to another tenant) is an ErrCorrupt error, never replaced.
func (r *Ring) Tenant(ctx context.Context, tenant string) (*chunk.Key, error) {
	if !meta.ValidName(tenant) {
		return nil, fmt.Errorf("tenant key of %q: invalid tenant name: %w", tenant, meta.ErrInvalid)
	}
	if k := r.cached(tenant); k != nil {
		return k, nil
	}
	r.miss.Lock()
	defer r.miss.Unlock()
	if k := r.cached(tenant); k != nil {
		return k, nil
	}
	// Another writer may create the key between our read and our put;
	// PutKey then refuses ours and the next read finds theirs.
	for range 3 {
		k, err := r.find(ctx, func(wk meta.WrappedKey) bool { return wk.Tenant == tenant })
		if err == nil {
			return k, nil
		}
		if !errors.Is(err, meta.ErrNotFound) {
			return nil, fmt.Errorf("tenant key of %s: %w", tenant, err)
		}
		k, err = r.create(ctx, tenant)
		if err == nil {
			return k, nil
		}
		if !errors.Is(err, meta.ErrExists) {
			return nil, fmt.Errorf("tenant key of %s: %w", tenant, err)
		}
	}
	return nil, fmt.Errorf("tenant key of %s: store keeps refusing new keys: %w", tenant, meta.ErrConflict)
}

// Key returns the tenant key with the given ID, as named in a sealed
// chunk's header; an error wrapping meta.ErrNotFound if there is none.
func (r *Ring) Key(ctx context.Context, id chunk.KeyID) (*chunk.Key, error) {
	r.mu.Lock()
	k := r.ids[id]
	r.mu.Unlock()
	if k != nil {
		return k, nil
	}
	r.miss.Lock()
	defer r.miss.Unlock()
	k, err := r.find(ctx, func(wk meta.WrappedKey) bool { return wk.KeyID == id })
	if err != nil {
		return nil, fmt.Errorf("tenant key %s: %w", id, err)
	}
	return k, nil
}

func (r *Ring) cached(tenant string) *chunk.Key {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tenants[tenant]
}

// remember caches k for its tenant and ID. Callers hold r.miss, so no two
// keys for one tenant race in here.
func (r *Ring) remember(tenant string, k *chunk.Key) *chunk.Key {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tenants[tenant] = k
	r.ids[k.ID()] = k
	return k
}

// find unwraps and caches the first stored key match accepts; meta.ErrNotFound
// if none does. The caller holds r.miss.
func (r *Ring) find(ctx context.Context, match func(meta.WrappedKey) bool) (*chunk.Key, error) {
	all, err := r.store.Keys(ctx)
	if err != nil {
		return nil, err
	}
	for _, wk := range all {
		if !match(wk) {
			continue
		}
		if k := r.cached(wk.Tenant); k != nil && k.ID() == wk.KeyID {
			return k, nil
		}
		secret, err := r.unwrap(wk)
		if err != nil {
			return nil, err
		}
		k, err := chunk.NewKey(wk.KeyID, secret)
		clear(secret)
		if err != nil {
			return nil, err
		}
		return r.remember(wk.Tenant, k), nil
	}
	return nil, meta.ErrNotFound
}

// create makes, stores and caches a new key for tenant. The caller holds
// r.miss.
func (r *Ring) create(ctx context.Context, tenant string) (*chunk.Key, error) {
	secret := make([]byte, chunk.SecretSize)
	defer clear(secret)
	var id chunk.KeyID
	if _, err := io.ReadFull(r.rand, secret); err != nil {
		return nil, fmt.Errorf("read random: %w", err)
	}
	for id == (chunk.KeyID{}) {
		if _, err := io.ReadFull(r.rand, id[:]); err != nil {
			return nil, fmt.Errorf("read random: %w", err)
		}
	}
	wrapped, err := r.wrap(tenant, id, secret)
	if err != nil {
		return nil, err
	}
	k, err := chunk.NewKey(id, secret)
	if err != nil {
		return nil, err
	}
	wk := meta.WrappedKey{Tenant: tenant, KeyID: id, Wrapped: wrapped, Created: r.now()}
	if err := r.store.PutKey(ctx, wk); err != nil {
		return nil, err
	}
	return r.remember(tenant, k), nil
}
