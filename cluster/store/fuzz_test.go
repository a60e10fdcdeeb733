package store_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/store"
	"github.com/cairnhq/cairn/cluster/store/storetest"
)

// fuzzSeeds returns a valid segment of a few records and damaged variants.
func fuzzSeeds(t testing.TB) [][]byte {
	mk := storetest.NewMaker(t, 3, 99)
	seg := store.SegmentHeader(1)
	for _, n := range []int{0, 10, 700} {
		c := mk.Chunk(t, n)
		seg = append(seg, store.RecordBytes(store.KindPut, c.ID, c.Sealed)...)
	}
	c := mk.Chunk(t, 50)
	seg = append(seg, store.RecordBytes(store.KindCopy, c.ID, c.Sealed)...)
	flipped := bytes.Clone(seg)
	flipped[len(flipped)/2] ^= 1
	return [][]byte{
		seg,
		seg[:len(seg)-7],
		seg[:store.SegHeaderSize+store.RecHeaderSize+3],
		flipped,
		append(bytes.Clone(seg), 0xff, 0x00, 0x13),
		seg[:store.SegHeaderSize],
		seg[:10],
		{},
	}
}

// FuzzScan feeds arbitrary bytes to the recovery scan as a segment file: it
// must not panic, must only report records that are whole and pass every
// check, and must report where the valid prefix ends.
func FuzzScan(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, end, err := store.ScanSegment(data)
		if err != nil {
			t.Fatalf("scan of in-memory bytes failed: %v", err)
		}
		if end < store.SegHeaderSize || (end > int64(len(data)) && len(data) >= store.SegHeaderSize) {
			t.Fatalf("scan ended at %d of %d bytes", end, len(data))
		}
		next := int64(store.SegHeaderSize)
		for _, r := range recs {
			if r.Off != next {
				t.Fatalf("record at %d, want %d: records must be back to back", r.Off, next)
			}
			if err := chunk.Check(r.Sealed); err != nil {
				t.Fatalf("scan reported a record that fails its check: %v", err)
			}
			if r.Kind != store.KindPut && r.Kind != store.KindCopy {
				t.Fatalf("record kind %d", r.Kind)
			}
			rec := store.RecordBytes(r.Kind, r.ID, r.Sealed)
			if !bytes.Equal(data[r.Off:r.Off+int64(len(rec))], rec) {
				t.Fatalf("record at %d is not what the file holds", r.Off)
			}
			next = r.Off + int64(len(rec))
		}
		if len(recs) > 0 && next != end {
			t.Fatalf("records end at %d, scan says %d", next, end)
		}
	})
}

// FuzzOpen puts arbitrary bytes where a segment file belongs, with no index,
// and opens the store: it must open, serve exactly the records that are
// valid, and take new chunks.
func FuzzOpen(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	mk := storetest.NewMaker(f, 3, 100)
	fresh := mk.Chunk(f, 300)
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "segments"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "segments", "000000000001.seg"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := store.Open(dir, store.Options{NoSync: true})
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		defer s.Close()
		n := 0
		err = s.Walk(ctx, func(id chunk.ID, _ store.Info) error {
			n++
			_, err := s.Get(ctx, id)
			return err
		})
		if err != nil {
			t.Fatalf("a recovered chunk does not read back: %v", err)
		}
		if st, err := s.Scrub(ctx, func(_ chunk.ID, err error) error { return err }); err != nil || st.Chunks != n {
			t.Fatalf("scrub: %+v, %v", st, err)
		}
		if _, err := s.Put(ctx, fresh.ID, fresh.Sealed); err != nil {
			t.Fatalf("put after recovery: %v", err)
		}
		if _, err := s.Get(ctx, fresh.ID); err != nil {
			t.Fatalf("get after recovery: %v", err)
		}
	})
}

// TestFuzzSeeds keeps the fuzz targets honest: the valid seed must yield all
// its records, and a damaged one fewer.
func TestFuzzSeeds(t *testing.T) {
	seeds := fuzzSeeds(t)
	recs, end, err := store.ScanSegment(seeds[0])
	if err != nil || len(recs) != 4 || end != int64(len(seeds[0])) {
		t.Fatalf("valid segment: %d records, end %d of %d, %v", len(recs), end, len(seeds[0]), err)
	}
	recs, end, _ = store.ScanSegment(seeds[1])
	if len(recs) != 3 || end != recs[2].Off+int64(store.RecHeaderSize+len(recs[2].Sealed)) {
		t.Fatalf("torn segment: %d records, end %d", len(recs), end)
	}
}
