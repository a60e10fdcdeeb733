package restore

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/cairnhq/cairn/cluster/chunk"
)

// replicas is a store with two copies of each chunk, the first damaged in
// a way only authentication sees (its outer checksum is fine): it serves
// GetVerified the way the cluster's replicated store does.
type replicas struct {
	copies map[chunk.ID][][]byte
	tried  int
}

func (r *replicas) Get(ctx context.Context, id chunk.ID) ([]byte, error) {
	return r.copies[id][0], nil
}

func (r *replicas) GetVerified(ctx context.Context, id chunk.ID, verify func([]byte) error) ([]byte, error) {
	var last error
	for _, c := range r.copies[id] {
		r.tried++
		if err := verify(c); err != nil {
			last = err
			continue
		}
		return c, nil
	}
	return nil, last
}

func TestReadFailsOverOnAuthentication(t *testing.T) {
	key, err := chunk.NewKey(chunk.KeyID{1}, bytes.Repeat([]byte{3}, chunk.SecretSize))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := chunk.NewKey(chunk.KeyID{1}, bytes.Repeat([]byte{4}, chunk.SecretSize))
	plain := bytes.Repeat([]byte("block "), 1000)
	id := key.Sum(plain)
	good, _ := key.Seal(nil, id, plain)
	forged, _ := other.Seal(nil, id, plain) // same header and ID, wrong key: only GCM can tell
	if chunk.Check(forged) != nil {
		t.Fatal("the forged copy should pass the keyless check")
	}
	st := &replicas{copies: map[chunk.ID][][]byte{id: {forged, good}}}
	e := &Engine{Store: st}
	got, err := e.read(context.Background(), key, blockRef{id: id, n: int64(len(plain))}, nil)
	if err != nil || !bytes.Equal(got, plain) || st.tried != 2 {
		t.Fatalf("read: %v, tried %d copies", err, st.tried)
	}
	st.copies[id] = [][]byte{forged}
	if _, err := e.read(context.Background(), key, blockRef{id: id, n: int64(len(plain))}, nil); !errors.Is(err, chunk.ErrCorrupt) {
		t.Fatalf("read with only a forged copy: %v, want ErrCorrupt", err)
	}
}
