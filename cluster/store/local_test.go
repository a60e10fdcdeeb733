package store_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/store"
	"github.com/cairnhq/cairn/cluster/store/storetest"
)

var ctx = context.Background()

// one is for tests that lay out segment bytes by hand: a single writer
// appends to one segment at a time, in call order.
var one = store.Options{Writers: 1}

func openLocal(t *testing.T, dir string, opts store.Options) *store.Local {
	t.Helper()
	s, err := store.Open(dir, opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func reopen(t *testing.T, s *store.Local, dir string, opts store.Options) *store.Local {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	return openLocal(t, dir, opts)
}

func putAll(t *testing.T, s store.Store, cs []storetest.Chunk) {
	t.Helper()
	for _, c := range cs {
		if stored, err := s.Put(ctx, c.ID, c.Sealed); err != nil || !stored {
			t.Fatalf("put %s: stored=%v err=%v", c.ID.Short(), stored, err)
		}
	}
}

// verify checks that every chunk reads back whole and unseals.
func verify(t *testing.T, s store.Store, key *chunk.Key, cs []storetest.Chunk) {
	t.Helper()
	for _, c := range cs {
		got, err := s.Get(ctx, c.ID)
		if err != nil {
			t.Fatalf("get %s: %v", c.ID.Short(), err)
		}
		if !bytes.Equal(got, c.Sealed) {
			t.Fatalf("get %s: bytes differ", c.ID.Short())
		}
		if _, err := key.Unseal(nil, c.ID, got); err != nil {
			t.Fatalf("get %s: %v", c.ID.Short(), err)
		}
	}
}

func absent(t *testing.T, s store.Store, cs ...storetest.Chunk) {
	t.Helper()
	for _, c := range cs {
		if _, err := s.Get(ctx, c.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("get %s: %v, want ErrNotFound", c.ID.Short(), err)
		}
	}
}

func segments(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "segments", "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m)
	return m
}

func lastSegment(t *testing.T, dir string) string {
	t.Helper()
	segs := segments(t, dir)
	if len(segs) == 0 {
		t.Fatal("no segments")
	}
	return segs[len(segs)-1]
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func appendFile(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func ids(cs []storetest.Chunk) []chunk.ID {
	out := make([]chunk.ID, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

func TestReopenKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	clock := storetest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	opts := store.Options{MaxSegmentSize: 64 << 10, Now: clock.Now}
	mk := storetest.NewMaker(t, 1, 1)
	s := openLocal(t, dir, opts)
	cs := mk.Chunks(t, 40, 9000)
	putAll(t, s, cs)
	if err := s.Delete(ctx, ids(cs[:10])); err != nil {
		t.Fatal(err)
	}
	touched := clock.Advance(time.Hour)
	if _, err := s.Has(ctx, ids(cs[30:])); err != nil {
		t.Fatal(err)
	}
	before := s.Stats()
	if before.Segments < 3 {
		t.Fatalf("test setup: %d segments, want several", before.Segments)
	}

	clock.Advance(time.Hour)
	s = reopen(t, s, dir, opts)
	if after := s.Stats(); after != before {
		t.Fatalf("stats after reopen %+v, before %+v", after, before)
	}
	verify(t, s, mk.Key(), cs[10:])
	absent(t, s, cs[:10]...) // a deleted chunk stays deleted across a restart
	for i, c := range cs[10:] {
		info, err := s.Stat(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := clock.Now().Add(-2 * time.Hour)
		if i+10 >= 30 {
			want = touched
		}
		if !info.LastRef.Equal(want) {
			t.Fatalf("chunk %d: last reference %v after reopen, want %v", i+10, info.LastRef, want)
		}
	}
	more := mk.Chunks(t, 5, 9000)
	putAll(t, s, more)
	verify(t, s, mk.Key(), more)
}

func TestPutWritesNothingWhenPresentOrCorrupt(t *testing.T) {
	dir := t.TempDir()
	s := openLocal(t, dir, one)
	mk := storetest.NewMaker(t, 1, 2)
	c := mk.Chunk(t, 50_000)
	putAll(t, s, []storetest.Chunk{c})
	seg := lastSegment(t, dir)
	size := fileSize(t, seg)
	if stored, err := s.Put(ctx, c.ID, mk.Seal(t, c.Plain).Sealed); err != nil || stored {
		t.Fatalf("second put: %v %v", stored, err)
	}
	bad := bytes.Clone(c.Sealed)
	bad[100] ^= 1
	other := mk.Chunk(t, 100)
	if _, err := s.Put(ctx, other.ID, bad); !errors.Is(err, chunk.ErrCorrupt) {
		t.Fatalf("corrupt put: %v", err)
	}
	if got := fileSize(t, seg); got != size {
		t.Fatalf("segment grew from %d to %d bytes on puts that should write nothing", size, got)
	}
	if got := s.Stats(); got.Chunks != 1 || got.LiveBytes != int64(len(c.Sealed)) {
		t.Fatalf("stats %+v", got)
	}
}

func TestLockRefusesSecondOpen(t *testing.T) {
	dir := t.TempDir()
	s := openLocal(t, dir, store.Options{})
	_, err := store.Open(dir, store.Options{})
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), "pid") {
		t.Errorf("lock error does not say who holds it: %v", err)
	}
	reopen(t, s, dir, store.Options{})
}

func TestSegmentFiles(t *testing.T) {
	dir := t.TempDir()
	s := openLocal(t, dir, store.Options{MaxSegmentSize: 100 << 10, Writers: 1})
	mk := storetest.NewMaker(t, 1, 3)
	big := mk.Chunk(t, 300<<10) // larger than a segment: gets one of its own
	putAll(t, s, mk.Chunks(t, 2, 40<<10))
	putAll(t, s, []storetest.Chunk{big})
	putAll(t, s, mk.Chunks(t, 2, 40<<10))
	segs := segments(t, dir)
	var names []string
	for _, p := range segs {
		names = append(names, filepath.Base(p))
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b[:store.SegHeaderSize], store.SegmentHeader(uint64(len(names)))) {
			t.Fatalf("%s: bad file header % x", p, b[:store.SegHeaderSize])
		}
		if len(b) > 100<<10 && !bytes.Contains(b, big.Sealed) {
			t.Fatalf("%s: %d bytes, over the segment size without holding the big chunk", p, len(b))
		}
	}
	want := []string{"000000000001.seg", "000000000002.seg", "000000000003.seg"}
	if !slices.Equal(names, want) {
		t.Fatalf("segment files %v, want %v", names, want)
	}
	if st := s.Stats(); st.Segments != 3 || st.Chunks != 5 {
		t.Fatalf("stats %+v", st)
	}
}
