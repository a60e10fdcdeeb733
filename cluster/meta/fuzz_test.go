package meta

import (
	"bytes"
	"errors"
	"testing"

	"github.com/cairnhq/cairn/cluster/chunk"
)

// FuzzRestore feeds damaged snapshot streams to Restore: it must fail
// cleanly or accept a state that persists and restores to the same bytes.
func FuzzRestore(f *testing.F) {
	// A small seed with every record type keeps minimizing fast.
	small := NewFSM()
	mustApply(f, small,
		mustCmd(f, SetNodeCommand, setNodeBody{testNode("n1")}),
		mustCmd(f, AddSourceCommand, addSourceBody{Source{Name: "s", Kind: "f", Tenant: "t"}}),
		mustCmd(f, CommitRestorePointCommand, commitBody{RestorePoint{ID: "a", Source: "s", Object: "o", Time: t0}}),
		mustCmd(f, CommitRestorePointCommand, commitBody{RestorePoint{ID: "b", Source: "s", Object: "o", Time: t0, Base: "a"}}),
		mustCmd(f, PutJobCommand, putJobBody{Job{ID: "j", Kind: "k", State: JobRunning, Created: t0}}),
		mustCmd(f, PutKeyCommand, putKeyBody{WrappedKey{Tenant: "t", KeyID: chunk.KeyID{1}, Wrapped: []byte{1}}}),
	)
	seed := persisted(f, small)
	f.Add(seed)
	f.Add(seed[:len(seed)/2])
	f.Add(persisted(f, NewFSM()))
	f.Add([]byte(snapshotMagic + "\x01\x01\xff\xff\xff\xff\x0f"))
	f.Fuzz(func(t *testing.T, b []byte) {
		g := NewFSM()
		if g.Restore(bytes.NewReader(b)) != nil {
			return
		}
		once := persisted(t, g)
		h := NewFSM()
		if err := h.Restore(bytes.NewReader(once)); err != nil {
			t.Fatalf("a restored state does not restore again: %v", err)
		}
		if !bytes.Equal(persisted(t, h), once) {
			t.Fatal("restore is not stable")
		}
	})
}

// FuzzApply feeds arbitrary log entries to Apply on a populated FSM: it
// returns, or panics with ErrBadCommand, and two replicas agree.
func FuzzApply(f *testing.F) {
	log := testLog(f)
	for _, e := range log {
		f.Add(e)
	}
	f.Add([]byte{})
	f.Add([]byte{0xff, recordV1})
	f.Fuzz(func(t *testing.T, entry []byte) {
		a, b := NewFSM(), NewFSM()
		for _, e := range log[:len(log)/2] {
			a.Apply(e)
			b.Apply(e)
		}
		apply := func(m *FSM) (res Result, bad error) {
			defer func() {
				if r := recover(); r != nil {
					err, ok := r.(error)
					if !ok || !errors.Is(err, ErrBadCommand) {
						t.Fatalf("Apply panicked with %v, not ErrBadCommand", r)
					}
					bad = err
				}
			}()
			return m.Apply(entry), nil
		}
		ra, ea := apply(a)
		rb, eb := apply(b)
		if (ea == nil) != (eb == nil) || (ra.Err == nil) != (rb.Err == nil) || !bytes.Equal(persisted(t, a), persisted(t, b)) {
			t.Fatalf("replicas disagree on %q: %v/%v, %v/%v", entry, ea, eb, ra.Err, rb.Err)
		}
	})
}
