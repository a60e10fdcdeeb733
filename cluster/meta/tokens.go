package meta

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"
)

// JoinToken is an issued join token as the cluster keeps it: the SHA-256 of
// its secret (hex), never the secret, so neither the log nor a snapshot can
// hand one out. A token redeems once, before it expires.
type JoinToken struct {
	Hash    string    `json:"hash"`
	Expires time.Time `json:"expires"`
	// UsedBy is the ID of the node that redeemed it; empty while unused.
	UsedBy string `json:"used_by,omitempty"`
}

// Errors of RedeemJoinToken, each also wrapping a package sentinel.
var (
	ErrTokenUnknown = fmt.Errorf("unknown join token: %w", ErrNotFound)
	ErrTokenExpired = fmt.Errorf("join token expired: %w", ErrInvalid)
	ErrTokenUsed    = fmt.Errorf("join token already used: %w", ErrConflict)
)

func checkToken(t JoinToken) error {
	if b, err := hex.DecodeString(t.Hash); err != nil || len(b) != 32 {
		return fmt.Errorf("join token hash %q is not 32 bytes of hex: %w", t.Hash, ErrInvalid)
	}
	if t.Expires.IsZero() {
		return fmt.Errorf("join token without an expiry: %w", ErrInvalid)
	}
	return nil
}

// putToken records a token and forgets those that expired before it was
// issued (by the time inside the command, so every replica forgets the same).
func (s *state) putToken(t JoinToken) error {
	if err := checkToken(t); err != nil {
		return err
	}
	if t.UsedBy != "" {
		return fmt.Errorf("a new join token cannot be used: %w", ErrInvalid)
	}
	if _, ok := s.tokens[t.Hash]; ok {
		return fmt.Errorf("join token: %w", ErrExists)
	}
	issued := t.Expires.Add(-24 * time.Hour)
	for h, old := range s.tokens {
		if old.Expires.Before(issued) {
			delete(s.tokens, h)
		}
	}
	s.tokens[t.Hash] = t
	return nil
}

func (s *state) redeemToken(hash, node string, now time.Time) error {
	t, ok := s.tokens[hash]
	switch {
	case !ok:
		return ErrTokenUnknown
	case t.UsedBy != "":
		return ErrTokenUsed
	case !now.Before(t.Expires):
		return ErrTokenExpired
	}
	if err := checkName("node id", node); err != nil {
		return err
	}
	t.UsedBy = node
	s.tokens[hash] = t
	return nil
}

// PutJoinToken records an issued join token.
func (c *catalog) PutJoinToken(ctx context.Context, t JoinToken) error {
	if err := checkToken(t); err != nil {
		return fmt.Errorf("put join token: %w", err)
	}
	if _, err := c.apply(ctx, PutJoinTokenCommand, putTokenBody{Token: t}); err != nil {
		return fmt.Errorf("put join token: %w", err)
	}
	return nil
}

// RedeemJoinToken spends the token with this hash for node at now. It fails
// with ErrTokenUnknown, ErrTokenUsed or ErrTokenExpired; exactly one of
// several nodes racing to redeem one token succeeds.
func (c *catalog) RedeemJoinToken(ctx context.Context, hash, node string, now time.Time) error {
	if _, err := c.apply(ctx, RedeemJoinTokenCommand, redeemTokenBody{Hash: hash, Node: node, Now: now}); err != nil {
		return fmt.Errorf("redeem join token: %w", err)
	}
	return nil
}
