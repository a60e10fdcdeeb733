package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/store"
)

func (e *env) lastRef(id chunk.ID) time.Time {
	e.t.Helper()
	info, err := e.s.Stat(e.ctx, id)
	if err != nil {
		e.t.Fatalf("stat %s: %v", id.Short(), err)
	}
	return info.LastRef
}

func (e *env) wantLastRef(id chunk.ID, want time.Time, after string) {
	e.t.Helper()
	if got := e.lastRef(id); !got.Equal(want) {
		e.t.Fatalf("after %s: last reference %v, want %v", after, got, want)
	}
}

func testLastRef(e *env) {
	a, b := e.mk.Chunk(e.t, 100), e.mk.Chunk(e.t, 100)
	t0 := e.clock.Now()
	e.put(a)
	e.wantLastRef(a.ID, t0, "put")

	t1 := e.clock.Advance(time.Hour)
	if _, err := e.s.Has(e.ctx, []chunk.ID{b.ID, a.ID}); err != nil {
		e.t.Fatal(err)
	}
	e.wantLastRef(a.ID, t1, "has")
	e.mustBeAbsent(b.ID)

	e.clock.Advance(time.Hour)
	e.mustGet(a)
	e.lastRef(a.ID)
	e.wantLastRef(a.ID, t1, "get and stat, which are not references")

	t3 := e.clock.Advance(24 * time.Hour)
	if stored, err := e.s.Put(e.ctx, a.ID, a.Sealed); err != nil || stored {
		e.t.Fatalf("put again: %v, %v", stored, err)
	}
	e.wantLastRef(a.ID, t3, "a second put")

	e.put(b)
	t4 := e.clock.Advance(time.Minute)
	if _, err := e.s.Has(e.ctx, []chunk.ID{b.ID}); err != nil {
		e.t.Fatal(err)
	}
	seen := map[chunk.ID]time.Time{}
	e.s.Walk(e.ctx, func(id chunk.ID, info store.Info) error {
		seen[id] = info.LastRef
		return nil
	})
	if !seen[a.ID].Equal(t3) || !seen[b.ID].Equal(t4) {
		e.t.Fatalf("walk reports last references %v and %v, want %v and %v", seen[a.ID], seen[b.ID], t3, t4)
	}
}

func testWalk(e *env) {
	cs := e.mk.Chunks(e.t, 40, 64)
	want := map[chunk.ID]int64{}
	for _, c := range cs {
		e.put(c)
		want[c.ID] = int64(len(c.Sealed))
	}
	var prev *chunk.ID
	n := 0
	err := e.s.Walk(e.ctx, func(id chunk.ID, info store.Info) error {
		if prev != nil && bytes.Compare(prev[:], id[:]) >= 0 {
			return fmt.Errorf("walk out of order: %s after %s", id.Short(), prev.Short())
		}
		prev = &id
		size, ok := want[id]
		if !ok {
			return fmt.Errorf("walk visited unknown chunk %s", id.Short())
		}
		if info.Size != size {
			return fmt.Errorf("walk: chunk %s size %d, want %d", id.Short(), info.Size, size)
		}
		// fn may use the store.
		if _, err := e.s.Get(e.ctx, id); err != nil {
			return err
		}
		n++
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	if n != len(want) {
		e.t.Fatalf("walk visited %d chunks, want %d", n, len(want))
	}
}

func testWalkStops(e *env) {
	for _, c := range e.mk.Chunks(e.t, 10, 64) {
		e.put(c)
	}
	stop := errors.New("enough")
	n := 0
	err := e.s.Walk(e.ctx, func(chunk.ID, store.Info) error {
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 3 {
		e.t.Fatalf("walk stopped after %d visits with %v, want 3 and the callback's error", n, err)
	}
}

func testCancelledContext(e *env) {
	kept, fresh := e.mk.Chunk(e.t, 100), e.mk.Chunk(e.t, 100)
	e.put(kept)
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	check := func(op string, err error) {
		e.t.Helper()
		if !errors.Is(err, context.Canceled) {
			e.t.Errorf("%s with a cancelled context: %v", op, err)
		}
	}
	_, err := e.s.Put(ctx, fresh.ID, fresh.Sealed)
	check("put", err)
	_, err = e.s.Get(ctx, kept.ID)
	check("get", err)
	_, err = e.s.Has(ctx, []chunk.ID{kept.ID})
	check("has", err)
	_, err = e.s.Stat(ctx, kept.ID)
	check("stat", err)
	check("delete", e.s.Delete(ctx, []chunk.ID{kept.ID}))
	check("walk", e.s.Walk(ctx, func(chunk.ID, store.Info) error { return nil }))
	e.mustBeAbsent(fresh.ID)
	e.mustGet(kept)
}

// testConcurrent races writers storing the same chunks, readers and
// deleters; run it with -race.
func testConcurrent(e *env) {
	const workers, n = 8, 48
	shared := e.mk.Chunks(e.t, n, 20_000)
	doomed := e.mk.Chunks(e.t, n, 500)
	for _, c := range doomed {
		e.put(c)
	}
	var stored [n]atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for _, i := range rng.Perm(n) {
				c := shared[i]
				ok, err := e.s.Put(e.ctx, c.ID, c.Sealed)
				if err != nil {
					errs <- err
					return
				}
				if ok {
					stored[i].Add(1)
				}
				got, err := e.s.Get(e.ctx, c.ID)
				if err != nil || !bytes.Equal(got, c.Sealed) {
					errs <- fmt.Errorf("get %s right after put: %v", c.ID.Short(), err)
					return
				}
				if has, err := e.s.Has(e.ctx, []chunk.ID{c.ID, doomed[i].ID}); err != nil || !has[0] {
					errs <- fmt.Errorf("has %s right after put: %v %v", c.ID.Short(), has, err)
					return
				}
			}
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				if err := e.s.Delete(e.ctx, []chunk.ID{doomed[i].ID}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		e.t.Fatal(err)
	}
	for i, c := range shared {
		if got := stored[i].Load(); got != 1 {
			e.t.Fatalf("chunk %s: %d concurrent puts reported storing it, want exactly 1", c.ID.Short(), got)
		}
		e.mustGet(c)
	}
	for _, c := range doomed {
		e.mustBeAbsent(c.ID)
	}
}

func testClosed(e *env) {
	c := e.mk.Chunk(e.t, 100)
	e.put(c)
	if err := e.s.Close(); err != nil {
		e.t.Fatalf("close: %v", err)
	}
	check := func(op string, err error) {
		e.t.Helper()
		if !errors.Is(err, store.ErrClosed) {
			e.t.Errorf("%s after close: %v, want ErrClosed", op, err)
		}
	}
	_, err := e.s.Put(e.ctx, c.ID, c.Sealed)
	check("put", err)
	_, err = e.s.Get(e.ctx, c.ID)
	check("get", err)
	_, err = e.s.Has(e.ctx, []chunk.ID{c.ID})
	check("has", err)
	_, err = e.s.Stat(e.ctx, c.ID)
	check("stat", err)
	check("delete", e.s.Delete(e.ctx, []chunk.ID{c.ID}))
	check("walk", e.s.Walk(e.ctx, func(chunk.ID, store.Info) error { return nil }))
	check("close", e.s.Close())
}
