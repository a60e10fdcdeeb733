package keys

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/meta"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// newRing is NewRing with the clock at t0.
func newRing(master *Master, store KeyStore, rand io.Reader) *Ring {
	r := NewRing(master, store, rand)
	r.now = func() time.Time { return t0 }
	return r
}

// memStore is a KeyStore in memory that keeps the catalog's rules: one key
// per tenant, copies in and out. Tests reach into it to tamper.
type memStore struct {
	mu   sync.Mutex
	keys []meta.WrappedKey
	puts int
	err  error // returned by every call when set
}

func (s *memStore) Keys(context.Context) ([]meta.WrappedKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	out := make([]meta.WrappedKey, len(s.keys))
	for i, k := range s.keys {
		k.Wrapped = bytes.Clone(k.Wrapped)
		out[i] = k
	}
	return out, nil
}

func (s *memStore) PutKey(_ context.Context, k meta.WrappedKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	for _, old := range s.keys {
		if old.Tenant == k.Tenant || old.KeyID == k.KeyID {
			return fmt.Errorf("put key of tenant %s: %w", k.Tenant, meta.ErrExists)
		}
	}
	k.Wrapped = bytes.Clone(k.Wrapped)
	s.keys = append(s.keys, k)
	s.puts++
	return nil
}

func testMaster(t *testing.T, seed byte) *Master {
	t.Helper()
	m := &Master{}
	for i := range m.key {
		m.key[i] = seed + byte(i)
	}
	return m
}

func mustTenant(t *testing.T, r *Ring, tenant string) *chunk.Key {
	t.Helper()
	k, err := r.Tenant(context.Background(), tenant)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// opens seals a chunk under k and reports whether other opens it.
func opens(t *testing.T, k, other *chunk.Key) bool {
	t.Helper()
	plain := []byte("a block of a virtual disk")
	id := k.Sum(plain)
	sealed, err := k.Seal(nil, id, plain)
	if err != nil {
		t.Fatal(err)
	}
	got, err := other.Unseal(nil, id, sealed)
	return err == nil && bytes.Equal(got, plain)
}

func TestTenantCreatesOnce(t *testing.T) {
	store := &memStore{}
	r := newRing(testMaster(t, 1), store, nil)
	k := mustTenant(t, r, "acme")
	if again := mustTenant(t, r, "acme"); again != k {
		t.Error("second call returned another key")
	}
	if store.puts != 1 || len(store.keys) != 1 {
		t.Fatalf("store got %d puts, holds %d keys; want 1", store.puts, len(store.keys))
	}
	wk := store.keys[0]
	if wk.Tenant != "acme" || wk.KeyID != k.ID() || !wk.Created.Equal(t0) || len(wk.Wrapped) != wrappedSize {
		t.Errorf("stored %+v; want tenant acme, key id %s, created %v, %d wrapped bytes", wk, k.ID(), t0, wrappedSize)
	}
	if !opens(t, k, k) {
		t.Error("the tenant key does not open what it sealed")
	}
}

func TestTenantsGetTheirOwnKeys(t *testing.T) {
	r := newRing(testMaster(t, 1), &memStore{}, nil)
	acme, globex := mustTenant(t, r, "acme"), mustTenant(t, r, "globex")
	if acme.ID() == globex.ID() {
		t.Error("two tenants share a key id")
	}
	plain := []byte("same plaintext")
	if acme.Sum(plain) == globex.Sum(plain) {
		t.Error("two tenants give the same plaintext the same chunk id: they would share chunks")
	}
	if opens(t, acme, globex) {
		t.Error("one tenant's key opens another's chunk")
	}
}

func TestTenantPersists(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "catalog.db")
	cat, err := meta.OpenLocal(path, meta.Options{})
	if err != nil {
		t.Fatal(err)
	}
	master := testMaster(t, 1)
	first := mustTenant(t, newRing(master, cat, nil), "acme")
	if err := cat.Close(); err != nil {
		t.Fatal(err)
	}

	cat, err = meta.OpenLocal(path, meta.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	r := newRing(master, cat, nil)
	second := mustTenant(t, r, "acme")
	if second.ID() != first.ID() || !opens(t, first, second) {
		t.Error("a new ring over the same catalog gave acme another key")
	}
	byID, err := r.Key(ctx, first.ID())
	if err != nil || byID != second {
		t.Errorf("Key(%s) = %v, %v; want the tenant's key", first.ID(), byID, err)
	}
	if keys, _ := cat.Keys(ctx); len(keys) != 1 {
		t.Errorf("catalog holds %d keys, want 1", len(keys))
	}

	other := newRing(testMaster(t, 2), cat, nil)
	if _, err := other.Tenant(ctx, "acme"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Tenant under another master key = %v, want ErrCorrupt", err)
	}
}

func TestKeyByID(t *testing.T) {
	ctx := context.Background()
	store := &memStore{}
	master := testMaster(t, 1)
	acme := mustTenant(t, newRing(master, store, nil), "acme")
	mustTenant(t, newRing(master, store, nil), "globex")

	r := newRing(master, store, nil)
	k, err := r.Key(ctx, acme.ID())
	if err != nil || k.ID() != acme.ID() || !opens(t, acme, k) {
		t.Fatalf("Key(%s) = %v, %v", acme.ID(), k, err)
	}
	if tk := mustTenant(t, r, "acme"); tk != k {
		t.Error("Tenant after Key unwrapped the key again instead of using the cache")
	}
	if _, err := r.Key(ctx, chunk.KeyID{0xde, 0xad}); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("Key of an unknown id = %v, want ErrNotFound", err)
	}
	if store.puts != 2 {
		t.Errorf("lookups by id stored keys: %d puts, want 2", store.puts)
	}
}

