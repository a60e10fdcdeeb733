package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"

	"github.com/cairnhq/cairn/plugins"
)

// Change methods this plugin reports.
const (
	MethodAllocated   = "allocated"
	MethodFull        = "full"
	MethodExtentList  = "extent-list"
	MethodHashCompare = "hash-compare"
)

// snapshot is the live file, read in place.
type snapshot struct {
	disk *disk
	once sync.Once
	err  error
}

func (s *snapshot) Disks() []plugins.Disk { return []plugins.Disk{s.disk} }

// Consistency is "none": the file is read while live.
func (s *snapshot) Consistency() string { return "none" }

// Close closes the file. The plugin creates nothing else to clean up.
func (s *snapshot) Close(ctx context.Context) error {
	s.once.Do(func() {
		if err := s.disk.f.Close(); err != nil {
			s.err = fmt.Errorf("close %s: %w", s.disk.path, err)
		}
	})
	return s.err
}

// disk reads the file. Capacity is fixed when the file is opened.
type disk struct {
	f        *os.File
	path     string
	capacity int64
	device   bool
	changed  []plugins.Extent // normalized OpenOptions.ChangedExtents, or nil

	seekMu sync.Mutex // SEEK_DATA/SEEK_HOLE move the shared file offset
}

func (d *disk) Key() string     { return diskKey }
func (d *disk) Capacity() int64 { return d.capacity }

// ReadAt reads the file with pread, so concurrent calls are safe. Reads stop
// at the capacity seen at Open. A live file that shrank below it makes reads
// of the missing part fail rather than come back short.
func (d *disk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read %s at %d: negative offset", d.path, off)
	}
	if off >= d.capacity {
		return 0, io.EOF
	}
	want := p
	if rest := d.capacity - off; int64(len(p)) > rest {
		want = p[:rest]
	}
	n, err := d.f.ReadAt(want, off)
	if err == io.EOF && n < len(want) {
		return n, fmt.Errorf("read %s at %d: file shrank below %d bytes during the backup: %w",
			d.path, off+int64(n), d.capacity, io.ErrUnexpectedEOF)
	}
	if err != nil && err != io.EOF {
		return n, fmt.Errorf("read %s: %w", d.path, err)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Changes reports what to read.
//
// With the caller's extent list and a base of the same capacity, it is a
// delta of exactly those extents ("extent-list"). An extent list without a
// base, or with a base of another capacity, cannot be a delta, so the result
// is a full read like a first backup ("allocated", or "full" for a block
// device) and the engine notes the fallback. Without an extent list, a base
// makes the read "hash-compare": the same full read, with the engine storing
// only blocks whose hash differs from the base's index.
//
// The token is always empty: the plugin has no change tracking of its own.
func (d *disk) Changes(ctx context.Context, base *plugins.Base) (*plugins.Changes, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if d.changed != nil && base != nil && base.Capacity == d.capacity {
		return &plugins.Changes{Extents: slices.Clone(d.changed), Delta: true, Method: MethodExtentList}, nil
	}
	ext, method, err := d.allocated(ctx)
	if err != nil {
		return nil, err
	}
	if base != nil && d.changed == nil {
		method = MethodHashCompare
	}
	return &plugins.Changes{Extents: ext, Method: method}, nil
}

// allocated returns the extents that hold data: the allocated ones of a
// regular file ("allocated"), or the whole disk when the file is a block
// device or its filesystem cannot report holes ("full").
func (d *disk) allocated(ctx context.Context) ([]plugins.Extent, string, error) {
	whole := []plugins.Extent{}
	if d.capacity > 0 {
		whole = append(whole, plugins.Extent{Offset: 0, Length: d.capacity})
	}
	if d.device {
		return whole, MethodFull, nil
	}
	d.seekMu.Lock()
	defer d.seekMu.Unlock()
	ext, err := dataExtents(ctx, d.f, d.capacity)
	if errors.Is(err, errNoSeekData) {
		return whole, MethodFull, nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("map allocated extents of %s: %w", d.path, err)
	}
	return ext, MethodAllocated, nil
}
