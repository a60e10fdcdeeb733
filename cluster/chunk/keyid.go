package chunk

import (
	"encoding/hex"
	"fmt"
)

// MarshalText encodes the key ID as hex, so records that hold one stay
// readable as JSON.
func (k KeyID) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText decodes a hex key ID.
func (k *KeyID) UnmarshalText(b []byte) error {
	v, err := ParseKeyID(string(b))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

// ParseKeyID decodes a 16-digit hex key ID.
func ParseKeyID(s string) (KeyID, error) {
	var k KeyID
	if len(s) != 2*KeyIDSize {
		return k, fmt.Errorf("parse key id %q: want %d hex digits", s, 2*KeyIDSize)
	}
	if _, err := hex.Decode(k[:], []byte(s)); err != nil {
		return k, fmt.Errorf("parse key id %q: %w", s, err)
	}
	return k, nil
}
