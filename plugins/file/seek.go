package file

import (
	"context"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/cairnhq/cairn/plugins"
)

// errNoSeekData means the filesystem cannot report holes.
var errNoSeekData = errors.New("SEEK_DATA not supported")

// dataExtents maps the data of a regular file in [0, capacity) with
// SEEK_DATA and SEEK_HOLE. Extents are as coarse as the filesystem's
// allocation (ext4: 4 KiB blocks). Filesystems without hole support report
// the whole file as data, or fail with errNoSeekData. The caller serializes
// calls, as seeking moves the file's shared offset (ReadAt does not use it).
func dataExtents(ctx context.Context, f *os.File, capacity int64) ([]plugins.Extent, error) {
	ext := []plugins.Extent{}
	for off := int64(0); off < capacity; {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		data, err := f.Seek(off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // no data at or after off
		}
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
			return nil, errNoSeekData
		}
		if err != nil {
			return nil, err
		}
		if data >= capacity {
			break
		}
		hole, err := f.Seek(data, unix.SEEK_HOLE)
		if errors.Is(err, unix.ENXIO) {
			hole = capacity // the live file shrank after SEEK_DATA
		} else if err != nil {
			return nil, err
		}
		if hole <= data {
			return nil, fmt.Errorf("SEEK_HOLE from %d returned %d", data, hole)
		}
		hole = min(hole, capacity)
		ext = append(ext, plugins.Extent{Offset: data, Length: hole - data})
		off = hole
	}
	return ext, nil
}
