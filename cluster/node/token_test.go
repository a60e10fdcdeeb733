package node

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"
)

func seeded(seed byte) io.Reader {
	return rand.NewChaCha8([32]byte{seed})
}

func issue(t *testing.T, tk *Tokens, now time.Time) string {
	t.Helper()
	tok, _, err := tk.Issue(now)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return tok
}

func TestTokenRedeem(t *testing.T) {
	tk := NewTokens(seeded(1), 0)
	tok, expires, err := tk.Issue(t0)
	if err != nil {
		t.Fatal(err)
	}
	if !expires.Equal(t0.Add(DefaultTokenTTL)) {
		t.Errorf("expires %v, want %v", expires, t0.Add(DefaultTokenTTL))
	}
	if !strings.HasPrefix(tok, TokenPrefix) {
		t.Errorf("token %q lacks prefix %q", tok, TokenPrefix)
	}
	other := issue(t, tk, t0)
	if other == tok {
		t.Fatal("two issues gave the same token")
	}

	if err := tk.Redeem(tok, expires.Add(-time.Nanosecond)); err != nil {
		t.Fatalf("first redeem: %v", err)
	}
	if err := tk.Redeem(tok, t0); !errors.Is(err, ErrTokenUsed) {
		t.Errorf("second redeem: %v, want ErrTokenUsed", err)
	}
	if err := tk.Redeem(other, expires); !errors.Is(err, ErrTokenExpired) {
		t.Errorf("redeem at expiry: %v, want ErrTokenExpired", err)
	}
	// An expired token stays unspent.
	if err := tk.Redeem(other, t0); err != nil {
		t.Errorf("redeem of a token refused as expired, before expiry: %v", err)
	}
}

func TestTokenUnknown(t *testing.T) {
	tk := NewTokens(seeded(1), time.Minute)
	tok := issue(t, tk, t0)
	// Another table with another source never issued tok's twin.
	stranger := issue(t, NewTokens(seeded(2), time.Minute), t0)
	flipped := tok[:len(tok)-2] + string('A'+(tok[len(tok)-2]-'A'+1)%26) + tok[len(tok)-1:]
	for _, bad := range []string{stranger, "", TokenPrefix, tok[len(TokenPrefix):], tok + "A", flipped, strings.ToUpper(tok)} {
		if err := tk.Redeem(bad, t0); !errors.Is(err, ErrTokenUnknown) {
			t.Errorf("Redeem(%q) = %v, want ErrTokenUnknown", bad, err)
		}
	}
	if err := tk.Redeem(" "+tok+"\n", t0); err != nil {
		t.Errorf("redeem of a token pasted with white space: %v", err)
	}
}

func TestTokenTableHoldsNoSecret(t *testing.T) {
	tk := NewTokens(seeded(3), time.Minute)
	var toks []string
	for i := range 5 {
		toks = append(toks, issue(t, tk, t0.Add(time.Duration(i)*time.Second)))
	}
	if err := tk.Redeem(toks[0], t0); err != nil {
		t.Fatal(err)
	}
	snap := tk.Snapshot()
	if len(snap) != len(toks) {
		t.Fatalf("snapshot holds %d records, want %d", len(snap), len(toks))
	}
	dump := []byte(fmt.Sprintf("%+v %#v", snap, snap))
	for _, r := range snap {
		dump = append(dump, r.Hash[:]...)
	}
	for _, tok := range toks {
		secret, err := ParseToken(tok)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(dump, []byte(tok[len(TokenPrefix):])) || bytes.Contains(dump, secret) {
			t.Errorf("table holds token %q in clear", tok)
		}
		h := sha256.Sum256(secret)
		if !bytes.Contains(dump, h[:]) {
			t.Errorf("table lacks the hash of %q", tok)
		}
	}
}

func TestTokenSnapshotRestore(t *testing.T) {
	tk := NewTokens(seeded(4), time.Minute)
	used := issue(t, tk, t0)
	fresh := issue(t, tk, t0.Add(time.Second))
	old := issue(t, tk, t0.Add(-time.Hour))
	if err := tk.Redeem(used, t0); err != nil {
		t.Fatal(err)
	}

	restored := NewTokens(seeded(9), time.Minute)
	restored.RestoreTokens(tk.Snapshot())
	if fmt.Sprint(restored.Snapshot()) != fmt.Sprint(tk.Snapshot()) {
		t.Fatal("snapshot of a restored table differs")
	}
	if err := restored.Redeem(used, t0); !errors.Is(err, ErrTokenUsed) {
		t.Errorf("used token after restore: %v, want ErrTokenUsed", err)
	}
	if err := restored.Redeem(old, t0); !errors.Is(err, ErrTokenExpired) {
		t.Errorf("old token after restore: %v, want ErrTokenExpired", err)
	}
	if err := restored.Redeem(fresh, t0); err != nil {
		t.Errorf("fresh token after restore: %v", err)
	}
	// Restore replaces: the source table is untouched by the restored one.
	if err := tk.Redeem(fresh, t0); err != nil {
		t.Errorf("fresh token in the source table: %v", err)
	}

	restored.RestoreTokens(nil)
	if err := restored.Redeem(fresh, t0); !errors.Is(err, ErrTokenUnknown) {
		t.Errorf("after restoring an empty table: %v, want ErrTokenUnknown", err)
	}
}

func TestTokenPrune(t *testing.T) {
	tk := NewTokens(seeded(5), time.Minute)
	old := issue(t, tk, t0)
	live := issue(t, tk, t0.Add(time.Minute))
	tk.Prune(t0.Add(time.Minute + time.Second))
	if n := len(tk.Snapshot()); n != 1 {
		t.Errorf("%d records after prune, want 1", n)
	}
	if err := tk.Redeem(old, t0); !errors.Is(err, ErrTokenUnknown) {
		t.Errorf("pruned token: %v, want ErrTokenUnknown", err)
	}
	if err := tk.Redeem(live, t0.Add(time.Minute)); err != nil {
		t.Errorf("live token: %v", err)
	}
}

func TestTokenIssueFailsWithRandomness(t *testing.T) {
	tk := NewTokens(iotest.ErrReader(errors.New("entropy gone")), 0)
	if _, _, err := tk.Issue(t0); err == nil || !strings.Contains(err.Error(), "entropy gone") {
		t.Errorf("Issue with a failing source: %v", err)
	}
	if n := len(tk.Snapshot()); n != 0 {
		t.Errorf("%d records after a failed issue", n)
	}
}

// Concurrent redeems of one token: exactly one wins.
func TestTokenRedeemOnceConcurrently(t *testing.T) {
	tk := NewTokens(seeded(6), 0)
	tok := issue(t, tk, t0)
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, used := 0, 0
	for range 16 {
		wg.Go(func() {
			err := tk.Redeem(tok, t0)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, ErrTokenUsed):
				used++
			default:
				t.Errorf("redeem: %v", err)
			}
		})
	}
	wg.Wait()
	if wins != 1 || used != 15 {
		t.Errorf("%d wins and %d used, want 1 and 15", wins, used)
	}
}
