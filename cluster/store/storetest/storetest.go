// Package storetest holds every chunk store to the store.Store contract with
// one suite of tests, run against real sealed chunks.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/store"
)

// Run holds the stores made by open to the Store contract. Each subtest
// opens a fresh, empty store and closes it when done. Tests of last-reference
// times need a clock they control and are skipped; a store that takes a
// clock should use RunClock instead.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	run(t, func(t *testing.T, _ *Clock) store.Store { return open(t) }, false)
}

// RunClock is Run for stores that take a clock: open must make a store that
// reads the time only from now.
func RunClock(t *testing.T, open func(t *testing.T, now func() time.Time) store.Store) {
	run(t, func(t *testing.T, c *Clock) store.Store { return open(t, c.Now) }, true)
}

// env is one subtest's store and its tools.
type env struct {
	t     *testing.T
	s     store.Store
	clock *Clock
	mk    *Maker
	ctx   context.Context
}

// epoch is where the suite's clock starts.
var epoch = time.Date(2031, 3, 14, 15, 9, 26, 0, time.UTC)

func run(t *testing.T, open func(*testing.T, *Clock) store.Store, haveClock bool) {
	tests := []struct {
		name  string
		clock bool
		fn    func(e *env)
	}{
		{"PutGet", false, testPutGet},
		{"GetReturnsCopy", false, testGetReturnsCopy},
		{"PutKeepsNoReference", false, testPutKeepsNoReference},
		{"PutTwiceKeepsFirst", false, testPutTwiceKeepsFirst},
		{"PutRejectsCorrupt", false, testPutRejectsCorrupt},
		{"PutRejectsZeroID", false, testPutRejectsZeroID},
		{"NotFound", false, testNotFound},
		{"HasBatch", false, testHasBatch},
		{"Delete", false, testDelete},
		{"DeletedCanBePutAgain", false, testDeletedCanBePutAgain},
		{"Stat", false, testStat},
		{"LastRef", true, testLastRef},
		{"Walk", false, testWalk},
		{"WalkStops", false, testWalkStops},
		{"CancelledContext", false, testCancelledContext},
		{"Concurrent", false, testConcurrent},
		{"Closed", false, testClosed},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.clock && !haveClock {
				t.Skip("needs a store that takes a clock (RunClock)")
			}
			clock := NewClock(epoch)
			s := open(t, clock)
			t.Cleanup(func() { s.Close() })
			tc.fn(&env{t: t, s: s, clock: clock, mk: NewMaker(t, 7, uint64(i)), ctx: context.Background()})
		})
	}
}

func (e *env) put(c Chunk) {
	e.t.Helper()
	stored, err := e.s.Put(e.ctx, c.ID, c.Sealed)
	if err != nil {
		e.t.Fatalf("put %s: %v", c.ID.Short(), err)
	}
	if !stored {
		e.t.Fatalf("put %s: new chunk reported as already stored", c.ID.Short())
	}
}

// mustGet checks that id reads back as want and unseals to plain.
func (e *env) mustGet(c Chunk) {
	e.t.Helper()
	got, err := e.s.Get(e.ctx, c.ID)
	if err != nil {
		e.t.Fatalf("get %s: %v", c.ID.Short(), err)
	}
	if !bytes.Equal(got, c.Sealed) {
		e.t.Fatalf("get %s: %d bytes differ from the %d stored", c.ID.Short(), len(got), len(c.Sealed))
	}
	plain, err := e.mk.Key().Unseal(nil, c.ID, got)
	if err != nil || !bytes.Equal(plain, c.Plain) {
		e.t.Fatalf("get %s: does not unseal to its plaintext: %v", c.ID.Short(), err)
	}
}

func (e *env) mustBeAbsent(id chunk.ID) {
	e.t.Helper()
	if _, err := e.s.Get(e.ctx, id); !errors.Is(err, store.ErrNotFound) {
		e.t.Fatalf("get %s: err %v, want ErrNotFound", id.Short(), err)
	}
	if _, err := e.s.Stat(e.ctx, id); !errors.Is(err, store.ErrNotFound) {
		e.t.Fatalf("stat %s: err %v, want ErrNotFound", id.Short(), err)
	}
}

func testPutGet(e *env) {
	sizes := []int{0, 1, 4000, 100_000, chunk.BlockSize}
	var all []Chunk
	for _, n := range sizes {
		c := e.mk.Chunk(e.t, n)
		e.put(c)
		e.mustGet(c)
		all = append(all, c)
	}
	compressible := e.mk.Seal(e.t, bytes.Repeat([]byte("cairn "), 10_000))
	e.put(compressible)
	all = append(all, compressible)
	for _, c := range all {
		e.mustGet(c)
	}
}

