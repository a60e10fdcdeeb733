package metatest

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/meta"
)

func testPutKey(t *testing.T, open Opener) {
	existing := meta.WrappedKey{Tenant: "acme", KeyID: chunk.KeyID{1}, Wrapped: []byte("w1"), Created: t0}
	tests := []struct {
		name string
		key  meta.WrappedKey
		want error
	}{
		{"new tenant", meta.WrappedKey{Tenant: "globex", KeyID: chunk.KeyID{2}, Wrapped: []byte("w2"), Created: t0}, nil},
		{"tenant has a key", meta.WrappedKey{Tenant: "acme", KeyID: chunk.KeyID{2}, Wrapped: []byte("w2"), Created: t0}, meta.ErrExists},
		{"key id taken", meta.WrappedKey{Tenant: "globex", KeyID: chunk.KeyID{1}, Wrapped: []byte("w2"), Created: t0}, meta.ErrExists},
		{"zero key id", meta.WrappedKey{Tenant: "globex", Wrapped: []byte("w2")}, meta.ErrInvalid},
		{"nothing wrapped", meta.WrappedKey{Tenant: "globex", KeyID: chunk.KeyID{2}}, meta.ErrInvalid},
		{"bad tenant", meta.WrappedKey{Tenant: "Globex", KeyID: chunk.KeyID{2}, Wrapped: []byte("w2")}, meta.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			l := open(t)
			if err := l.PutKey(ctx, existing); err != nil {
				t.Fatal(err)
			}
			err := l.PutKey(ctx, tt.key)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("PutKey = %v, want %v", err, tt.want)
			}
			want := []meta.WrappedKey{existing}
			if err == nil {
				want = append(want, tt.key)
			}
			if got, err := l.Keys(ctx); err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("Keys = %+v, %v\nwant %+v", got, err, want)
			}
		})
	}
}

func testKeysSortedAndCopied(t *testing.T, open Opener) {
	ctx := context.Background()
	l := open(t)
	for i, tenant := range []string{"zeta", "acme", "m"} {
		if err := l.PutKey(ctx, meta.WrappedKey{Tenant: tenant, KeyID: chunk.KeyID{byte(i + 1)}, Wrapped: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := l.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var tenants []string
	for _, k := range got {
		tenants = append(tenants, k.Tenant)
	}
	if want := []string{"acme", "m", "zeta"}; !reflect.DeepEqual(tenants, want) {
		t.Errorf("Keys tenants = %v, want %v", tenants, want)
	}
	got[0].Wrapped[0] = 0xee
	again, _ := l.Keys(ctx)
	if again[0].Wrapped[0] != 1 {
		t.Error("changing a returned key changed the stored one")
	}
}
