package lvm_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cairnhq/cairn/appliance/backup"
	"github.com/cairnhq/cairn/appliance/restore"
	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/meta"
	"github.com/cairnhq/cairn/cluster/store"
	"github.com/cairnhq/cairn/plugins"
	"github.com/cairnhq/cairn/plugins/file"
	"github.com/cairnhq/cairn/plugins/lvm"
)

const mib = 1 << 20

// engine is Cairn's real backup and restore engines over an in-memory store.
type engine struct {
	key     *chunk.Key
	store   *store.Memory
	backup  *backup.Engine
	restore *restore.Engine
	n       int
}

func newEngine(t *testing.T) *engine {
	key, err := chunk.NewKey(chunk.KeyID{1}, bytes.Repeat([]byte{7}, chunk.SecretSize))
	if err != nil {
		t.Fatal(err)
	}
	st := store.NewMemory(store.Options{})
	return &engine{key: key, store: st, backup: &backup.Engine{Store: st}, restore: &restore.Engine{Store: st}}
}

// run backs up one object as the appliance does: open, back up, commit the
// restore point, tell the snapshot, close. It returns the committed restore
// point, or the first error.
func (e *engine) run(ctx context.Context, src plugins.Source, object string, base *meta.RestorePoint) (*meta.RestorePoint, *backup.Result, error) {
	snap, err := src.Open(ctx, object, plugins.OpenOptions{})
	if err != nil {
		return nil, nil, err
	}
	defer snap.Close(ctx)
	res, err := e.backup.Run(ctx, backup.Request{Key: e.key, Snapshot: snap, Base: base})
	if err != nil {
		return nil, nil, err
	}
	e.n++
	rp := &meta.RestorePoint{ID: "rp" + string(rune('0'+e.n)), Object: object, Disks: res.Disks, Fingerprint: res.Fingerprint, LogicalBytes: res.LogicalBytes}
	if err := snap.(plugins.Committer).Committed(ctx); err != nil {
		return nil, nil, err
	}
	return rp, res, snap.Close(ctx)
}

