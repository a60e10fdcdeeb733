package lvm

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/cairnhq/cairn/plugins"
)

// Data block sizes dm-thin allows, in 512-byte sectors: 64 KiB to 1 GiB, in
// multiples of 64 KiB.
const (
	minBlockSectors = 128
	maxBlockSectors = 2097152
)

// maxRanges bounds how many ranges one thin_delta report may hold once
// adjacent ones are merged (24 bytes each), so a runaway report cannot
// exhaust memory.
const maxRanges = 4_000_000

// sectorSize is the unit of the superblock's data_block_size.
const sectorSize = 512

// Range kinds in a thin_delta report.
const (
	rangeSame      = "same"
	rangeDifferent = "different"
	rangeLeftOnly  = "left_only"
	rangeRightOnly = "right_only"
)

// Delta is a parsed thin_delta report: which pool data blocks of two thin
// devices differ.
type Delta struct {
	// BlockSize is the pool's data block size in bytes.
	BlockSize int64
	// Left and Right are the thin device IDs compared (--snap1, --snap2).
	Left, Right int64
	// Changed are the blocks mapped differently in Right than in Left:
	// different, left_only (unmapped since) and right_only (newly mapped),
	// sorted and merged, in blocks.
	Changed []blockRange
	// Same are the blocks both devices map to the same data block, sorted
	// and merged, in blocks. Comparing a device with itself lists every
	// block it maps.
	Same []blockRange
}

// blockRange is a run of pool data blocks.
type blockRange struct {
	Begin, Length int64
}

func (r blockRange) end() int64 { return r.Begin + r.Length }

// ParseDelta reads the XML thin_delta prints without --verbose:
//
//	<superblock uuid="" time="1" transaction="2" data_block_size="128" nr_data_blocks="1024">
//	  <diff left="1" right="2">
//	    <same begin="0" length="4"/>
//	    <different begin="4" length="1"/>
//	    <left_only begin="7" length="1"/>
//	    <right_only begin="12" length="1"/>
//	  </diff>
//	</superblock>
//
// It is strict: one superblock holding one diff, only the four range
// elements, every number decimal, ranges in ascending order without overlap,
// and a data block size dm-thin allows. Anything else is an error saying
// what was wrong.
func ParseDelta(r io.Reader) (*Delta, error) {
	dec := xml.NewDecoder(r)
	dec.Strict = true
	d := &Delta{}
	var (
		depth    int // 1 inside superblock, 2 inside diff
		sawSuper bool
		sawDiff  bool
		lastEnd  int64
	)
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("thin_delta report: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch {
			case depth == 0 && t.Name.Local == "superblock" && !sawSuper:
				sawSuper = true
				if err := d.superblock(t.Attr); err != nil {
					return nil, err
				}
			case depth == 1 && t.Name.Local == "diff" && !sawDiff:
				sawDiff = true
				if d.Left, err = attrInt(t, "left"); err != nil {
					return nil, err
				}
				if d.Right, err = attrInt(t, "right"); err != nil {
					return nil, err
				}
			case depth == 2 && isRangeKind(t.Name.Local):
				end, err := d.addRange(t, lastEnd)
				if err != nil {
					return nil, err
				}
				lastEnd = end
			default:
				return nil, fmt.Errorf("thin_delta report: unexpected element <%s> at depth %d", t.Name.Local, depth)
			}
			depth++
		case xml.EndElement:
			depth--
		case xml.CharData:
			if len(xmlTrim(t)) != 0 {
				return nil, fmt.Errorf("thin_delta report: unexpected text %q", truncate(string(t)))
			}
		case xml.Comment, xml.ProcInst:
			// A header or comment carries no data.
		case xml.Directive:
			return nil, errors.New("thin_delta report: unexpected directive")
		}
	}
	switch {
	case !sawSuper:
		return nil, errors.New("thin_delta report: no <superblock>")
	case !sawDiff:
		return nil, errors.New("thin_delta report: no <diff>")
	case depth != 0:
		return nil, errors.New("thin_delta report: truncated")
	}
	return d, nil
}