func testGetReturnsCopy(e *env) {
	c := e.mk.Chunk(e.t, 1000)
	e.put(c)
	got, err := e.s.Get(e.ctx, c.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := range got {
		got[i] = 0xAA
	}
	e.mustGet(c)
}

func testPutKeepsNoReference(e *env) {
	c := e.mk.Chunk(e.t, 1000)
	in := bytes.Clone(c.Sealed)
	if _, err := e.s.Put(e.ctx, c.ID, in); err != nil {
		e.t.Fatal(err)
	}
	for i := range in {
		in[i] = 0x55
	}
	e.mustGet(c)
}

func testPutTwiceKeepsFirst(e *env) {
	c := e.mk.Chunk(e.t, 5000)
	e.put(c)
	// Sealing the same plaintext again gives other bytes (a new nonce)
	// under the same ID; the store must keep the first.
	again := e.mk.Seal(e.t, c.Plain)
	if bytes.Equal(again.Sealed, c.Sealed) || again.ID != c.ID {
		e.t.Fatal("test setup: resealing should change the bytes, not the ID")
	}
	stored, err := e.s.Put(e.ctx, again.ID, again.Sealed)
	if err != nil || stored {
		e.t.Fatalf("second put: stored=%v err=%v, want false, nil", stored, err)
	}
	e.mustGet(c)
}

func testPutRejectsCorrupt(e *env) {
	c := e.mk.Chunk(e.t, 3000)
	flip := func(i int) []byte {
		b := bytes.Clone(c.Sealed)
		b[i] ^= 0x10
		return b
	}
	cases := map[string][]byte{
		"magic":     flip(0),
		"header":    flip(10),
		"body":      flip(len(c.Sealed) / 2),
		"crc":       flip(len(c.Sealed) - 1),
		"truncated": c.Sealed[:len(c.Sealed)-1],
		"extended":  append(bytes.Clone(c.Sealed), 0),
		"short":     c.Sealed[:chunk.Overhead-1],
		"empty":     {},
		"nil":       nil,
	}
	for name, b := range cases {
		stored, err := e.s.Put(e.ctx, c.ID, b)
		if !errors.Is(err, chunk.ErrCorrupt) || stored {
			e.t.Errorf("%s: put stored=%v err=%v, want ErrCorrupt", name, stored, err)
		}
	}
	e.mustBeAbsent(c.ID)
	e.put(c)
	e.mustGet(c)
}

func testPutRejectsZeroID(e *env) {
	c := e.mk.Chunk(e.t, 100)
	if stored, err := e.s.Put(e.ctx, chunk.Zero, c.Sealed); err == nil || stored {
		e.t.Fatalf("put under the zero ID: stored=%v err=%v, want an error", stored, err)
	}
	e.mustBeAbsent(chunk.Zero)
}

func testNotFound(e *env) {
	c := e.mk.Chunk(e.t, 100)
	e.mustBeAbsent(c.ID)
	has, err := e.s.Has(e.ctx, []chunk.ID{c.ID})
	if err != nil || len(has) != 1 || has[0] {
		e.t.Fatalf("has of an absent chunk: %v, %v", has, err)
	}
	if err := e.s.Delete(e.ctx, []chunk.ID{c.ID}); err != nil {
		e.t.Fatalf("delete of an absent chunk: %v", err)
	}
	e.mustBeAbsent(c.ID)
}

func testHasBatch(e *env) {
	cs := e.mk.Chunks(e.t, 6, 200)
	for i, c := range cs {
		if i%2 == 0 {
			e.put(c)
		}
	}
	ids := []chunk.ID{cs[0].ID, cs[1].ID, cs[2].ID, cs[3].ID, cs[4].ID, cs[5].ID, cs[1].ID, cs[0].ID}
	want := []bool{true, false, true, false, true, false, false, true}
	got, err := e.s.Has(e.ctx, ids)
	if err != nil {
		e.t.Fatal(err)
	}
	if len(got) != len(want) {
		e.t.Fatalf("has answered %d of %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			e.t.Fatalf("has = %v, want %v", got, want)
		}
	}
	got, err = e.s.Has(e.ctx, nil)
	if err != nil || len(got) != 0 {
		e.t.Fatalf("has of no ids: %v, %v", got, err)
	}
	// Has must not create anything.
	e.mustBeAbsent(cs[1].ID)
}

func testDelete(e *env) {
	cs := e.mk.Chunks(e.t, 5, 300)
	for _, c := range cs {
		e.put(c)
	}
	absent := e.mk.Chunk(e.t, 10)
	if err := e.s.Delete(e.ctx, []chunk.ID{cs[1].ID, absent.ID, cs[3].ID, cs[1].ID}); err != nil {
		e.t.Fatal(err)
	}
	e.mustBeAbsent(cs[1].ID)
	e.mustBeAbsent(cs[3].ID)
	for _, i := range []int{0, 2, 4} {
		e.mustGet(cs[i])
	}
	has, err := e.s.Has(e.ctx, []chunk.ID{cs[0].ID, cs[1].ID, cs[3].ID})
	if err != nil || !has[0] || has[1] || has[2] {
		e.t.Fatalf("has after delete: %v, %v", has, err)
	}
	var walked []chunk.ID
	e.s.Walk(e.ctx, func(id chunk.ID, _ store.Info) error { walked = append(walked, id); return nil })
	if len(walked) != 3 {
		e.t.Fatalf("walk after delete saw %d chunks, want 3", len(walked))
	}
}

func testDeletedCanBePutAgain(e *env) {
	c := e.mk.Chunk(e.t, 700)
	e.put(c)
	if err := e.s.Delete(e.ctx, []chunk.ID{c.ID}); err != nil {
		e.t.Fatal(err)
	}
	again := e.mk.Seal(e.t, c.Plain)
	e.put(again)
	e.mustGet(again)
}

func testStat(e *env) {
	c := e.mk.Chunk(e.t, 12345)
	e.put(c)
	info, err := e.s.Stat(e.ctx, c.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	if info.Size != int64(len(c.Sealed)) {
		e.t.Fatalf("stat size %d, want %d", info.Size, len(c.Sealed))
	}
	if info.LastRef.IsZero() {
		e.t.Fatal("stat: zero last reference")
	}
}
