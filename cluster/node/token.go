package node

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultTokenTTL is how long a join token stays redeemable.
const DefaultTokenTTL = 15 * time.Minute

// TokenPrefix starts every join token, so that one pasted in the wrong
// place is recognised (and found by secret scanners).
const TokenPrefix = "cairn-join-"

const tokenBytes = 32

var tokenEncoding = base64.RawURLEncoding

// Errors of Redeem.
var (
	ErrTokenUnknown = errors.New("unknown join token")
	ErrTokenExpired = errors.New("join token expired")
	ErrTokenUsed    = errors.New("join token already used")
)

// TokenRecord is one issued token as stored: the SHA-256 of its secret,
// never the secret itself.
type TokenRecord struct {
	Hash    [sha256.Size]byte
	Expires time.Time
	Used    bool
}

// Tokens is the leader's table of join tokens. Each redeems once, before
// it expires. It is safe for concurrent use.
type Tokens struct {
	rand io.Reader
	ttl  time.Duration

	mu      sync.Mutex
	records []TokenRecord
}

// NewTokens returns an empty table whose tokens draw their secret from
// rand and live for ttl (DefaultTokenTTL if ttl is not positive).
func NewTokens(rand io.Reader, ttl time.Duration) *Tokens {
	if ttl <= 0 {
		ttl = DefaultTokenTTL
	}
	return &Tokens{rand: rand, ttl: ttl}
}

// Issue makes a token redeemable until the returned time. The token is
// returned once and not kept.
func (t *Tokens) Issue(now time.Time) (string, time.Time, error) {
	secret := make([]byte, tokenBytes)
	if _, err := io.ReadFull(t.rand, secret); err != nil {
		return "", time.Time{}, fmt.Errorf("issue join token: %w", err)
	}
	expires := now.Add(t.ttl)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.records = append(t.records, TokenRecord{Hash: sha256.Sum256(secret), Expires: expires})
	return TokenPrefix + tokenEncoding.EncodeToString(secret), expires, nil
}

// Redeem spends token at now. It fails with ErrTokenUnknown for a token
// never issued (or malformed, or pruned), ErrTokenUsed for one already
// redeemed and ErrTokenExpired for one whose expiry is not after now.
func (t *Tokens) Redeem(token string, now time.Time) error {
	secret, err := ParseToken(token)
	if err != nil {
		return fmt.Errorf("redeem: %w: %w", ErrTokenUnknown, err)
	}
	hash := sha256.Sum256(secret)
	t.mu.Lock()
	defer t.mu.Unlock()
	// Compare against every record in constant time, so the time taken
	// says nothing about which hashes the table holds.
	found := -1
	for i := range t.records {
		if subtle.ConstantTimeCompare(t.records[i].Hash[:], hash[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return fmt.Errorf("redeem: %w", ErrTokenUnknown)
	}
	rec := &t.records[found]
	switch {
	case rec.Used:
		return fmt.Errorf("redeem: %w", ErrTokenUsed)
	case !now.Before(rec.Expires):
		return fmt.Errorf("redeem: %w at %s", ErrTokenExpired, rec.Expires.UTC().Format(time.RFC3339))
	}
	rec.Used = true
	return nil
}

// Prune forgets tokens that expired before now; redeeming one afterwards
// reports ErrTokenUnknown instead of ErrTokenExpired or ErrTokenUsed.
func (t *Tokens) Prune(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.records = slices.DeleteFunc(t.records, func(r TokenRecord) bool { return r.Expires.Before(now) })
}

// Snapshot returns the table, ordered by expiry then hash so that equal
// tables give equal snapshots.
func (t *Tokens) Snapshot() []TokenRecord {
	t.mu.Lock()
	out := slices.Clone(t.records)
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b TokenRecord) int {
		if c := a.Expires.Compare(b.Expires); c != 0 {
			return c
		}
		return bytes.Compare(a.Hash[:], b.Hash[:])
	})
	return out
}

// RestoreTokens replaces the table with records, as taken by Snapshot.
func (t *Tokens) RestoreTokens(records []TokenRecord) {
	rs := slices.Clone(records)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.records = rs
}

// ParseToken returns the secret a join token carries, refusing anything
// but the prefix followed by 32 bytes in unpadded URL-safe base64.
// Surrounding white space, as pasted from a terminal, is ignored.
func ParseToken(token string) ([]byte, error) {
	token = strings.TrimSpace(token)
	rest, ok := strings.CutPrefix(token, TokenPrefix)
	if !ok {
		return nil, fmt.Errorf("join token lacks the %q prefix", TokenPrefix)
	}
	if len(rest) != tokenEncoding.EncodedLen(tokenBytes) {
		return nil, fmt.Errorf("join token has %d characters after its prefix, want %d", len(rest), tokenEncoding.EncodedLen(tokenBytes))
	}
	// The decoder skips newlines; a token has none.
	if i := strings.IndexFunc(rest, notBase64URL); i >= 0 {
		return nil, fmt.Errorf("join token has an unexpected character at %d after its prefix", i)
	}
	secret, err := tokenEncoding.Strict().DecodeString(rest)
	if err != nil {
		return nil, fmt.Errorf("join token: %w", err)
	}
	return secret, nil
}

func notBase64URL(c rune) bool {
	return !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_')
}
