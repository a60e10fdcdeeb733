package store_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/store"
	"github.com/cairnhq/cairn/cluster/store/storetest"
)

// TestTornTailIsCut appends what a crash mid-append leaves behind to the
// active segment and checks that Open cuts exactly that off.
func TestTornTailIsCut(t *testing.T) {
	mk := storetest.NewMaker(t, 1, 10)
	torn := mk.Chunk(t, 30_000)
	rec := store.RecordBytes(store.KindPut, torn.ID, torn.Sealed)
	garbage := bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 1000)
	cases := map[string][]byte{
		"half a header":           rec[:store.RecHeaderSize/2],
		"header only":             rec[:store.RecHeaderSize],
		"record cut mid-chunk":    rec[:len(rec)/2],
		"record cut before crc":   rec[:len(rec)-1],
		"garbage":                 garbage,
		"zeros":                   make([]byte, 5000),
		"half record and garbage": append(bytes.Clone(rec[:len(rec)/2]), garbage...),
	}
	for name, tail := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s := openLocal(t, dir, one)
			cs := mk.Chunks(t, 3, 20_000)
			putAll(t, s, cs)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			seg := lastSegment(t, dir)
			good := fileSize(t, seg)
			appendFile(t, seg, tail)

			s = openLocal(t, dir, one)
			if got := fileSize(t, seg); got != good {
				t.Fatalf("segment is %d bytes after recovery, want the %d before the torn tail", got, good)
			}
			verify(t, s, mk.Key(), cs)
			absent(t, s, torn)
			putAll(t, s, []storetest.Chunk{torn})
			verify(t, s, mk.Key(), append(cs, torn))
			s = reopen(t, s, dir, one)
			verify(t, s, mk.Key(), append(cs, torn))
		})
	}
}

// TestUnindexedRecordsAreIndexed leaves records that were appended and synced
// but whose index transaction never committed, as a crash between the two
// would, and checks that Open indexes those stored by Put, and not a
// compaction copy of a chunk that is no longer indexed.
func TestUnindexedRecordsAreIndexed(t *testing.T) {
	dir := t.TempDir()
	mk := storetest.NewMaker(t, 1, 11)
	s := openLocal(t, dir, one)
	cs := mk.Chunks(t, 3, 10_000)
	putAll(t, s, cs)
	gone := mk.Chunk(t, 10_000)
	putAll(t, s, []storetest.Chunk{gone})
	if err := s.Delete(ctx, []chunk.ID{gone.ID}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	lost := mk.Chunks(t, 2, 10_000)
	seg := lastSegment(t, dir)
	var tail []byte
	for _, c := range lost {
		tail = append(tail, store.RecordBytes(store.KindPut, c.ID, c.Sealed)...)
	}
	tail = append(tail, store.RecordBytes(store.KindCopy, gone.ID, gone.Sealed)...)
	tail = append(tail, store.RecordBytes(store.KindPut, cs[0].ID, mk.Seal(t, cs[0].Plain).Sealed)...)
	appendFile(t, seg, tail)
	size := fileSize(t, seg)

	s = openLocal(t, dir, one)
	verify(t, s, mk.Key(), append(cs, lost...))
	absent(t, s, gone)
	if st := s.Stats(); st.Chunks != 5 {
		t.Fatalf("%d chunks after recovery, want 5", st.Chunks)
	}
	if got := fileSize(t, seg); got != size {
		t.Fatalf("recovery changed the segment from %d to %d bytes", size, got)
	}
	// Indexed once is enough: a second open must not count them again.
	s = reopen(t, s, dir, one)
	if st := s.Stats(); st.Chunks != 5 {
		t.Fatalf("%d chunks after a second open, want 5", st.Chunks)
	}
}

// TestRebuildFromSegments loses index.db and opens the store again.
func TestRebuildFromSegments(t *testing.T) {
	dir := t.TempDir()
	opts := store.Options{MaxSegmentSize: 50_000}
	mk := storetest.NewMaker(t, 1, 12)
	s := openLocal(t, dir, opts)
	cs := mk.Chunks(t, 20, 9000)
	putAll(t, s, cs)
	if _, err := s.Compact(ctx, store.CompactOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "index.db")); err != nil {
		t.Fatal(err)
	}
	s = openLocal(t, dir, opts)
	verify(t, s, mk.Key(), cs)
	if st := s.Stats(); st.Chunks != int64(len(cs)) {
		t.Fatalf("rebuilt index holds %d chunks, want %d", st.Chunks, len(cs))
	}
}

