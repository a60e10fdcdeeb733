package chunk

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
)

func testKey(t testing.TB, b byte) *Key {
	t.Helper()
	k, err := NewKey(KeyID{b}, bytes.Repeat([]byte{b}, SecretSize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func random(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSealRoundTrip(t *testing.T) {
	k := testKey(t, 1)
	cases := map[string][]byte{
		"empty":        {},
		"tiny":         []byte("x"),
		"compressible": bytes.Repeat([]byte("cairn "), BlockSize/6),
		"random block": random(t, BlockSize),
		"odd random":   random(t, 12345),
	}
	for name, plain := range cases {
		t.Run(name, func(t *testing.T) {
			id := k.Sum(plain)
			sealed, err := k.Seal(nil, id, plain)
			if err != nil {
				t.Fatal(err)
			}
			if err := Check(sealed); err != nil {
				t.Fatalf("check: %v", err)
			}
			got, err := k.Unseal([]byte("prefix"), id, sealed)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got[6:], plain) || string(got[:6]) != "prefix" {
				t.Fatalf("round trip changed the data")
			}
			if bytes.Contains(sealed, plain) && len(plain) > 16 {
				t.Fatalf("plaintext visible in the sealed chunk")
			}
		})
	}
}

func TestSealCompressesOnlyWhenSmaller(t *testing.T) {
	k := testKey(t, 1)
	text := bytes.Repeat([]byte("0123456789abcdef"), BlockSize/16)
	sealed, _ := k.Seal(nil, k.Sum(text), text)
	if len(sealed) > len(text)/10 {
		t.Fatalf("compressible block sealed to %d bytes", len(sealed))
	}
	noise := random(t, BlockSize)
	sealed, _ = k.Seal(nil, k.Sum(noise), noise)
	if len(sealed) != len(noise)+Overhead {
		t.Fatalf("incompressible block sealed to %d bytes, want %d", len(sealed), len(noise)+Overhead)
	}
}

func TestSameIDAcrossKeysDiffers(t *testing.T) {
	a, b := testKey(t, 1), testKey(t, 2)
	p := []byte("same plaintext, different tenants")
	if a.Sum(p) == b.Sum(p) {
		t.Fatal("two tenants got the same chunk ID")
	}
	if a.Sum(p) != a.Sum(append([]byte(nil), p...)) {
		t.Fatal("chunk ID is not deterministic")
	}
}

func TestUnsealRejectsTampering(t *testing.T) {
	k := testKey(t, 1)
	plain := bytes.Repeat([]byte("abc"), 10000)
	id := k.Sum(plain)
	sealed, err := k.Seal(nil, id, plain)
	if err != nil {
		t.Fatal(err)
	}
	for i := range sealed {
		bad := bytes.Clone(sealed)
		bad[i] ^= 0x40
		if _, err := k.Unseal(nil, id, bad); !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrKey) {
			t.Fatalf("flipping byte %d: got %v, want ErrCorrupt", i, err)
		}
	}
	// A valid sealed chunk presented under another ID fails authentication.
	other := k.Sum([]byte("other"))
	if _, err := k.Unseal(nil, other, sealed); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("wrong id: got %v, want ErrCorrupt", err)
	}
	if _, err := testKey(t, 2).Unseal(nil, id, sealed); !errors.Is(err, ErrKey) {
		t.Fatalf("wrong key: got %v, want ErrKey", err)
	}
	if err := Check(sealed[:len(sealed)-1]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("truncated: got %v, want ErrCorrupt", err)
	}
}

func TestParseID(t *testing.T) {
	k := testKey(t, 3)
	id := k.Sum([]byte("x"))
	got, err := ParseID(id.String())
	if err != nil || got != id {
		t.Fatalf("ParseID(%s) = %v, %v", id, got, err)
	}
	for _, bad := range []string{"", "zz", id.String()[1:], id.String() + "0", "g" + id.String()[1:]} {
		if _, err := ParseID(bad); err == nil {
			t.Errorf("ParseID(%q) accepted", bad)
		}
	}
}

func FuzzUnseal(f *testing.F) {
	k := testKey(f, 1)
	for _, p := range [][]byte{{}, []byte("hello"), bytes.Repeat([]byte("ab"), 4096)} {
		id := k.Sum(p)
		s, _ := k.Seal(nil, id, p)
		f.Add(s, id[:])
	}
	f.Fuzz(func(t *testing.T, sealed, idb []byte) {
		var id ID
		copy(id[:], idb)
		plain, err := k.Unseal(nil, id, sealed)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrKey) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if k.Sum(plain) != id {
			t.Fatal("unseal returned data that does not hash to its id")
		}
	})
}

func BenchmarkSum(b *testing.B) {
	k := testKey(b, 1)
	p := random(b, BlockSize)
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		k.Sum(p)
	}
}

func BenchmarkSealRandom(b *testing.B) {
	k := testKey(b, 1)
	p := random(b, BlockSize)
	id := k.Sum(p)
	buf := make([]byte, 0, BlockSize+Overhead)
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		buf, _ = k.Seal(buf[:0], id, p)
	}
}

func BenchmarkUnsealRandom(b *testing.B) {
	k := testKey(b, 1)
	p := random(b, BlockSize)
	id := k.Sum(p)
	s, _ := k.Seal(nil, id, p)
	buf := make([]byte, 0, BlockSize)
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		buf, _ = k.Unseal(buf[:0], id, s)
	}
}

func TestSealCompressesMixedBlocks(t *testing.T) {
	// Compressible data behind an incompressible start: the samples from
	// the middle and end still find it.
	k := testKey(t, 1)
	p := append(random(t, 64<<10), bytes.Repeat([]byte("log line\n"), (BlockSize-64<<10)/9)...)
	sealed, _ := k.Seal(nil, k.Sum(p), p)
	if len(sealed) > len(p)/4 {
		t.Fatalf("mostly compressible block sealed to %d of %d bytes", len(sealed), len(p))
	}
}
