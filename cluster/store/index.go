package store

import (
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cairnhq/cairn/cluster/chunk"
)

// The index, a bbolt file beside the segments:
//
//	chunks    chunk ID → segment (8) ‖ record offset (8) ‖ sealed length (4) ‖ last reference, unix ns (8)
//	segments  segment number (8) → live chunks (8) ‖ their sealed bytes (8)
//	open      segment number (8) → offset (8)
//	meta      "version" → 1
//
// All integers are big-endian. The open bucket lists the segments that may
// hold records the index does not reflect: those a writer is appending to.
// A segment is listed before its file is created, and each committed batch
// moves its offset on; every record before the offset has been indexed (and
// perhaps since deleted), records after it were appended but their batch
// never committed. A segment leaves the list, sealed, in the transaction
// that indexes its last records. Recovery scans open segments from their
// offset only, which is what keeps a deleted chunk deleted across a restart,
// and trusts every other segment as it is.
var (
	bucketChunks   = []byte("chunks")
	bucketSegments = []byte("segments")
	bucketOpen     = []byte("open")
	bucketMeta     = []byte("meta")
	keyVersion     = []byte("version")
)

const (
	indexVersion = 1
	entrySize    = 28
	segStatSize  = 16
)

// loc is where a record lives: its segment, the offset of its header, and the
// length of the sealed chunk after the header.
type loc struct {
	seg  uint64
	off  int64
	size uint32
}

// entry is an index entry.
type entry struct {
	loc
	// lastRef is the last reference in unix nanoseconds; negated, it is
	// when garbage collection tombstoned the chunk. Any reference (Put, Has)
	// stores a positive time again, which is how a reference revives a
	// tombstoned chunk without a format change.
	lastRef int64
}

func (e entry) encode() []byte {
	b := make([]byte, entrySize)
	binary.BigEndian.PutUint64(b[0:], e.seg)
	binary.BigEndian.PutUint64(b[8:], uint64(e.off))
	binary.BigEndian.PutUint32(b[16:], e.size)
	binary.BigEndian.PutUint64(b[20:], uint64(e.lastRef))
	return b
}

func decodeEntry(id chunk.ID, b []byte) (entry, error) {
	if len(b) != entrySize {
		return entry{}, fmt.Errorf("index entry of chunk %s is %d bytes: %w", id.Short(), len(b), chunk.ErrCorrupt)
	}
	return entry{
		loc: loc{
			seg:  binary.BigEndian.Uint64(b[0:]),
			off:  int64(binary.BigEndian.Uint64(b[8:])),
			size: binary.BigEndian.Uint32(b[16:]),
		},
		lastRef: int64(binary.BigEndian.Uint64(b[20:])),
	}, nil
}

func (e entry) info() Info {
	if e.lastRef < 0 {
		return Info{Size: int64(e.size), LastRef: time.Unix(0, -e.lastRef), Tombstoned: true}
	}
	return Info{Size: int64(e.size), LastRef: time.Unix(0, e.lastRef)}
}

// segStat counts the live chunks of a segment. A record's bytes on disk are
// its sealed bytes plus a header, so live record bytes follow from the two.
type segStat struct {
	count  int64
	sealed int64
}

func (st segStat) recordBytes() int64 { return st.sealed + st.count*recHeaderSize }

func (st segStat) add(o segStat) segStat {
	return segStat{st.count + o.count, st.sealed + o.sealed}
}

func segKey(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

func decodeSegStat(b []byte) segStat {
	if len(b) != segStatSize {
		return segStat{}
	}
	return segStat{int64(binary.BigEndian.Uint64(b)), int64(binary.BigEndian.Uint64(b[8:]))}
}

func (st segStat) encode() []byte {
	b := binary.BigEndian.AppendUint64(nil, uint64(st.count))
	return binary.BigEndian.AppendUint64(b, uint64(st.sealed))
}

// txn is a write transaction on the index that keeps the per-segment live
// counts in step with the chunk entries it changes.
type txn struct {
	chunks, segs, open *bolt.Bucket
	delta              map[uint64]segStat
}

func newTxn(tx *bolt.Tx) *txn {
	return &txn{
		chunks: tx.Bucket(bucketChunks),
		segs:   tx.Bucket(bucketSegments),
		open:   tx.Bucket(bucketOpen),
		delta:  map[uint64]segStat{},
	}
}

func (x *txn) get(id chunk.ID) (entry, bool, error) {
	v := x.chunks.Get(id[:])
	if v == nil {
		return entry{}, false, nil
	}
	e, err := decodeEntry(id, v)
	return e, err == nil, err
}

// touch rewrites an entry in place (same location, new last reference).
func (x *txn) touch(id chunk.ID, e entry) error {
	return x.chunks.Put(id[:], e.encode())
}

func (x *txn) add(id chunk.ID, e entry) error {
	x.delta[e.seg] = x.delta[e.seg].add(segStat{1, int64(e.size)})
	return x.chunks.Put(id[:], e.encode())
}

func (x *txn) remove(id chunk.ID, e entry) error {
	x.delta[e.seg] = x.delta[e.seg].add(segStat{-1, -int64(e.size)})
	return x.chunks.Delete(id[:])
}

func (x *txn) setOpen(seg uint64, off int64) error {
	return x.open.Put(segKey(seg), binary.BigEndian.AppendUint64(nil, uint64(off)))
}

func (x *txn) seal(seg uint64) error { return x.open.Delete(segKey(seg)) }

// finish folds the live-count changes into the segments bucket; call it last.
func (x *txn) finish() error {
	for n, d := range x.delta {
		if d == (segStat{}) {
			continue
		}
		k := segKey(n)
		st := decodeSegStat(x.segs.Get(k)).add(d)
		if err := x.segs.Put(k, st.encode()); err != nil {
			return err
		}
	}
	return nil
}

// readOpen returns the open segments and how far each is indexed.
func readOpen(tx *bolt.Tx) map[uint64]int64 {
	open := map[uint64]int64{}
	tx.Bucket(bucketOpen).ForEach(func(k, v []byte) error {
		if len(k) == 8 && len(v) == 8 {
			open[binary.BigEndian.Uint64(k)] = int64(binary.BigEndian.Uint64(v))
		}
		return nil
	})
	return open
}

// readSegStats returns the live counts of every segment the index knows.
func readSegStats(tx *bolt.Tx) map[uint64]segStat {
	stats := map[uint64]segStat{}
	tx.Bucket(bucketSegments).ForEach(func(k, v []byte) error {
		if len(k) == 8 {
			stats[binary.BigEndian.Uint64(k)] = decodeSegStat(v)
		}
		return nil
	})
	return stats
}

// initIndex creates the buckets of a new index and checks an old one's
// version. It reports whether the index is new.
func initIndex(tx *bolt.Tx) (bool, error) {
	for _, name := range [][]byte{bucketChunks, bucketSegments, bucketOpen, bucketMeta} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return false, fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	meta := tx.Bucket(bucketMeta)
	v := meta.Get(keyVersion)
	if v == nil {
		return true, meta.Put(keyVersion, binary.BigEndian.AppendUint32(nil, indexVersion))
	}
	if len(v) != 4 || binary.BigEndian.Uint32(v) != indexVersion {
		return false, fmt.Errorf("index version %x is not supported", v)
	}
	return false, nil
}