// TestIndexPastEndOfSegment makes the disk lose acknowledged bytes: the index
// points past the end of a segment. The store must say so, not serve
// garbage, and must not append where the index expects old data.
func TestIndexPastEndOfSegment(t *testing.T) {
	dir := t.TempDir()
	mk := storetest.NewMaker(t, 1, 13)
	s := openLocal(t, dir, one)
	cs := mk.Chunks(t, 3, 10_000)
	putAll(t, s, cs)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	seg := lastSegment(t, dir)
	short := fileSize(t, seg) - int64(len(cs[2].Sealed))/2
	if err := os.Truncate(seg, short); err != nil {
		t.Fatal(err)
	}

	s = openLocal(t, dir, one)
	if got := fileSize(t, seg); got != short {
		t.Fatalf("open changed the short segment to %d bytes", got)
	}
	verify(t, s, mk.Key(), cs[:2])
	_, err := s.Get(ctx, cs[2].ID)
	if !errors.Is(err, chunk.ErrCorrupt) || !strings.Contains(err.Error(), "past the end") {
		t.Fatalf("get of a chunk past the end of its segment: %v", err)
	}
	var damaged []chunk.ID
	st, err := s.Scrub(ctx, func(id chunk.ID, err error) error {
		damaged = append(damaged, id)
		return nil
	})
	if err != nil || st.Chunks != 3 || len(damaged) != 1 || damaged[0] != cs[2].ID {
		t.Fatalf("scrub: %+v %v, damaged %v", st, err, damaged)
	}
	fresh := mk.Chunks(t, 2, 10_000)
	putAll(t, s, fresh)
	if got := fileSize(t, seg); got != short {
		t.Fatalf("a put appended to the short segment")
	}
	s = reopen(t, s, dir, one)
	verify(t, s, mk.Key(), append(cs[:2], fresh...))
}

// TestMissingSegment deletes a sealed segment file behind the store's back.
func TestMissingSegment(t *testing.T) {
	dir := t.TempDir()
	opts := store.Options{MaxSegmentSize: 30_000, Writers: 1}
	mk := storetest.NewMaker(t, 1, 14)
	s := openLocal(t, dir, opts)
	cs := mk.Chunks(t, 6, 10_000)
	putAll(t, s, cs)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(segments(t, dir)[0]); err != nil {
		t.Fatal(err)
	}
	s = openLocal(t, dir, opts)
	_, err := s.Get(ctx, cs[0].ID)
	if !errors.Is(err, chunk.ErrCorrupt) || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("get from a missing segment: %v", err)
	}
	verify(t, s, mk.Key(), cs[2:])
	n := 0
	if _, err := s.Scrub(ctx, func(chunk.ID, error) error { n++; return nil }); err != nil || n != 2 {
		t.Fatalf("scrub reported %d damaged (%v), want the 2 in the missing segment", n, err)
	}
}

