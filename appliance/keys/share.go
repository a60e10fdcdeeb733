package keys

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// Share returns a copy of the key's bytes, for handing to a node that joins
// the cluster (over the cluster's mutual TLS, after it redeemed a join
// token): every member must hold the same master key to unwrap the tenant
// keys in the replicated state. Never log or store what it returns.
func (m *Master) Share() []byte {
	out := make([]byte, masterSize)
	copy(out, m.key[:])
	return out
}

// Adopt writes a master key received from the cluster to path, sealed by
// passphrase (or, only if allowUnsealed, unsealed with mode 0600), and
// returns it. It refuses to replace an existing file with ErrExists: a node
// that already has a key belongs to some cluster.
func Adopt(path string, key, passphrase []byte, allowUnsealed bool) (*Master, Status, error) {
	if len(key) != masterSize {
		return nil, Status{}, fmt.Errorf("master key: adopt: %d bytes, want %d", len(key), masterSize)
	}
	if _, err := os.Stat(path); err == nil {
		return nil, Status{}, fmt.Errorf("master key: adopt: %s: %w", path, fs.ErrExist)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, Status{}, fmt.Errorf("master key: adopt: %w", err)
	}
	st := Status{Created: true, Sealed: len(passphrase) > 0}
	if !st.Sealed && !allowUnsealed {
		return nil, Status{}, fmt.Errorf("master key: %w to store %s", ErrPassphraseRequired, path)
	}
	m := &Master{}
	copy(m.key[:], key)
	b, err := defaultSealing.encode(m, passphrase)
	if err != nil {
		return nil, Status{}, fmt.Errorf("master key: adopt %s: %w", path, err)
	}
	if err := writeFile(path, b, false); err != nil {
		return nil, Status{}, fmt.Errorf("master key: adopt %s: %w", path, err)
	}
	return m, st, nil
}