// restoreTo restores rp to a new image file and returns its bytes.
func (e *engine) restoreTo(t *testing.T, rp *meta.RestorePoint) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), rp.ID+".img")
	if err := e.restore.Restore(t.Context(), e.key, *rp, file.NewTarget(path, false), nil); err != nil {
		t.Fatalf("restore %s: %v", rp.ID, err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// engineBlocks counts the engine's blocks that byte ranges touch.
func engineBlocks(ext []plugins.Extent) int64 {
	seen := map[int64]bool{}
	for _, e := range ext {
		for b := e.Offset / chunk.BlockSize; b <= (e.End()-1)/chunk.BlockSize; b++ {
			seen[b] = true
		}
	}
	return int64(len(seen))
}

// TestIncrementalReadsOnlyChangedRanges is the plugin's evidence: a 32 MiB
// thin volume, a full backup that reads only mapped blocks, writes and a
// discard, and an incremental that reads only the 4 MiB blocks holding
// blocks thin_delta reports; both restore points restore byte for byte.
func TestIncrementalReadsOnlyChangedRanges(t *testing.T) {
	needTools(t)
	ctx := t.Context()
	p := newPool(t)
	const size = 32 * mib
	v1 := make([]byte, size)
	rng := rand.NewChaCha8([32]byte{1})
	fill := func(b []byte) { _, _ = rng.Read(b) }
	// Data in blocks 0-1, 5 and 6 of 8 (4 MiB each); the rest is never
	// written, so unmapped.
	mapped := []plugins.Extent{{Offset: 0, Length: 6 * mib}, {Offset: 20*mib + 4096, Length: 300 << 10}, {Offset: 26 * mib, Length: 2 * mib}}
	for _, e := range mapped {
		fill(v1[e.Offset:e.End()])
	}
	p.addVolume(testLV, v1)
	src := p.source(t, lvm.Config{LV: testLV})
	e := newEngine(t)

	rp1, res1, err := e.run(ctx, src, testLV, nil)
	if err != nil {
		t.Fatalf("full backup: %v", err)
	}
	// The full backup reads the engine blocks holding mapped thin blocks:
	// 0-1, 5 and 6, 4 of 8.
	if want := int64(4) * chunk.BlockSize; res1.ReadBytes != want || p.read.Load() != want {
		t.Fatalf("full backup read %d bytes (device saw %d), want %d", res1.ReadBytes, p.read.Load(), want)
	}
	if got := p.snapshots(); !slices.Equal(got, []string{"data.cairn-src.1"}) {
		t.Fatalf("after the full backup the pool holds snapshots %q, want the base data.cairn-src.1", got)
	}

	// Between backups: a 4 KiB write inside block 1 of data, 100 KiB into
	// a hole in block 4, and a discard of two thin blocks in block 6.
	writes := []plugins.Extent{{Offset: 5*mib + 100, Length: 4096}, {Offset: 17 * mib, Length: 100 << 10}}
	v2 := bytes.Clone(v1)
	for _, w := range writes {
		fill(v2[w.Offset:w.End()])
		if err := p.write(testLV, w.Offset, v2[w.Offset:w.End()]); err != nil {
			t.Fatal(err)
		}
	}
	const discardBlock = 26 * mib / blockSize
	p.discard(testLV, discardBlock, 2)
	clear(v2[26*mib : 26*mib+2*blockSize])

	// thin_delta names exactly the thin blocks written or discarded.
	snap, err := src.Open(ctx, testLV, plugins.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := snap.Disks()[0].Changes(ctx, &plugins.Base{Capacity: size, ChangeToken: rp1.Disks[0].ChangeToken})
	if err != nil {
		t.Fatal(err)
	}
	wantExt := []plugins.Extent{
		{Offset: 5 * mib, Length: blockSize},      // the 4 KiB write
		{Offset: 17 * mib, Length: 2 * blockSize}, // 100 KiB over two blocks
		{Offset: 26 * mib, Length: 2 * blockSize}, // the discard
	}
	if !ch.Delta || ch.Method != lvm.MethodThinDelta || !slices.Equal(ch.Extents, wantExt) {
		t.Fatalf("Changes = %+v, want thin-delta extents %v", ch, wantExt)
	}
	if err := snap.Close(ctx); err != nil {
		t.Fatal(err)
	}

	read := p.read.Load()
	rp2, res2, err := e.run(ctx, src, testLV, rp1)
	if err != nil {
		t.Fatalf("incremental backup: %v", err)
	}
	// Engine blocks 1, 4 and 6: 12 MiB of 32.
	if want := engineBlocks(wantExt) * chunk.BlockSize; res2.ReadBytes != want || p.read.Load()-read != want || want != 12*mib {
		t.Fatalf("incremental read %d bytes (device saw %d), want %d", res2.ReadBytes, p.read.Load()-read, want)
	}
	if m := res2.Disks[0].Method; m != lvm.MethodThinDelta {
		t.Fatalf("incremental method %q, want %q", m, lvm.MethodThinDelta)
	}
	t.Logf("full read %d MiB, incremental read %d MiB of a %d MiB volume", res1.ReadBytes/mib, res2.ReadBytes/mib, size/mib)

	// Rotation: only the new base is left.
	if got := p.snapshots(); !slices.Equal(got, []string{"data.cairn-src.2"}) {
		t.Fatalf("after the incremental the pool holds snapshots %q, want only data.cairn-src.2", got)
	}
	if left := p.leftovers("data.cairn-src.2"); len(left) > 0 {
		t.Fatalf("left behind %q", left)
	}
	if got := e.restoreTo(t, rp1); !bytes.Equal(got, v1) {
		t.Fatal("the full restore point restores other bytes than the volume held")
	}
	if got := e.restoreTo(t, rp2); !bytes.Equal(got, v2) {
		t.Fatal("the incremental restore point restores other bytes than the volume held")
	}
}
