package keys

import (
	"fmt"
	"io"

	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/meta"
)

// A wrapped tenant secret, version 1:
//
//	offset  size  field
//	0       1     version (1)
//	1       12    GCM nonce (random)
//	13      48    AES-256-GCM(secret) under the tenant KEK
//
// The KEK is HKDF-SHA-256 of the master key. The additional data binds the
// version, key ID and tenant, so a wrapped secret presented under another
// tenant or key ID fails to unwrap instead of handing one tenant's key to
// another.
const (
	wrapVersion = 1
	wrappedSize = 1 + nonceSize + chunk.SecretSize + tagSize
)

func wrapAAD(tenant string, id chunk.KeyID) []byte {
	aad := append([]byte("cairn tenant key v1\x00"), wrapVersion)
	aad = append(aad, id[:]...)
	return append(aad, tenant...)
}

func (r *Ring) wrap(tenant string, id chunk.KeyID, secret []byte) ([]byte, error) {
	var nonce [nonceSize]byte
	if _, err := io.ReadFull(r.rand, nonce[:]); err != nil {
		return nil, fmt.Errorf("read nonce: %w", err)
	}
	out := make([]byte, 0, wrappedSize)
	out = append(out, wrapVersion)
	out = append(out, nonce[:]...)
	return r.kek.Seal(out, nonce[:], secret, wrapAAD(tenant, id)), nil
}

func (r *Ring) unwrap(wk meta.WrappedKey) ([]byte, error) {
	w := wk.Wrapped
	if len(w) != wrappedSize || w[0] != wrapVersion {
		return nil, fmt.Errorf("%w: wrapped key %s of tenant %s has an unknown format", ErrCorrupt, wk.KeyID, wk.Tenant)
	}
	secret, err := r.kek.Open(nil, w[1:1+nonceSize], w[1+nonceSize:], wrapAAD(wk.Tenant, wk.KeyID))
	if err != nil {
		return nil, fmt.Errorf("%w: wrapped key %s of tenant %s fails authentication: another master key, or the record was altered", ErrCorrupt, wk.KeyID, wk.Tenant)
	}
	return secret, nil
}
