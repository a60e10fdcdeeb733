package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/cairnhq/cairn/cluster/chunk"
)

// Segment files, format version 1. A segment is a file header followed by
// records, back to back:
//
//	file header (32 bytes)
//	0   8   magic "CAIRNSEG"
//	8   4   format version (1), big-endian
//	12  4   reserved, zero
//	16  8   segment number, big-endian
//	24  4   reserved, zero
//	28  4   CRC32C of bytes 0..28
//
//	record header (48 bytes), then the sealed chunk
//	0   4   magic "CRNR"
//	4   1   kind: 1 stored by Put, 2 copied by compaction
//	5   3   reserved, zero
//	8   4   length of the sealed chunk, big-endian
//	12  32  chunk ID
//	44  4   CRC32C of bytes 0..44
//
// The record header has its own CRC and the sealed chunk carries its outer
// CRC32C, so segment files alone are enough to find every record and check
// it: that is how a torn tail is found and how the index is rebuilt.
const (
	segMagic      = "CAIRNSEG"
	segVersion    = 1
	segHeaderSize = 32

	recMagic      = "CRNR"
	recHeaderSize = 48

	kindPut  = 1
	kindCopy = 2
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// recHeader is a decoded record header.
type recHeader struct {
	kind byte
	size uint32 // sealed bytes that follow the header
	id   chunk.ID
}

// encode writes the header into b, which must hold recHeaderSize bytes.
func (h recHeader) encode(b []byte) {
	b = b[:recHeaderSize]
	copy(b, recMagic)
	b[4] = h.kind
	b[5], b[6], b[7] = 0, 0, 0
	binary.BigEndian.PutUint32(b[8:], h.size)
	copy(b[12:44], h.id[:])
	binary.BigEndian.PutUint32(b[44:], crc32.Checksum(b[:44], castagnoli))
}

// parseRecHeader decodes and checks a record header. Every failure wraps
// chunk.ErrCorrupt.
func parseRecHeader(b []byte) (recHeader, error) {
	var h recHeader
	if len(b) < recHeaderSize {
		return h, fmt.Errorf("record header: %d bytes: %w", len(b), chunk.ErrCorrupt)
	}
	b = b[:recHeaderSize]
	if !bytes.Equal(b[:4], []byte(recMagic)) {
		return h, fmt.Errorf("record header: bad magic %q: %w", b[:4], chunk.ErrCorrupt)
	}
	if want, got := binary.BigEndian.Uint32(b[44:]), crc32.Checksum(b[:44], castagnoli); want != got {
		return h, fmt.Errorf("record header: crc32c %08x, recorded %08x: %w", got, want, chunk.ErrCorrupt)
	}
	h.kind = b[4]
	if (h.kind != kindPut && h.kind != kindCopy) || b[5]|b[6]|b[7] != 0 {
		return h, fmt.Errorf("record header: unknown kind %#x: %w", b[4:8], chunk.ErrCorrupt)
	}
	h.size = binary.BigEndian.Uint32(b[8:])
	if h.size < chunk.Overhead || h.size > chunk.MaxSealed {
		return h, fmt.Errorf("record header: length %d is not a sealed chunk's: %w", h.size, chunk.ErrCorrupt)
	}
	copy(h.id[:], b[12:44])
	return h, nil
}

func encodeSegHeader(num uint64) []byte {
	b := make([]byte, segHeaderSize)
	copy(b, segMagic)
	binary.BigEndian.PutUint32(b[8:], segVersion)
	binary.BigEndian.PutUint64(b[16:], num)
	binary.BigEndian.PutUint32(b[28:], crc32.Checksum(b[:28], castagnoli))
	return b
}

// parseSegHeader checks a segment file header and returns its number.
func parseSegHeader(b []byte) (uint64, error) {
	if len(b) < segHeaderSize {
		return 0, fmt.Errorf("segment header: %d bytes: %w", len(b), chunk.ErrCorrupt)
	}
	if !bytes.Equal(b[:8], []byte(segMagic)) {
		return 0, fmt.Errorf("segment header: bad magic %q: %w", b[:8], chunk.ErrCorrupt)
	}
	if want, got := binary.BigEndian.Uint32(b[28:]), crc32.Checksum(b[:28], castagnoli); want != got {
		return 0, fmt.Errorf("segment header: crc32c %08x, recorded %08x: %w", got, want, chunk.ErrCorrupt)
	}
	if v := binary.BigEndian.Uint32(b[8:]); v != segVersion {
		return 0, fmt.Errorf("segment header: format version %d is not supported", v)
	}
	return binary.BigEndian.Uint64(b[16:]), nil
}

// scanned is a record found by scan: its header and where the header starts.
type scanned struct {
	recHeader
	off int64
}

// end returns the offset just past the record.
func (r scanned) end() int64 { return r.off + recHeaderSize + int64(r.size) }

// scan reads the records of a segment of size bytes from off onwards and
// calls fn with each complete, valid one: header CRC and the sealed chunk's
// outer CRC both check out. sealed is only valid during the call. scan stops
// at the first record that is incomplete or invalid and returns the offset
// where the valid records end; a torn tail starts there. An error is either
// fn's or a read failure.
func scan(r io.ReaderAt, size, off int64, fn func(rec scanned, sealed []byte) error) (int64, error) {
	var buf []byte
	var hdr [recHeaderSize]byte
	for off+recHeaderSize <= size {
		if _, err := r.ReadAt(hdr[:], off); err != nil {
			if errors.Is(err, io.EOF) {
				return off, nil
			}
			return off, fmt.Errorf("read record header at %d: %w", off, err)
		}
		h, err := parseRecHeader(hdr[:])
		if err != nil {
			return off, nil
		}
		rec := scanned{h, off}
		if rec.end() > size {
			return off, nil
		}
		if cap(buf) < int(h.size) {
			buf = make([]byte, h.size)
		}
		sealed := buf[:h.size]
		if _, err := r.ReadAt(sealed, off+recHeaderSize); err != nil {
			if errors.Is(err, io.EOF) {
				return off, nil
			}
			return off, fmt.Errorf("read record at %d: %w", off, err)
		}
		if chunk.Check(sealed) != nil {
			return off, nil
		}
		if err := fn(rec, sealed); err != nil {
			return off, err
		}
		off = rec.end()
	}
	return off, nil
}
