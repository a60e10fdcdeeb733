package node

import (
	"errors"
	"strings"
	"testing"
)

// FuzzRedeem feeds arbitrary strings to ParseToken and Redeem: neither
// panics, a parsed token re-encodes to itself, and nothing but the issued
// token (give or take white space) redeems.
func FuzzRedeem(f *testing.F) {
	tk := NewTokens(seeded(7), 0)
	tok, _, err := tk.Issue(t0)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{tok, "", TokenPrefix, tok + "=", tok[:len(tok)-1], "cairn-join-" + strings.Repeat("_", 43), "\x00\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		secret, err := ParseToken(s)
		if err == nil {
			if len(secret) != tokenBytes {
				t.Fatalf("ParseToken(%q) gave %d bytes", s, len(secret))
			}
			if again := TokenPrefix + tokenEncoding.EncodeToString(secret); again != strings.TrimSpace(s) {
				t.Fatalf("ParseToken(%q) does not round-trip: %q", s, again)
			}
		}
		// A fresh table each time keeps the one token unspent.
		table := NewTokens(seeded(0), 0)
		table.RestoreTokens(tk.Snapshot())
		err = table.Redeem(s, t0)
		if strings.TrimSpace(s) == tok {
			if err != nil {
				t.Fatalf("issued token refused: %v", err)
			}
			return
		}
		if !errors.Is(err, ErrTokenUnknown) {
			t.Fatalf("Redeem(%q) = %v, want ErrTokenUnknown", s, err)
		}
	})
}
