package store_test

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/store"
)

func fakeID(n uint64) chunk.ID {
	return chunk.ID(sha256.Sum256(binary.LittleEndian.AppendUint64(nil, n)))
}

func TestLiveSet(t *testing.T) {
	const n = 20000
	s := store.NewLiveSet(n, 42)
	for i := range uint64(n) {
		s.Add(fakeID(i))
	}
	b, _ := s.MarshalBinary()
	var back store.LiveSet
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	for i := range uint64(n) {
		if !back.Has(fakeID(i)) {
			t.Fatalf("the set lost chunk %d", i)
		}
	}
	fp := 0
	for i := uint64(n); i < 3*n; i++ {
		if back.Has(fakeID(i)) {
			fp++
		}
	}
	if rate := float64(fp) / (2 * n); rate > 3*store.FPRate {
		t.Fatalf("false-positive rate %.4f, sized for %.4f", rate, store.FPRate)
	}
	// Another seed: other false positives, so garbage never stays forever.
	other := store.NewLiveSet(n, 43)
	for i := range uint64(n) {
		other.Add(fakeID(i))
	}
	both := 0
	for i := uint64(n); i < 3*n; i++ {
		if back.Has(fakeID(i)) && other.Has(fakeID(i)) {
			both++
		}
	}
	if both > 2 {
		t.Fatalf("%d chunks are false positives under both seeds", both)
	}
}

func FuzzLiveSet(f *testing.F) {
	s := store.NewLiveSet(10, 1)
	s.Add(fakeID(1))
	b, _ := s.MarshalBinary()
	f.Add(b)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var s store.LiveSet
		if s.UnmarshalBinary(b) != nil {
			return
		}
		s.Has(fakeID(3))
		again, _ := s.MarshalBinary()
		if string(again) != string(b) {
			t.Fatal("decode then encode changed the bytes")
		}
	})
}
