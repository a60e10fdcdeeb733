package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/store"
	"github.com/cairnhq/cairn/cluster/store/storetest"
)

type sweepStore interface {
	store.Store
	store.Sweeper
}

// TestSweep holds Local and Memory to the Sweeper contract: live chunks
// stay, unreferenced ones are tombstoned first and deleted only by a later
// sweep, and any reference in between revives them.
func TestSweep(t *testing.T) {
	for name, open := range map[string]func(t *testing.T, now func() time.Time) sweepStore{
		"local": func(t *testing.T, now func() time.Time) sweepStore {
			s, err := store.Open(t.TempDir(), store.Options{Now: now, MaxSegmentSize: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
		"memory": func(t *testing.T, now func() time.Time) sweepStore {
			return store.NewMemory(store.Options{Now: now})
		},
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			clock := storetest.NewClock(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
			s := open(t, clock.Now)
			mk := storetest.NewMaker(t, 1, 7)
			chunks := mk.Chunks(t, 40, 3000)
			for _, c := range chunks {
				if _, err := s.Put(ctx, c.ID, c.Sealed); err != nil {
					t.Fatal(err)
				}
			}
			live := map[chunk.ID]bool{}
			for _, c := range chunks[:10] {
				live[c.ID] = true
			}
			isLive := func(id chunk.ID) bool { return live[id] }

			// Round 1: everything but the live ten is old enough: tombstoned,
			// nothing deleted.
			t1 := clock.Advance(time.Hour)
			st, err := s.Sweep(ctx, isLive, t1, t1.Add(-time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if st.Scanned != 40 || st.Live != 10 || st.Tombstoned != 30 || st.Deleted != 0 {
				t.Fatalf("round 1: %+v", st)
			}
			for _, c := range chunks {
				info, err := s.Stat(ctx, c.ID)
				if err != nil || info.Tombstoned == live[c.ID] {
					t.Fatalf("chunk %d: %+v, %v", c.ID[0], info, err)
				}
			}
			// References between rounds revive: a Has, and a Put again.
			clock.Advance(time.Minute)
			if has, err := s.Has(ctx, []chunk.ID{chunks[10].ID}); err != nil || !has[0] {
				t.Fatalf("has a tombstoned chunk: %v %v", has, err)
			}
			if stored, err := s.Put(ctx, chunks[11].ID, chunks[11].Sealed); err != nil || stored {
				t.Fatalf("put a tombstoned chunk: %v %v", stored, err)
			}
			// A tombstoned chunk still reads: a restore never races a sweep.
			if _, err := s.Get(ctx, chunks[12].ID); err != nil {
				t.Fatal(err)
			}

			// Round 2, cutoff before the revivals: the 28 still tombstoned go.
			t2 := clock.Advance(time.Minute)
			st, err = s.Sweep(ctx, isLive, t1, t2)
			if err != nil {
				t.Fatal(err)
			}
			if st.Deleted != 28 || st.DeletedBytes <= 0 || st.Tombstoned != 0 || st.Live != 10 {
				t.Fatalf("round 2: %+v", st)
			}
			for i, c := range chunks {
				has, err := s.Has(ctx, []chunk.ID{c.ID})
				if err != nil {
					t.Fatal(err)
				}
				if want := i < 12; has[0] != want {
					t.Fatalf("chunk %d present=%v, want %v", i, has[0], want)
				}
			}
			// A deleted chunk may be stored again.
			if stored, err := s.Put(ctx, chunks[20].ID, chunks[20].Sealed); err != nil || !stored {
				t.Fatalf("put again after sweep: %v %v", stored, err)
			}
			// The mark found a tombstoned chunk live: it is revived, not deleted.
			t3 := clock.Advance(time.Hour)
			if _, err := s.Sweep(ctx, isLive, t3, t3); err != nil {
				t.Fatal(err)
			}
			live[chunks[20].ID] = true
			st, err = s.Sweep(ctx, isLive, time.Time{}, clock.Advance(time.Minute))
			if err != nil || st.Revived != 1 {
				t.Fatalf("round 4: %+v %v", st, err)
			}
			if has, _ := s.Has(ctx, []chunk.ID{chunks[20].ID}); !has[0] {
				t.Fatal("a live chunk was swept")
			}
		})
	}
}
