package store_test

import (
	"errors"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/store"
	"github.com/cairnhq/cairn/cluster/store/storetest"
)

func TestCompactReclaimsSpace(t *testing.T) {
	dir := t.TempDir()
	clock := storetest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	opts := store.Options{MaxSegmentSize: 64 << 10, Now: clock.Now}
	mk := storetest.NewMaker(t, 1, 20)
	s := openLocal(t, dir, opts)
	cs := mk.Chunks(t, 120, 4000)
	putAll(t, s, cs)
	var live, dead []storetest.Chunk
	for i, c := range cs {
		if i%3 == 0 {
			live = append(live, c)
		} else {
			dead = append(dead, c)
		}
	}
	// The last few chunks stay in the writers' open segments, which a
	// normal compaction leaves alone.
	if err := s.Delete(ctx, ids(dead)); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	refs := map[chunk.ID]time.Time{}
	for _, c := range live {
		info, _ := s.Stat(ctx, c.ID)
		refs[c.ID] = info.LastRef
	}
	before := s.Stats()

	st, err := s.Compact(ctx, store.CompactOptions{})
	if err != nil {
		t.Fatal(err)
	}
	after := s.Stats()
	t.Logf("compact: %+v; segment bytes %d -> %d", st, before.SegmentBytes, after.SegmentBytes)
	if st.SegmentsRemoved < 5 || st.ChunksMoved == 0 || st.BytesReclaimed <= 0 {
		t.Fatalf("compaction did too little: %+v", st)
	}
	// Moved chunks may have started a new segment, whose file header is
	// not counted as moved.
	slack := store.SegHeaderSize * (st.BytesMoved/opts.MaxSegmentSize + 2)
	if got := before.SegmentBytes - after.SegmentBytes; got > st.BytesReclaimed || got < st.BytesReclaimed-slack {
		t.Fatalf("segment bytes fell by %d, compaction reports %d reclaimed", got, st.BytesReclaimed)
	}
	if after.Chunks != int64(len(live)) || after.LiveBytes != before.LiveBytes {
		t.Fatalf("stats after compaction %+v, before %+v", after, before)
	}
	verify(t, s, mk.Key(), live)
	absent(t, s, dead...)
	for _, c := range live {
		info, _ := s.Stat(ctx, c.ID)
		if !info.LastRef.Equal(refs[c.ID]) {
			t.Fatalf("compaction changed a last reference from %v to %v", refs[c.ID], info.LastRef)
		}
	}

	// Forced, everything dead goes, the open segments' included.
	st, err = s.Compact(ctx, store.CompactOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	after = s.Stats()
	overhead := int64(after.Segments*store.SegHeaderSize) + after.Chunks*store.RecHeaderSize
	if after.SegmentBytes != after.LiveBytes+overhead {
		t.Fatalf("after a forced compaction (%+v) segments hold %d bytes, live data %d + overhead %d",
			st, after.SegmentBytes, after.LiveBytes, overhead)
	}
	if st, err := s.Compact(ctx, store.CompactOptions{Force: true}); err != nil || st != (store.CompactStats{}) {
		t.Fatalf("compacting a compact store: %+v, %v", st, err)
	}
	s = reopen(t, s, dir, opts)
	verify(t, s, mk.Key(), live)
	absent(t, s, dead...)
	if got := s.Stats(); got != after {
		t.Fatalf("stats after reopen %+v, want %+v", got, after)
	}
}

func TestCompactKeepsDamagedChunk(t *testing.T) {
	dir := t.TempDir()
	opts := store.Options{MaxSegmentSize: 32 << 10, Writers: 1}
	mk := storetest.NewMaker(t, 1, 21)
	s := openLocal(t, dir, opts)
	cs := mk.Chunks(t, 6, 6000)
	putAll(t, s, cs)
	first := segments(t, dir)[0]
	// Damage cs[1], which lives in the first segment, then make the rest
	// of that segment dead.
	f, err := os.OpenFile(first, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	off := int64(store.SegHeaderSize + store.RecHeaderSize + len(cs[0].Sealed) + store.RecHeaderSize + 100)
	f.WriteAt([]byte{0xff, 0xff}, off)
	f.Close()
	if err := s.Delete(ctx, []chunk.ID{cs[0].ID, cs[2].ID}); err != nil {
		t.Fatal(err)
	}
	st, err := s.Compact(ctx, store.CompactOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if st.Damaged != 1 {
		t.Fatalf("compaction stats %+v, want one damaged chunk", st)
	}
	if _, err := os.Stat(first); err != nil {
		t.Fatalf("segment holding a damaged live chunk was deleted: %v", err)
	}
	if _, err := s.Get(ctx, cs[1].ID); !errors.Is(err, chunk.ErrCorrupt) {
		t.Fatalf("damaged chunk after compaction: %v", err)
	}
	verify(t, s, mk.Key(), cs[3:])
}

// TestCompactWhileBusy runs compactions while other goroutines put, read and
// delete, then checks every surviving chunk, before and after a reopen.
func TestCompactWhileBusy(t *testing.T) {
	dir := t.TempDir()
	opts := store.Options{MaxSegmentSize: 48 << 10}
	mk := storetest.NewMaker(t, 1, 22)
	s := openLocal(t, dir, opts)
	old := mk.Chunks(t, 60, 3000)
	putAll(t, s, old)
	doomed, kept := slices.Clone(old[:30]), slices.Clone(old[30:])
	if err := s.Delete(ctx, ids(doomed[:10])); err != nil {
		t.Fatal(err)
	}
	fresh := make([][]storetest.Chunk, 3)
	for i := range fresh {
		fresh[i] = mk.Chunks(t, 40, 3000)
	}

	var wg, busy sync.WaitGroup
	errs := make(chan error, 16)
	report := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	for _, cs := range fresh {
		busy.Add(1)
		go func() {
			defer busy.Done()
			for i, c := range cs {
				if _, err := s.Put(ctx, c.ID, c.Sealed); err != nil {
					report(err)
					return
				}
				// Dead space in the open segments, for forced
				// compactions to seal and rewrite under our feet.
				if i%4 == 3 {
					if err := s.Delete(ctx, []chunk.ID{cs[i-1].ID}); err != nil {
						report(err)
						return
					}
				}
			}
		}()
	}
	busy.Add(1)
	go func() {
		defer busy.Done()
		for i := range 5 {
			for _, c := range kept {
				if _, err := s.Get(ctx, c.ID); err != nil {
					report(err)
					return
				}
			}
			if i < 2 {
				if err := s.Delete(ctx, ids(doomed[(i+1)*10:(i+2)*10])); err != nil {
					report(err)
					return
				}
			}
		}
	}()
	done := make(chan struct{})
	go func() {
		busy.Wait()
		close(done)
	}()
	moved, runs := 0, 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ; ; runs++ {
			select {
			case <-done:
				if runs >= 3 {
					return
				}
			default:
			}
			st, err := s.Compact(ctx, store.CompactOptions{Force: true})
			if err != nil {
				report(err)
				return
			}
			moved += st.ChunksMoved
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d compactions moved %d chunks", runs, moved)
	if moved == 0 {
		t.Fatal("no compaction moved anything")
	}
	all := slices.Clone(kept)
	for _, cs := range fresh {
		for i, c := range cs {
			if i%4 == 2 {
				doomed = append(doomed, c)
			} else {
				all = append(all, c)
			}
		}
	}
	verify(t, s, mk.Key(), all)
	absent(t, s, doomed...)
	s = reopen(t, s, dir, opts)
	verify(t, s, mk.Key(), all)
	absent(t, s, doomed...)
	if st := s.Stats(); st.Chunks != int64(len(all)) {
		t.Fatalf("%d chunks after reopen, want %d", st.Chunks, len(all))
	}
}

// TestGetDuringCompaction reads a chunk in a tight loop while compaction
// moves it from segment to segment and deletes the old ones: a Get that
// looked the chunk up just before a move must follow it, not fail.
func TestGetDuringCompaction(t *testing.T) {
	dir := t.TempDir()
	s := openLocal(t, dir, store.Options{Writers: 1, NoSync: true})
	mk := storetest.NewMaker(t, 1, 23)
	x := mk.Chunk(t, 2000)
	putAll(t, s, []storetest.Chunk{x})
	fillers := mk.Chunks(t, 200, 100)
	done := make(chan struct{})
	errs := make(chan error, 2)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := s.Get(ctx, x.ID); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	moved := 0
	for _, f := range fillers {
		putAll(t, s, []storetest.Chunk{f})
		if err := s.Delete(ctx, []chunk.ID{f.ID}); err != nil {
			t.Fatal(err)
		}
		st, err := s.Compact(ctx, store.CompactOptions{Force: true})
		if err != nil {
			t.Fatal(err)
		}
		moved += st.ChunksMoved
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("get while compaction moved the chunk: %v", err)
	}
	if moved < len(fillers) {
		t.Fatalf("compaction moved the chunk %d times, want %d", moved, len(fillers))
	}
}
