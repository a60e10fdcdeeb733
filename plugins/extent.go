package plugins

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// MaxExtents bounds how many distinct extents ParseExtents keeps in memory
// (16 bytes each, so at most 160 MB). Adjacent or overlapping lines of a
// sorted list are merged as they are read and count once.
const MaxExtents = 10_000_000

// extentCap is MaxExtents, lowered by tests.
var extentCap = MaxExtents

// maxExtentLine bounds one line of an extent list; a valid pair needs at most
// 40 bytes, so anything longer is a long comment or not an extent list.
const maxExtentLine = 64 << 10

// ParseExtents reads an extent-list file (the file plugin's
// --changed-extents): one "OFFSET LENGTH" pair of decimal byte counts per
// line, separated by white space. Blank lines and lines whose first non-blank
// character is '#' are ignored, and so are pairs of zero length. Errors name
// the line and what is wrong with it. The result is sorted, with overlapping
// and adjacent ranges merged; it is not checked against any disk capacity
// (see NormalizeExtents). A valid list without extents gives an empty, non-nil
// slice, which OpenOptions.ChangedExtents reads as "nothing changed".
func ParseExtents(r io.Reader) ([]Extent, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxExtentLine)
	var (
		ext    = []Extent{} // not nil: an empty list means "nothing changed"
		sorted = true
		line   int
	)
	for sc.Scan() {
		line++
		e, ok, err := parseExtentLine(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("extent list line %d: %w", line, err)
		}
		if !ok {
			continue
		}
		// Sorted lists (the usual case) are merged as they stream in, so a
		// list of many small adjacent ranges costs one extent of memory.
		if n := len(ext); n > 0 && sorted && e.Offset >= ext[n-1].Offset {
			if last := &ext[n-1]; e.Offset <= last.End() {
				last.Length = max(last.End(), e.End()) - last.Offset
				continue
			}
		} else if n > 0 {
			sorted = false
		}
		if len(ext) >= extentCap {
			return nil, fmt.Errorf("extent list line %d: more than %d distinct extents", line, extentCap)
		}
		ext = append(ext, e)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("extent list line %d: longer than %d bytes", line+1, maxExtentLine)
		}
		return nil, fmt.Errorf("read extent list: %w", err)
	}
	return mergeExtents(ext), nil
}

// parseExtentLine parses one line; ok is false for lines to skip.
func parseExtentLine(s string) (e Extent, ok bool, err error) {
	s = strings.TrimSpace(s)
	if s == "" || s[0] == '#' {
		return Extent{}, false, nil
	}
	f := strings.Fields(s)
	if len(f) != 2 {
		return Extent{}, false, fmt.Errorf("want OFFSET LENGTH, got %d fields", len(f))
	}
	if e.Offset, err = parseCount("offset", f[0]); err != nil {
		return Extent{}, false, err
	}
	if e.Length, err = parseCount("length", f[1]); err != nil {
		return Extent{}, false, err
	}
	if e.Offset > math.MaxInt64-e.Length {
		return Extent{}, false, fmt.Errorf("offset %d + length %d overflows a 64-bit byte count", e.Offset, e.Length)
	}
	return e, e.Length > 0, nil
}

// parseCount parses a non-negative decimal byte count, without a sign.
func parseCount(what, s string) (int64, error) {
	digits := strings.TrimPrefix(s, "-")
	for _, c := range []byte(digits) {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%s %q is not a decimal number", what, s)
		}
	}
	if digits == "" {
		return 0, fmt.Errorf("%s %q is not a decimal number", what, s)
	}
	if len(digits) != len(s) {
		return 0, fmt.Errorf("%s %s is negative", what, s)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s %s is larger than a 64-bit byte count", what, s)
	}
	return n, nil
}

// NormalizeExtents returns ext sorted, without empty ranges, with overlapping
// and adjacent ranges merged, as Changes.Extents must be. It fails if a range
// is negative or ends past capacity. ext itself is not modified, and a
// non-nil ext gives a non-nil result.
func NormalizeExtents(ext []Extent, capacity int64) ([]Extent, error) {
	if capacity < 0 {
		return nil, fmt.Errorf("normalize extents: negative capacity %d", capacity)
	}
	if ext == nil {
		return nil, nil
	}
	out := make([]Extent, 0, len(ext))
	for i, e := range ext {
		switch {
		case e.Offset < 0 || e.Length < 0:
			return nil, fmt.Errorf("extent %d (offset %d, length %d): negative", i, e.Offset, e.Length)
		case e.Offset > capacity || e.Length > capacity-e.Offset:
			return nil, fmt.Errorf("extent %d (offset %d, length %d) ends past the disk's capacity %d",
				i, e.Offset, e.Length, capacity)
		case e.Length > 0:
			out = append(out, e)
		}
	}
	return mergeExtents(out), nil
}

// mergeExtents sorts valid, non-empty extents in place and coalesces the
// overlapping and adjacent ones.
func mergeExtents(ext []Extent) []Extent {
	slices.SortFunc(ext, func(a, b Extent) int { return cmp.Compare(a.Offset, b.Offset) })
	out := ext[:0]
	for _, e := range ext {
		if n := len(out); n > 0 && e.Offset <= out[n-1].End() {
			out[n-1].Length = max(out[n-1].End(), e.End()) - out[n-1].Offset
			continue
		}
		out = append(out, e)
	}
	return slices.Clip(out)
}