// TestBitFlip damages stored bytes under an open store: Get must refuse
// them, Scrub must name them, and recovery must not mistake damage to the
// last record for a torn tail.
func TestBitFlip(t *testing.T) {
	dir := t.TempDir()
	mk := storetest.NewMaker(t, 1, 15)
	s := openLocal(t, dir, one)
	cs := mk.Chunks(t, 4, 10_000)
	putAll(t, s, cs)
	seg := lastSegment(t, dir)
	rec := int64(store.RecHeaderSize + len(cs[0].Sealed))
	flip := func(off int64) {
		f, err := os.OpenFile(seg, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		b := make([]byte, 1)
		f.ReadAt(b, off)
		b[0] ^= 0x04
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
	base := int64(store.SegHeaderSize)
	flip(base + 1*rec + store.RecHeaderSize + 5000) // chunk 1's ciphertext
	flip(base + 2*rec + 20)                         // chunk 2's record header (its ID)
	flip(base + 3*rec + rec - 1)                    // chunk 3's CRC, the last byte of the file

	for _, i := range []int{1, 2, 3} {
		if _, err := s.Get(ctx, cs[i].ID); !errors.Is(err, chunk.ErrCorrupt) {
			t.Fatalf("get of damaged chunk %d: %v, want ErrCorrupt", i, err)
		}
	}
	verify(t, s, mk.Key(), cs[:1])
	scrub := func() map[chunk.ID]bool {
		got := map[chunk.ID]bool{}
		st, err := s.Scrub(ctx, func(id chunk.ID, err error) error {
			if !errors.Is(err, chunk.ErrCorrupt) {
				t.Errorf("scrub error for %s does not wrap ErrCorrupt: %v", id.Short(), err)
			}
			got[id] = true
			return nil
		})
		if err != nil || st.Chunks != 4 || st.Damaged != 3 {
			t.Fatalf("scrub: %+v, %v", st, err)
		}
		return got
	}
	got := scrub()
	for _, i := range []int{1, 2, 3} {
		if !got[cs[i].ID] {
			t.Fatalf("scrub did not report damaged chunk %d", i)
		}
	}
	size := fileSize(t, seg)
	s = reopen(t, s, dir, one)
	if fileSize(t, seg) != size {
		t.Fatal("recovery cut acknowledged records off as if they were a torn tail")
	}
	scrub()
	verify(t, s, mk.Key(), cs[:1])
}

// TestCrashDuringSegmentCreation leaves what a crash while a writer starts
// a segment can: the segment listed as open in the index, and its file
// missing, torn inside its header, or holding the header alone.
func TestCrashDuringSegmentCreation(t *testing.T) {
	cases := map[string]func(path string) []byte{
		"no file":      nil,
		"torn header":  func(string) []byte { return store.SegmentHeader(2)[:10] },
		"empty file":   func(string) []byte { return []byte{} },
		"whole header": func(string) []byte { return store.SegmentHeader(2) },
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			mk := storetest.NewMaker(t, 1, 16)
			s := openLocal(t, dir, one)
			cs := mk.Chunks(t, 3, 1000)
			putAll(t, s, cs)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if err := store.MarkOpen(dir, 2, store.SegHeaderSize); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "segments", "000000000002.seg")
			if content != nil {
				if err := os.WriteFile(path, content(path), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			s = openLocal(t, dir, one)
			verify(t, s, mk.Key(), cs)
			if _, err := os.Stat(path); err == nil && fileSize(t, path) < store.SegHeaderSize {
				t.Fatalf("a torn segment file was left behind")
			}
			more := mk.Chunks(t, 3, 1000)
			putAll(t, s, more)
			s = reopen(t, s, dir, one)
			verify(t, s, mk.Key(), append(cs, more...))
			if _, err := s.Compact(ctx, store.CompactOptions{Force: true}); err != nil {
				t.Fatal(err)
			}
			verify(t, s, mk.Key(), append(cs, more...))
		})
	}
}

// TestGetChecksRecordID swaps two whole, valid records of the same size, as
// a misdirected write would: every check but the ID's passes.
func TestGetChecksRecordID(t *testing.T) {
	dir := t.TempDir()
	mk := storetest.NewMaker(t, 1, 17)
	s := openLocal(t, dir, one)
	cs := mk.Chunks(t, 2, 5000)
	putAll(t, s, cs)
	seg := lastSegment(t, dir)
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	rec := store.RecHeaderSize + len(cs[0].Sealed)
	first := bytes.Clone(b[store.SegHeaderSize : store.SegHeaderSize+rec])
	copy(b[store.SegHeaderSize:], b[store.SegHeaderSize+rec:store.SegHeaderSize+2*rec])
	copy(b[store.SegHeaderSize+rec:], first)
	if err := os.WriteFile(seg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if _, err := s.Get(ctx, c.ID); !errors.Is(err, chunk.ErrCorrupt) {
			t.Fatalf("get %s from a swapped record: %v, want ErrCorrupt", c.ID.Short(), err)
		}
	}
}
