// Package keys holds Cairn's key hierarchy: one master key per cluster and,
// under it, one chunk key per tenant.
//
// The master key is 32 random bytes made at first start and kept in a file,
// sealed by an admin passphrase (argon2id, then AES-256-GCM) or, only when
// the caller allows it, unsealed with mode 0600. Tenant key secrets are made
// on first use, wrapped under a key derived from the master key with the
// tenant and key ID bound in, and kept in a KeyStore (the catalog); unwrapped
// keys live only in memory.
//
// No type here prints, logs or marshals key material.
package keys

import "errors"

// Errors, tested with errors.Is; the returned errors say which file or tenant.
var (
	ErrPassphraseRequired = errors.New("passphrase required")
	ErrWrongPassphrase    = errors.New("wrong passphrase")
	ErrUnsealed           = errors.New("key file not sealed")
	ErrPermissions        = errors.New("key file readable by others")
	ErrCorrupt            = errors.New("corrupt key")
)
