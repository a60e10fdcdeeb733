// Package chunk holds the nouns every layer of Cairn shares about stored data:
// chunk IDs, tenant keys and the sealed format a node stores. It imports
// nothing of Cairn's.
//
// A chunk ID is HMAC-SHA-256 of the plaintext under the tenant's dedupe key,
// so the same plaintext in the same tenant is stored once and tenants never
// share chunks. A sealed chunk is self-describing: a versioned header, the
// (optionally zstd-compressed) plaintext under AES-256-GCM, and an outer
// CRC32C that lets a node scrub without keys.
package chunk

import (
	"encoding/hex"
	"errors"
	"fmt"
)

// BlockSize is the default size of a disk block, and so of a data chunk.
const BlockSize = 4 << 20

// MaxPlain is the largest plaintext a chunk may hold.
const MaxPlain = 16 << 20

// IDSize is the length of a chunk ID in bytes.
const IDSize = 32

// ID names a chunk: HMAC-SHA-256 of its plaintext under the tenant's dedupe
// key. The all-zero ID is reserved for "this block is all zeros".
type ID [IDSize]byte

// Zero is the reserved ID of an all-zero block; it is never stored.
var Zero ID

// IsZero reports whether id is the reserved zero-block ID.
func (id ID) IsZero() bool { return id == Zero }

// String returns the ID as lower-case hex.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 12 hex digits, for logs and messages.
func (id ID) Short() string { return hex.EncodeToString(id[:6]) }

// MarshalText encodes the ID as hex.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText decodes a hex ID.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// ParseID decodes a 64-digit hex chunk ID.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*IDSize {
		return id, fmt.Errorf("parse chunk id %q: want %d hex digits", s, 2*IDSize)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("parse chunk id %q: %w", s, err)
	}
	return id, nil
}

// Errors returned by Unseal and Check. ErrCorrupt covers every integrity
// failure (bad CRC, bad header, failed authentication, wrong content); callers
// that repair from replicas test for it with errors.Is.
var (
	ErrCorrupt = errors.New("corrupt chunk")
	ErrKey     = errors.New("chunk sealed under another key")
)
