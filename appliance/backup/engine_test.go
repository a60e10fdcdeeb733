package backup_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cairnhq/cairn/appliance/backup"
	"github.com/cairnhq/cairn/appliance/restore"
	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/meta"
	"github.com/cairnhq/cairn/plugins"
)

const bs = chunk.BlockSize

// memStore keeps sealed chunks in memory with the store's rules: no
// overwrites, CRC checked on the way in.
type memStore struct {
	mu         sync.Mutex
	m          map[chunk.ID][]byte
	puts, hits atomic.Int64
}

func newMemStore() *memStore { return &memStore{m: map[chunk.ID][]byte{}} }

func (s *memStore) Put(_ context.Context, id chunk.ID, sealed []byte) (bool, error) {
	if err := chunk.Check(sealed); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[id]; ok {
		return false, nil
	}
	s.m[id] = bytes.Clone(sealed)
	s.puts.Add(1)
	return true, nil
}

func (s *memStore) Has(_ context.Context, ids []chunk.ID) ([]bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]bool, len(ids))
	for i, id := range ids {
		_, out[i] = s.m[id]
		if out[i] {
			s.hits.Add(1)
		}
	}
	return out, nil
}

func (s *memStore) Get(_ context.Context, id chunk.ID) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.m[id]
	if !ok {
		return nil, fmt.Errorf("chunk %s: not found", id.Short())
	}
	return bytes.Clone(b), nil
}

// memDisk is a disk image in memory that counts the bytes read from it.
type memDisk struct {
	data    []byte
	changes *plugins.Changes
	read    atomic.Int64
	failAt  int64 // ReadAt at this offset fails, when > 0
}

func (d *memDisk) Key() string     { return "disk0" }
func (d *memDisk) Capacity() int64 { return int64(len(d.data)) }
func (d *memDisk) ReadAt(p []byte, off int64) (int, error) {
	if d.failAt > 0 && off == d.failAt {
		return 0, errors.New("injected read error")
	}
	n := copy(p, d.data[off:])
	d.read.Add(int64(n))
	return n, nil
}
func (d *memDisk) Changes(context.Context, *plugins.Base) (*plugins.Changes, error) {
	return d.changes, nil
}

type snap struct{ disks []plugins.Disk }

func (s snap) Disks() []plugins.Disk       { return s.disks }
func (s snap) Consistency() string         { return "none" }
func (s snap) Close(context.Context) error { return nil }
func full(n int64) *plugins.Changes {
	return &plugins.Changes{Extents: []plugins.Extent{{Offset: 0, Length: n}}, Method: "full"}
}
func delta(x ...plugins.Extent) *plugins.Changes {
	return &plugins.Changes{Extents: x, Delta: true, Method: "extent-list"}
}

// memTarget restores into memory.
type memTarget struct{ disks map[string][]byte }

type memWriter struct {
	t   *memTarget
	key string
	buf []byte
	mu  sync.Mutex
}

func (t *memTarget) Create(_ context.Context, s plugins.DiskSpec) (plugins.Writer, error) {
	return &memWriter{t: t, key: s.Key, buf: make([]byte, s.Capacity)}, nil
}
func (w *memWriter) WriteAt(p []byte, off int64) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return copy(w.buf[off:], p), nil
}
func (w *memWriter) Commit(context.Context) error { w.t.disks[w.key] = w.buf; return nil }
func (w *memWriter) Abort(context.Context) error  { return nil }

func testKey(t *testing.T) *chunk.Key { return testKeyB(t) }

