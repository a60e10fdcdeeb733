package chunk

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"sync"
)

// KeyIDSize is the length of a key ID in bytes.
const KeyIDSize = 8

// KeyID names a tenant key in a sealed chunk's header, so a reader knows which
// key opens it and key rotation stays possible.
type KeyID [KeyIDSize]byte

// String returns the key ID as hex.
func (k KeyID) String() string { return hex.EncodeToString(k[:]) }

// SecretSize is the length of a tenant key secret.
const SecretSize = 32

// Key is a tenant's chunk key. From one 32-byte secret it derives (HKDF-SHA-256)
// an HMAC key that names chunks and an AES-256-GCM key that seals them. A Key
// is safe for concurrent use.
type Key struct {
	id   KeyID
	aead cipher.AEAD
	macs sync.Pool
}

// NewKey derives a tenant key from its secret.
func NewKey(id KeyID, secret []byte) (*Key, error) {
	if len(secret) != SecretSize {
		return nil, fmt.Errorf("new chunk key: secret is %d bytes, want %d", len(secret), SecretSize)
	}
	dedupe, err := hkdf.Key(sha256.New, secret, nil, "cairn chunk dedupe v1", 32)
	if err != nil {
		return nil, fmt.Errorf("derive dedupe key: %w", err)
	}
	enc, err := hkdf.Key(sha256.New, secret, nil, "cairn chunk seal v1", 32)
	if err != nil {
		return nil, fmt.Errorf("derive seal key: %w", err)
	}
	block, err := aes.NewCipher(enc)
	if err != nil {
		return nil, fmt.Errorf("new chunk key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("new chunk key: %w", err)
	}
	k := &Key{id: id, aead: aead}
	k.macs.New = func() any { return hmac.New(sha256.New, dedupe) }
	return k, nil
}

// ID returns the key's ID.
func (k *Key) ID() KeyID { return k.id }

// Sum returns the chunk ID of plain: HMAC-SHA-256 under the dedupe key.
func (k *Key) Sum(plain []byte) ID {
	m := k.macs.Get().(hash.Hash)
	m.Reset()
	m.Write(plain)
	var id ID
	m.Sum(id[:0])
	k.macs.Put(m)
	return id
}
