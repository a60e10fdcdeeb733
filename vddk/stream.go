package vddk

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// streamOptimized VMDK layout (VMware's Virtual Disk Format 5.0).
const (
	sector          = 512
	sparseMagic     = 0x564d444b // "KDMV"
	flagCompressed  = 1 << 16
	flagMarkers     = 1 << 17
	markerEOS       = 0
	markerGT        = 1
	markerGD        = 2
	markerFooter    = 3
	maxGrainSectors = 1 << 11 // 1 MiB grains; real ones are 128 sectors
)

// streamHeader is the part of a SparseExtentHeader the decoder needs.
type streamHeader struct {
	capacity, grainSize, overHead int64
}

func parseStreamHeader(b []byte) (streamHeader, error) {
	le := binary.LittleEndian
	var h streamHeader
	if len(b) < sector || le.Uint32(b) != sparseMagic {
		return h, errors.New("not a sparse VMDK (no KDMV magic)")
	}
	flags := le.Uint32(b[8:])
	h.capacity = int64(le.Uint64(b[12:]))
	h.grainSize = int64(le.Uint64(b[20:]))
	h.overHead = int64(le.Uint64(b[64:]))
	alg := le.Uint16(b[77:])
	switch {
	case flags&flagCompressed == 0 || flags&flagMarkers == 0 || alg != 1:
		return h, fmt.Errorf("sparse VMDK is not streamOptimized (flags %#x, compression %d)", flags, alg)
	case h.grainSize <= 0 || h.grainSize > maxGrainSectors || h.grainSize&(h.grainSize-1) != 0:
		return h, fmt.Errorf("bad grain size %d sectors", h.grainSize)
	case h.capacity < 0 || h.capacity > 1<<46:
		return h, fmt.Errorf("bad capacity %d sectors", h.capacity)
	case h.overHead < 1 || h.overHead > 1<<20:
		return h, fmt.Errorf("bad overhead %d sectors", h.overHead)
	}
	return h, nil
}

// DecodeStream reads a streamOptimized VMDK from r and writes each grain
// at its place in w, which must read as zeros where nothing is written. It
// returns the disk's capacity in bytes.
func DecodeStream(r io.Reader, w io.WriterAt) (int64, error) {
	hb := make([]byte, sector)
	n, err := io.ReadFull(r, hb)
	if n >= 4 && binary.LittleEndian.Uint32(hb) != sparseMagic {
		return 0, errors.New("not a sparse VMDK (no KDMV magic): the export is not streamOptimized")
	}
	if err != nil {
		return 0, fmt.Errorf("stream header: %w", err)
	}
	h, err := parseStreamHeader(hb)
	if err != nil {
		return 0, err
	}
	if _, err := io.CopyN(io.Discard, r, (h.overHead-1)*sector); err != nil {
		return 0, fmt.Errorf("stream metadata: %w", err)
	}
	capBytes := h.capacity * sector
	grainBytes := h.grainSize * sector
	buf := make([]byte, grainBytes)
	var comp bytes.Buffer
	m := make([]byte, 12)
	for {
		if _, err := io.ReadFull(r, m); err != nil {
			return 0, fmt.Errorf("stream marker: %w (no end-of-stream marker)", err)
		}
		val := int64(binary.LittleEndian.Uint64(m))
		size := int64(binary.LittleEndian.Uint32(m[8:]))
		if size == 0 {
			rest := make([]byte, sector-12)
			if _, err := io.ReadFull(r, rest); err != nil {
				return 0, fmt.Errorf("stream marker: %w", err)
			}
			switch typ := binary.LittleEndian.Uint32(rest); typ {
			case markerEOS:
				return capBytes, nil
			case markerGT, markerGD, markerFooter:
				if val < 0 || val > 1<<24 {
					return 0, fmt.Errorf("stream marker type %d: bad length %d sectors", typ, val)
				}
				if _, err := io.CopyN(io.Discard, r, val*sector); err != nil {
					return 0, fmt.Errorf("stream metadata: %w", err)
				}
			default:
				return 0, fmt.Errorf("stream marker: unknown type %d", typ)
			}
			continue
		}
		if size > grainBytes+grainBytes/2+1024 {
			return 0, fmt.Errorf("grain at sector %d: %d compressed bytes for a %d-byte grain", val, size, grainBytes)
		}
		off := val * sector
		if val < 0 || val%h.grainSize != 0 || off >= capBytes {
			return 0, fmt.Errorf("grain at sector %d: outside the %d-sector disk or unaligned", val, h.capacity)
		}
		comp.Reset()
		if _, err := io.CopyN(&comp, r, size); err != nil {
			return 0, fmt.Errorf("grain at sector %d: %w", val, err)
		}
		if pad := (sector - (12+size)%sector) % sector; pad > 0 {
			if _, err := io.CopyN(io.Discard, r, pad); err != nil {
				return 0, fmt.Errorf("grain at sector %d: %w", val, err)
			}
		}
		zr, err := zlib.NewReader(&comp)
		if err != nil {
			return 0, fmt.Errorf("grain at sector %d: %w", val, err)
		}
		n, err := io.ReadFull(zr, buf)
		if err != nil && err != io.ErrUnexpectedEOF {
			return 0, fmt.Errorf("grain at sector %d: %w", val, err)
		}
		n = int(min(int64(n), capBytes-off))
		if _, err := w.WriteAt(buf[:n], off); err != nil {
			return 0, fmt.Errorf("grain at sector %d: %w", val, err)
		}
	}
}