func TestWrappedKeyBoundToTenant(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(keys []meta.WrappedKey) // keys[0] is acme, keys[1] globex
	}{
		{"tenants swapped", func(k []meta.WrappedKey) { k[0].Tenant, k[1].Tenant = k[1].Tenant, k[0].Tenant }},
		{"secret moved to the other tenant", func(k []meta.WrappedKey) {
			k[1].Wrapped = bytes.Clone(k[0].Wrapped)
		}},
		{"key id changed", func(k []meta.WrappedKey) { k[0].KeyID[0] ^= 1; k[1].KeyID[0] ^= 1 }},
		{"wrapped bit flipped", func(k []meta.WrappedKey) { k[0].Wrapped[20] ^= 1; k[1].Wrapped[20] ^= 1 }},
		{"wrapped truncated", func(k []meta.WrappedKey) { k[0].Wrapped = k[0].Wrapped[:30]; k[1].Wrapped = k[1].Wrapped[:30] }},
		{"unknown version", func(k []meta.WrappedKey) { k[0].Wrapped[0] = 2; k[1].Wrapped[0] = 2 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			store := &memStore{}
			master := testMaster(t, 1)
			r := newRing(master, store, nil)
			mustTenant(t, r, "acme")
			mustTenant(t, r, "globex")
			tt.tamper(store.keys)

			fresh := newRing(master, store, nil)
			if _, err := fresh.Tenant(ctx, "globex"); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Tenant(globex) of a tampered record = %v, want ErrCorrupt", err)
			}
			if store.puts != 2 {
				t.Errorf("a tampered record was replaced: %d puts", store.puts)
			}
		})
	}
}

func TestTenantErrors(t *testing.T) {
	ctx := context.Background()
	storeDown := errors.New("catalog unreachable")
	tests := []struct {
		name   string
		tenant string
		store  *memStore
		want   error
	}{
		{"invalid name", "Acme Corp", &memStore{}, meta.ErrInvalid},
		{"empty name", "", &memStore{}, meta.ErrInvalid},
		{"store fails", "acme", &memStore{err: storeDown}, storeDown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRing(testMaster(t, 1), tt.store, nil)
			if _, err := r.Tenant(ctx, tt.tenant); !errors.Is(err, tt.want) {
				t.Errorf("Tenant(%q) = %v, want %v", tt.tenant, err, tt.want)
			}
		})
	}
	t.Run("random fails", func(t *testing.T) {
		store := &memStore{}
		r := newRing(testMaster(t, 1), store, iotest.ErrReader(iotest.ErrTimeout))
		if _, err := r.Tenant(ctx, "acme"); !errors.Is(err, iotest.ErrTimeout) {
			t.Errorf("Tenant = %v, want the reader's error", err)
		}
		if store.puts != 0 {
			t.Error("a key was stored although random failed")
		}
	})
}

// racingStore holds every caller of Keys until n of them have read, so n
// rings all find the tenant without a key before any of them stores one, as
// two nodes might.
type racingStore struct {
	*memStore
	n       int
	mu      sync.Mutex
	read    int
	release chan struct{}
}

func (s *racingStore) Keys(ctx context.Context) ([]meta.WrappedKey, error) {
	keys, err := s.memStore.Keys(ctx)
	s.mu.Lock()
	if s.read++; s.read == s.n {
		close(s.release)
	}
	s.mu.Unlock()
	<-s.release
	return keys, err
}

func TestRingsRaceToCreate(t *testing.T) {
	const rings = 4
	store := &racingStore{memStore: &memStore{}, n: rings, release: make(chan struct{})}
	master := testMaster(t, 1)
	var mu sync.Mutex
	var ids []chunk.KeyID
	var wg sync.WaitGroup
	for range rings {
		r := newRing(master, store, nil)
		wg.Go(func() {
			k, err := r.Tenant(context.Background(), "acme")
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			ids = append(ids, k.ID())
			mu.Unlock()
		})
	}
	wg.Wait()
	if store.puts != 1 {
		t.Errorf("%d keys stored for one tenant, want 1", store.puts)
	}
	if len(ids) != rings || len(slices.Compact(ids)) != 1 {
		t.Errorf("rings hold key ids %v, want one shared id", ids)
	}
}

func TestRingConcurrentUse(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "catalog.db")
	cat, err := meta.OpenLocal(path, meta.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	r := newRing(testMaster(t, 1), cat, nil)
	tenants := []string{"a", "b", "c", "d"}
	got := make([][]*chunk.Key, len(tenants))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 8 {
		for i, tenant := range tenants {
			wg.Go(func() {
				k, err := r.Tenant(ctx, tenant)
				if err != nil {
					t.Error(err)
					return
				}
				if byID, err := r.Key(ctx, k.ID()); err != nil || byID != k {
					t.Errorf("Key(%s) = %v, %v", k.ID(), byID, err)
				}
				mu.Lock()
				got[i] = append(got[i], k)
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	for i, keys := range got {
		for _, k := range keys {
			if k != keys[0] {
				t.Errorf("tenant %s got different keys", tenants[i])
			}
		}
	}
	if stored, _ := cat.Keys(ctx); len(stored) != len(tenants) {
		t.Errorf("catalog holds %d keys, want %d", len(stored), len(tenants))
	}
}
