package meta

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/cluster/chunk"
)

func TestPutKey(t *testing.T) {
	existing := WrappedKey{Tenant: "acme", KeyID: chunk.KeyID{1}, Wrapped: []byte("w1"), Created: t0}
	tests := []struct {
		name string
		key  WrappedKey
		want error
	}{
		{"new tenant", WrappedKey{Tenant: "globex", KeyID: chunk.KeyID{2}, Wrapped: []byte("w2"), Created: t0}, nil},
		{"tenant has a key", WrappedKey{Tenant: "acme", KeyID: chunk.KeyID{2}, Wrapped: []byte("w2"), Created: t0}, ErrExists},
		{"key id taken", WrappedKey{Tenant: "globex", KeyID: chunk.KeyID{1}, Wrapped: []byte("w2"), Created: t0}, ErrExists},
		{"zero key id", WrappedKey{Tenant: "globex", Wrapped: []byte("w2")}, ErrInvalid},
		{"nothing wrapped", WrappedKey{Tenant: "globex", KeyID: chunk.KeyID{2}}, ErrInvalid},
		{"bad tenant", WrappedKey{Tenant: "Globex", KeyID: chunk.KeyID{2}, Wrapped: []byte("w2")}, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			l, _ := openTest(t)
			if err := l.PutKey(ctx, existing); err != nil {
				t.Fatal(err)
			}
			err := l.PutKey(ctx, tt.key)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("PutKey = %v, want %v", err, tt.want)
			}
			want := []WrappedKey{existing}
			if err == nil {
				want = append(want, tt.key)
			}
			if got, err := l.Keys(ctx); err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("Keys = %+v, %v\nwant %+v", got, err, want)
			}
		})
	}
}

func TestKeysSortedAndCopied(t *testing.T) {
	ctx := context.Background()
	l, _ := openTest(t)
	for i, tenant := range []string{"zeta", "acme", "m"} {
		if err := l.PutKey(ctx, WrappedKey{Tenant: tenant, KeyID: chunk.KeyID{byte(i + 1)}, Wrapped: []byte{byte(i)}}); err != nil {
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

func TestWrappedKeyJSON(t *testing.T) {
	k := WrappedKey{Tenant: "acme", KeyID: chunk.KeyID{0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3}, Wrapped: []byte{1}, Created: t0}
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"key_id":"deadbeef00010203"`) {
		t.Errorf("key id is not hex in JSON: %s", b)
	}
	var back WrappedKey
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, k) {
		t.Errorf("round trip = %+v, %v", back, err)
	}
	for _, bad := range []string{`"deadbeef"`, `"deadbeef0001020g"`, `"deadbeef000102030405"`} {
		if err := json.Unmarshal([]byte(`{"key_id":`+bad+`}`), &back); err == nil {
			t.Errorf("key id %s was accepted", bad)
		}
	}
}
