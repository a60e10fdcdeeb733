package keys

import (
	"crypto/cipher"
	"encoding/json"
	"fmt"
	"io"
)

// Secrets seals sources' credentials under the master key, so that the
// catalog (and every Raft replica and snapshot of it) holds them encrypted.
//
// A sealed record, version 1: version (1 byte), GCM nonce (12 bytes, random),
// AES-256-GCM of the JSON object of secrets. The key is HKDF-SHA-256 of the
// master key under its own label; the additional data binds the version and
// the source name, so a record copied onto another source fails to open.
type Secrets struct {
	aead cipher.AEAD
	rand io.Reader
}

const secretsVersion = 1

// NewSecrets returns a sealer under master. rand makes nonces; nil means
// crypto/rand.
func NewSecrets(master *Master, rand io.Reader) *Secrets {
	if rand == nil {
		rand = cryptoRand
	}
	k := master.derive("cairn source secrets v1", 32)
	defer clear(k)
	return &Secrets{aead: newGCM(k), rand: rand}
}

func secretsAAD(source string) []byte {
	return append([]byte("cairn source secrets v1\x00\x01"), source...)
}

// Seal encrypts a source's secrets; nil or empty secrets seal to nil.
func (s *Secrets) Seal(source string, secrets map[string]string) ([]byte, error) {
	if len(secrets) == 0 {
		return nil, nil
	}
	plain, err := json.Marshal(secrets)
	if err != nil {
		return nil, fmt.Errorf("encode secrets of %s: %w", source, err)
	}
	defer clear(plain)
	var nonce [nonceSize]byte
	if _, err := io.ReadFull(s.rand, nonce[:]); err != nil {
		return nil, fmt.Errorf("read nonce: %w", err)
	}
	out := make([]byte, 0, 1+nonceSize+len(plain)+tagSize)
	out = append(out, secretsVersion)
	out = append(out, nonce[:]...)
	return s.aead.Seal(out, nonce[:], plain, secretsAAD(source)), nil
}

// Open decrypts what Seal made for the same source; nil opens to nil.
func (s *Secrets) Open(source string, sealed []byte) (map[string]string, error) {
	if len(sealed) == 0 {
		return nil, nil
	}
	if len(sealed) < 1+nonceSize+tagSize || sealed[0] != secretsVersion {
		return nil, fmt.Errorf("%w: the secrets of source %s have an unknown format", ErrCorrupt, source)
	}
	plain, err := s.aead.Open(nil, sealed[1:1+nonceSize], sealed[1+nonceSize:], secretsAAD(source))
	if err != nil {
		return nil, fmt.Errorf("%w: the secrets of source %s fail authentication: another master key, or the record was altered", ErrCorrupt, source)
	}
	defer clear(plain)
	var out map[string]string
	if err := json.Unmarshal(plain, &out); err != nil {
		return nil, fmt.Errorf("%w: the secrets of source %s do not decode", ErrCorrupt, source)
	}
	return out, nil
}