func testKeyB(t testing.TB) *chunk.Key {
	k, err := chunk.NewKey(chunk.KeyID{9}, bytes.Repeat([]byte{9}, chunk.SecretSize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// image makes a disk of n blocks plus a tail: random blocks, zero blocks and
// repeated blocks.
func image(t *testing.T, blocks int, tail int) []byte {
	b := make([]byte, blocks*bs+tail)
	for i := range blocks {
		switch i % 4 {
		case 0, 1:
			rand.Read(b[i*bs : (i+1)*bs])
		case 2: // zero block
		case 3:
			copy(b[i*bs:(i+1)*bs], bytes.Repeat([]byte("same block "), bs/11))
		}
	}
	rand.Read(b[blocks*bs:])
	return b
}

func commit(res *backup.Result, id string, base string) meta.RestorePoint {
	return meta.RestorePoint{ID: id, Base: base, Disks: res.Disks, LogicalBytes: res.LogicalBytes, Fingerprint: res.Fingerprint}
}

func restoreAll(t *testing.T, st *memStore, key *chunk.Key, rp meta.RestorePoint) []byte {
	t.Helper()
	tgt := &memTarget{disks: map[string][]byte{}}
	if err := (&restore.Engine{Store: st}).Restore(context.Background(), key, rp, tgt, nil); err != nil {
		t.Fatal(err)
	}
	return tgt.disks["disk0"]
}

func TestFullIncrementalRestore(t *testing.T) {
	ctx := context.Background()
	key, st := testKey(t), newMemStore()
	eng := &backup.Engine{Store: st, Readers: 3, Sealers: 2, Buffers: 5, BatchSize: 4}
	data := image(t, 12, 12345)
	disk := &memDisk{data: data, changes: full(int64(len(data)))}

	res, err := eng.Run(ctx, backup.Request{Key: key, Snapshot: snap{[]plugins.Disk{disk}}})
	if err != nil {
		t.Fatal(err)
	}
	if res.ZeroBlocks != 3 || res.Chunks != 10 {
		t.Fatalf("zero blocks %d, chunks %d; want 3 and 10", res.ZeroBlocks, res.Chunks)
	}
	// 6 random blocks, 1 repeated block, the tail: 8 data chunks plus a root.
	if res.NewChunks != 8 || st.puts.Load() != 9 {
		t.Fatalf("new chunks %d, puts %d; want 8 and 9", res.NewChunks, st.puts.Load())
	}
	rp1 := commit(res, "rp1", "")
	if got := restoreAll(t, st, key, rp1); !bytes.Equal(got, data) {
		t.Fatal("full restore differs")
	}

	// Change 100 bytes inside block 5 and the whole of block 2 (was zero).
	data2 := bytes.Clone(data)
	rand.Read(data2[5*bs+1000 : 5*bs+1100])
	rand.Read(data2[2*bs : 3*bs])
	disk2 := &memDisk{data: data2, changes: delta(plugins.Extent{Offset: 2 * bs, Length: bs}, plugins.Extent{Offset: 5*bs + 1000, Length: 100})}
	puts := st.puts.Load()
	res2, err := eng.Run(ctx, backup.Request{Key: key, Snapshot: snap{[]plugins.Disk{disk2}}, Base: &rp1})
	if err != nil {
		t.Fatal(err)
	}
	if disk2.read.Load() != 2*bs {
		t.Fatalf("incremental read %d bytes, want exactly the 2 changed blocks", disk2.read.Load())
	}
	if res2.NewChunks != 2 || st.puts.Load()-puts != 3 {
		t.Fatalf("incremental stored %d chunks (%d puts), want 2 (+ root)", res2.NewChunks, st.puts.Load()-puts)
	}
	rp2 := commit(res2, "rp2", "rp1")
	if rp2.Fingerprint == rp1.Fingerprint {
		t.Fatal("incremental has the base's fingerprint")
	}
	if got := restoreAll(t, st, key, rp2); !bytes.Equal(got, data2) {
		t.Fatal("incremental restore differs")
	}
	if got := restoreAll(t, st, key, rp1); !bytes.Equal(got, data) {
		t.Fatal("the base changed after the incremental")
	}

	// Hash-compare: a full read against the base stores only what changed.
	disk3 := &memDisk{data: data2, changes: &plugins.Changes{Extents: full(int64(len(data2))).Extents, Method: "hash-compare"}}
	puts = st.puts.Load()
	res3, err := eng.Run(ctx, backup.Request{Key: key, Snapshot: snap{[]plugins.Disk{disk3}}, Base: &rp2})
	if err != nil {
		t.Fatal(err)
	}
	if res3.NewChunks != 0 || st.puts.Load() != puts || res3.Fingerprint != rp2.Fingerprint {
		t.Fatalf("unchanged hash-compare backup stored %d chunks; fingerprint equal: %v", res3.NewChunks, res3.Fingerprint == rp2.Fingerprint)
	}
}

func TestMultiLeafSparseDisk(t *testing.T) {
	// 1025 blocks of 64 KiB: two leaves, a level-1 root. Data in a few blocks.
	ctx := context.Background()
	key, st := testKey(t), newMemStore()
	const small = 64 << 10
	eng := &backup.Engine{Store: st, BlockSize: small}
	data := make([]byte, 1025*small+7)
	ext := []plugins.Extent{{Offset: 3, Length: small + 4}} // the last, short leaf stays zero
	for _, x := range ext {
		rand.Read(data[x.Offset:x.End()])
	}
	disk := &memDisk{data: data, changes: &plugins.Changes{Extents: ext, Method: "allocated"}}
	res, err := eng.Run(ctx, backup.Request{Key: key, Snapshot: snap{[]plugins.Disk{disk}}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Disks[0].Levels != 1 {
		t.Fatalf("levels = %d, want 1", res.Disks[0].Levels)
	}
	rp := commit(res, "rp", "")
	tgt := &memTarget{disks: map[string][]byte{}}
	var progress restore.Progress
	if err := (&restore.Engine{Store: st}).Restore(ctx, key, rp, tgt, &progress); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(tgt.disks["disk0"], data) {
		t.Fatal("restore differs")
	}
	if progress.Done.Load() != progress.Total.Load() || progress.Total.Load() != int64(len(data)) {
		t.Fatalf("restore progress %d of %d, want %d of %d", progress.Done.Load(), progress.Total.Load(), len(data), len(data))
	}
	vr, err := (&restore.Engine{Store: st}).Verify(ctx, key, rp, nil)
	if err != nil || !vr.OK || vr.ChunksChecked != 2 {
		t.Fatalf("verify = %+v, %v; want ok with 2 chunks", vr, err)
	}
}

func TestReadErrorFailsTheBackup(t *testing.T) {
	key, st := testKey(t), newMemStore()
	data := image(t, 8, 0)
	disk := &memDisk{data: data, changes: full(int64(len(data))), failAt: 5 * bs}
	_, err := (&backup.Engine{Store: st}).Run(context.Background(), backup.Request{Key: key, Snapshot: snap{[]plugins.Disk{disk}}})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("injected read error")) {
		t.Fatalf("got %v, want the read error", err)
	}
}

func TestBadExtentsRejected(t *testing.T) {
	key, st := testKey(t), newMemStore()
	data := image(t, 2, 0)
	for _, ch := range []*plugins.Changes{
		{Extents: []plugins.Extent{{Offset: bs, Length: 1}, {Offset: 0, Length: 1}}},
		{Extents: []plugins.Extent{{Offset: 0, Length: 3 * bs}}},
		{Extents: []plugins.Extent{{Offset: 0, Length: 1}}, Delta: true},
	} {
		disk := &memDisk{data: data, changes: ch}
		_, err := (&backup.Engine{Store: st}).Run(context.Background(), backup.Request{Key: key, Snapshot: snap{[]plugins.Disk{disk}}})
		if !errors.Is(err, backup.ErrBadExtents) {
			t.Errorf("%+v: got %v, want ErrBadExtents", ch, err)
		}
	}
}

func TestVerifyFindsCorruption(t *testing.T) {
	ctx := context.Background()
	key, st := testKey(t), newMemStore()
	data := image(t, 6, 0)
	res, err := (&backup.Engine{Store: st}).Run(ctx, backup.Request{Key: key, Snapshot: snap{[]plugins.Disk{&memDisk{data: data, changes: full(int64(len(data)))}}}})
	if err != nil {
		t.Fatal(err)
	}
	rp := commit(res, "rp", "")
	// Re-seal block 0 under its ID with a valid CRC but other content: only
	// authentication can catch it.
	victim := key.Sum(data[:bs])
	st.mu.Lock()
	bad, _ := key.Seal(nil, victim, bytes.Repeat([]byte{1}, bs))
	st.m[victim] = bad
	st.mu.Unlock()
	var quarantined []chunk.ID
	var qmu sync.Mutex
	vr, err := (&restore.Engine{Store: st, Quarantine: func(_ context.Context, id chunk.ID) {
		qmu.Lock()
		quarantined = append(quarantined, id)
		qmu.Unlock()
	}}).Verify(ctx, key, rp, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(quarantined) != 1 || quarantined[0] != victim {
		t.Fatalf("quarantined %v, want exactly the damaged chunk %s", quarantined, victim.Short())
	}
	if vr.OK || vr.Corrupt != 1 || vr.ChunksChecked != 4 {
		t.Fatalf("verify = %+v; want 1 corrupt, 4 good", vr)
	}
	tgt := &memTarget{disks: map[string][]byte{}}
	if err := (&restore.Engine{Store: st}).Restore(ctx, key, rp, tgt, nil); !errors.Is(err, chunk.ErrCorrupt) {
		t.Fatalf("restore of a corrupt point: %v, want ErrCorrupt", err)
	}
	rp.Fingerprint = "00" + rp.Fingerprint[2:]
	if vr, _ := (&restore.Engine{Store: st}).Verify(ctx, key, rp, nil); vr.OK {
		t.Fatal("verify accepted a wrong fingerprint")
	}
}

// TestConcurrentBackupsShareThePool runs several backups at once on one
// engine whose pool holds fewer buffers than they want: none may deadlock.
func TestConcurrentBackupsShareThePool(t *testing.T) {
	key, st := testKey(t), newMemStore()
	eng := &backup.Engine{Store: st, Readers: 2, Sealers: 2, Buffers: 2, BatchSize: 2}
	type outcome struct {
		data []byte
		res  *backup.Result
		err  error
	}
	out := make([]outcome, 4)
	var wg sync.WaitGroup
	for i := range out {
		out[i].data = image(t, 9, 100)
		wg.Go(func() {
			disk := &memDisk{data: out[i].data, changes: full(int64(len(out[i].data)))}
			out[i].res, out[i].err = eng.Run(context.Background(), backup.Request{Key: key, Snapshot: snap{[]plugins.Disk{disk}}})
		})
	}
	wg.Wait()
	for _, o := range out {
		if o.err != nil {
			t.Fatal(o.err)
		}
		if !bytes.Equal(restoreAll(t, st, key, commit(o.res, "rp", "")), o.data) {
			t.Fatal("restore differs")
		}
	}
}
