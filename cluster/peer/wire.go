package peer

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/store"
)

// Record kinds of a stream.
const (
	kindEnd      byte = 0
	kindChunk    byte = 1
	kindNotFound byte = 2
	kindCorrupt  byte = 3
	kindFailed   byte = 4
)

const (
	lenSize       = 4
	recHeaderSize = 1 + chunk.IDSize + lenSize
	putHeaderSize = chunk.IDSize + lenSize
	infoSize      = 16
	maxMessage    = 4 << 10 // longest error text carried on the wire
	noTime        = math.MinInt64
)

// errMalformed is wrapped by every decoder error; the server answers it
// with 400 and the client reports it as ErrRefused or a protocol failure.
var errMalformed = errors.New("malformed message")

func appendIDs(dst []byte, ids []chunk.ID) []byte {
	for i := range ids {
		dst = append(dst, ids[i][:]...)
	}
	return dst
}

// decodeIDs reads an ID list of at most max IDs.
func decodeIDs(b []byte, max int) ([]chunk.ID, error) {
	if len(b)%chunk.IDSize != 0 {
		return nil, fmt.Errorf("%w: id list of %d bytes is not a multiple of %d", errMalformed, len(b), chunk.IDSize)
	}
	n := len(b) / chunk.IDSize
	if n > max {
		return nil, fmt.Errorf("%w: %d ids, at most %d", errMalformed, n, max)
	}
	ids := make([]chunk.ID, n)
	for i := range ids {
		copy(ids[i][:], b[i*chunk.IDSize:])
	}
	return ids, nil
}

func encodeBits(v []bool) []byte {
	b := make([]byte, (len(v)+7)/8)
	for i, x := range v {
		if x {
			b[i/8] |= 1 << (i % 8)
		}
	}
	return b
}

// decodeBits reads a bitmap answering n IDs.
func decodeBits(b []byte, n int) ([]bool, error) {
	if len(b) != (n+7)/8 {
		return nil, fmt.Errorf("%w: bitmap of %d bytes for %d ids", errMalformed, len(b), n)
	}
	if n%8 != 0 && b[len(b)-1]>>(n%8) != 0 {
		return nil, fmt.Errorf("%w: bitmap sets bits past id %d", errMalformed, n)
	}
	v := make([]bool, n)
	for i := range v {
		v[i] = b[i/8]&(1<<(i%8)) != 0
	}
	return v, nil
}

func appendPut(dst []byte, id chunk.ID, sealed []byte) []byte {
	dst = append(dst, id[:]...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(sealed)))
	return append(dst, sealed...)
}

// decodePut splits a put body into at most max (ID, sealed) pairs. The
// sealed slices alias b. It checks framing only; the server runs
// chunk.Check on each chunk itself so that it can answer 422 rather than 400.
func decodePut(b []byte, max int) ([]chunk.ID, [][]byte, error) {
	var ids []chunk.ID
	var sealed [][]byte
	for off := 0; off < len(b); {
		if len(ids) == max {
			return nil, nil, fmt.Errorf("%w: more than %d chunks", errMalformed, max)
		}
		if len(b)-off < putHeaderSize {
			return nil, nil, fmt.Errorf("%w: chunk %d: %d bytes left for a %d-byte header", errMalformed, len(ids), len(b)-off, putHeaderSize)
		}
		var id chunk.ID
		copy(id[:], b[off:])
		n := binary.BigEndian.Uint32(b[off+chunk.IDSize:])
		off += putHeaderSize
		if n > chunk.MaxSealed || int(n) > len(b)-off {
			return nil, nil, fmt.Errorf("%w: chunk %s: length %d, %d bytes left", errMalformed, id.Short(), n, len(b)-off)
		}
		ids = append(ids, id)
		sealed = append(sealed, b[off:off+int(n):off+int(n)])
		off += int(n)
	}
	return ids, sealed, nil
}

func appendInfo(dst []byte, info store.Info) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(info.Size))
	t := int64(noTime)
	if !info.LastRef.IsZero() {
		t = info.LastRef.UnixNano()
	}
	return binary.BigEndian.AppendUint64(dst, uint64(t))
}

func decodeInfo(b []byte) (store.Info, error) {
	if len(b) != infoSize {
		return store.Info{}, fmt.Errorf("%w: info of %d bytes, want %d", errMalformed, len(b), infoSize)
	}
	size := binary.BigEndian.Uint64(b)
	if size > chunk.MaxSealed {
		return store.Info{}, fmt.Errorf("%w: size %d is more than a sealed chunk", errMalformed, size)
	}
	info := store.Info{Size: int64(size)}
	if t := int64(binary.BigEndian.Uint64(b[8:])); t != noTime {
		info.LastRef = time.Unix(0, t)
	}
	return info, nil
}

// record is one entry of a stream.
type record struct {
	kind    byte
	id      chunk.ID
	payload []byte
}

func appendRecord(dst []byte, kind byte, id chunk.ID, payload []byte) []byte {
	dst = append(dst, kind)
	dst = append(dst, id[:]...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	return append(dst, payload...)
}

// readRecord reads the next record of a stream whose payloads are at most
// max bytes. A stream that stops before its end record gives
// io.ErrUnexpectedEOF.
func readRecord(r *bufio.Reader, max int) (record, error) {
	var h [recHeaderSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return record{}, fmt.Errorf("read record: %w", err)
	}
	rec := record{kind: h[0]}
	copy(rec.id[:], h[1:])
	n := binary.BigEndian.Uint32(h[1+chunk.IDSize:])
	switch rec.kind {
	case kindEnd, kindNotFound:
		if n != 0 {
			return record{}, fmt.Errorf("%w: record kind %d with %d payload bytes", errMalformed, rec.kind, n)
		}
	case kindChunk:
		if int64(n) > int64(max) {
			return record{}, fmt.Errorf("%w: chunk %s: record of %d bytes, at most %d", errMalformed, rec.id.Short(), n, max)
		}
	case kindCorrupt, kindFailed:
		if n > maxMessage {
			return record{}, fmt.Errorf("%w: message of %d bytes", errMalformed, n)
		}
	default:
		return record{}, fmt.Errorf("%w: unknown record kind %d", errMalformed, rec.kind)
	}
	if rec.kind == kindEnd && !rec.id.IsZero() {
		return record{}, fmt.Errorf("%w: end record names chunk %s", errMalformed, rec.id.Short())
	}
	rec.payload = make([]byte, n)
	if _, err := io.ReadFull(r, rec.payload); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return record{}, fmt.Errorf("read record: %w", err)
	}
	return rec, nil
}

// message clips an error's text to what a record or reply carries.
func message(err error) []byte {
	s := err.Error()
	if len(s) > maxMessage {
		s = s[:maxMessage]
	}
	return []byte(s)
}
