package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/cairnhq/cairn/cluster/chunk"
)

// ScrubStats reports what Scrub checked.
type ScrubStats struct {
	Chunks  int   // chunks checked
	Bytes   int64 // their sealed bytes
	Damaged int   // chunks reported to fn
}

// Scrub reads every stored chunk and checks it as Get would (record header,
// chunk ID, outer CRC), without keys, calling fn with each damaged chunk and
// why. The error passed to fn wraps chunk.ErrCorrupt unless reading failed
// outright. Scrub stops when fn returns an error and returns that error. It
// reads the index a page at a time, in segment order within a page, and
// runs alongside everything else; a chunk deleted meanwhile is skipped.
func (s *Local) Scrub(ctx context.Context, fn func(id chunk.ID, err error) error) (ScrubStats, error) {
	var st ScrubStats
	if !s.gate.enter() {
		return st, ErrClosed
	}
	defer s.gate.leave()
	var buf []byte
	var f *os.File
	var fseg uint64
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	err := s.pages(ctx, func(page []paged) error {
		slices.SortFunc(page, func(a, b paged) int {
			return cmp.Or(cmp.Compare(a.seg, b.seg), cmp.Compare(a.off, b.off))
		})
		for _, p := range page {
			if err := ctx.Err(); err != nil {
				return err
			}
			if f == nil || fseg != p.seg {
				if f != nil {
					f.Close()
				}
				f, fseg = nil, p.seg
				f, _ = os.Open(s.segPath(p.seg)) // a missing file is handled below
			}
			var err error
			if f == nil {
				err = os.ErrNotExist
			} else {
				if n := recHeaderSize + int(p.size); cap(buf) < n {
					buf = make([]byte, n)
				}
				_, err = readRecord(f, p.loc, p.id, buf)
			}
			if err != nil {
				// Compaction may have moved it, or a Delete removed it,
				// since the page was read: ask again the way Get does.
				_, err = s.get(p.id)
				if errors.Is(err, ErrNotFound) {
					continue
				}
			}
			st.Chunks++
			st.Bytes += int64(p.size)
			if err != nil {
				st.Damaged++
				if ferr := fn(p.id, fmt.Errorf("scrub chunk %s: %w", p.id.Short(), err)); ferr != nil {
					return ferr
				}
			}
		}
		return nil
	})
	return st, err
}
