package store

import (
	"bytes"
	"errors"
	"path/filepath"

	bolt "go.etcd.io/bbolt"

	"github.com/cairnhq/cairn/cluster/chunk"
)

// Hooks for the external tests, which build segment bytes by hand.
const (
	SegHeaderSize = segHeaderSize
	RecHeaderSize = recHeaderSize
	KindPut       = kindPut
	KindCopy      = kindCopy
)

// RecordBytes returns a segment record: header and sealed chunk.
func RecordBytes(kind byte, id chunk.ID, sealed []byte) []byte {
	b := make([]byte, recHeaderSize, recHeaderSize+len(sealed))
	recHeader{kind: kind, size: uint32(len(sealed)), id: id}.encode(b)
	return append(b, sealed...)
}

// SegmentHeader returns the file header of segment n.
func SegmentHeader(n uint64) []byte { return encodeSegHeader(n) }

// Scanned is a record found by ScanSegment.
type Scanned struct {
	ID     chunk.ID
	Kind   byte
	Off    int64
	Sealed []byte
}

// ScanSegment runs the recovery scan over data as a whole segment file.
func ScanSegment(data []byte) (recs []Scanned, end int64, err error) {
	end, err = scan(bytes.NewReader(data), int64(len(data)), segHeaderSize, func(r scanned, sealed []byte) error {
		recs = append(recs, Scanned{r.id, r.kind, r.off, bytes.Clone(sealed)})
		return nil
	})
	return recs, end, err
}

// MarkOpen lists segment n as open, at offset off, in the index of the
// closed store in dir, as a writer does before creating the segment's file.
func MarkOpen(dir string, n uint64, off int64) error {
	db, err := bolt.Open(filepath.Join(dir, "index.db"), 0o600, nil)
	if err != nil {
		return err
	}
	err = db.Update(func(tx *bolt.Tx) error { return newTxn(tx).setOpen(n, off) })
	return errors.Join(err, db.Close())
}