func (d *Delta) superblock(attrs []xml.Attr) error {
	sectors, err := attrInt(xml.StartElement{Name: xml.Name{Local: "superblock"}, Attr: attrs}, "data_block_size")
	if err != nil {
		return err
	}
	if sectors < minBlockSectors || sectors > maxBlockSectors || sectors%minBlockSectors != 0 {
		return fmt.Errorf("thin_delta report: data_block_size %d sectors is not one dm-thin allows (64 KiB to 1 GiB in multiples of 64 KiB)", sectors)
	}
	d.BlockSize = sectors * sectorSize
	return nil
}

// addRange records one range element that must start at or after lastEnd and
// returns its end.
func (d *Delta) addRange(t xml.StartElement, lastEnd int64) (int64, error) {
	begin, err := attrInt(t, "begin")
	if err != nil {
		return 0, err
	}
	length, err := attrInt(t, "length")
	if err != nil {
		return 0, err
	}
	if length == 0 {
		return 0, fmt.Errorf("thin_delta report: <%s begin=%d> has length 0", t.Name.Local, begin)
	}
	// Blocks are turned into bytes later: keep every end representable.
	if limit := math.MaxInt64 / d.BlockSize; begin > limit || length > limit-begin {
		return 0, fmt.Errorf("thin_delta report: <%s begin=%d length=%d> lies past any disk", t.Name.Local, begin, length)
	}
	if begin < lastEnd {
		return 0, fmt.Errorf("thin_delta report: <%s begin=%d> overlaps or precedes the range ending at block %d", t.Name.Local, begin, lastEnd)
	}
	r := blockRange{begin, length}
	if t.Name.Local == rangeSame {
		d.Same, err = appendRange(d.Same, r)
	} else {
		d.Changed, err = appendRange(d.Changed, r)
	}
	return r.end(), err
}

// appendRange adds r after the ranges in rs, merging it with the last one
// when they touch.
func appendRange(rs []blockRange, r blockRange) ([]blockRange, error) {
	if n := len(rs); n > 0 && rs[n-1].end() == r.Begin {
		rs[n-1].Length += r.Length
		return rs, nil
	}
	if len(rs) >= maxRanges {
		return nil, fmt.Errorf("thin_delta report: more than %d separate ranges", maxRanges)
	}
	return append(rs, r), nil
}

func isRangeKind(s string) bool {
	switch s {
	case rangeSame, rangeDifferent, rangeLeftOnly, rangeRightOnly:
		return true
	}
	return false
}

// attrInt returns a required non-negative decimal attribute.
func attrInt(t xml.StartElement, name string) (int64, error) {
	var (
		val   string
		found bool
	)
	for _, a := range t.Attr {
		if a.Name.Local == name && a.Name.Space == "" {
			if found {
				return 0, fmt.Errorf("thin_delta report: <%s> repeats %s", t.Name.Local, name)
			}
			val, found = a.Value, true
		}
	}
	if !found {
		return 0, fmt.Errorf("thin_delta report: <%s> has no %s", t.Name.Local, name)
	}
	for _, c := range []byte(val) {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("thin_delta report: <%s %s=%q> is not a decimal number", t.Name.Local, name, truncate(val))
		}
	}
	n, err := strconv.ParseInt(val, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("thin_delta report: <%s %s=%q> is not a 64-bit count", t.Name.Local, name, truncate(val))
	}
	return n, nil
}

func xmlTrim(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\n' || b[0] == '\t' || b[0] == '\r') {
		b = b[1:]
	}
	return b
}

// truncate keeps error messages short whatever the tool printed.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// extents turns block ranges into byte extents clipped to capacity: a thin
// device's last block may reach past its size.
func extents(rs []blockRange, blockSize, capacity int64) []plugins.Extent {
	out := make([]plugins.Extent, 0, len(rs))
	for _, r := range rs {
		off := r.Begin * blockSize
		if off >= capacity {
			break
		}
		out = append(out, plugins.Extent{Offset: off, Length: min(r.end()*blockSize, capacity) - off})
	}
	return out
}
