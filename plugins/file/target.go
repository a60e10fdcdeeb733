package file

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/cairnhq/cairn/plugins"
)

// PartialSuffix is appended to a target path to name the file a restore
// writes before Commit renames it into place.
const PartialSuffix = ".cairn-partial"

// Target restores one disk to one path.
type Target struct {
	path      string
	overwrite bool
}

var _ plugins.Target = (*Target)(nil)

// NewTarget returns a target that restores to path. A regular file there is
// replaced at Commit only with overwrite; a block device there is written in
// place, also only with overwrite, since it always exists.
func NewTarget(path string, overwrite bool) *Target {
	return &Target{path: path, overwrite: overwrite}
}

// Create starts restoring a disk of spec.Capacity bytes; spec.Key is not
// used, as the target holds one disk.
//
// A regular file is written to PATH.cairn-partial (mode 0600, in the same
// directory), sparse wherever nothing or only zeros were written, and renamed
// over PATH at Commit. If that partial file exists, another restore to PATH
// is running or one crashed, and Create fails rather than guess which.
//
// A block device is opened exclusively (so a mounted or otherwise claimed
// device is refused) and written in place; Commit zeroes every range of
// [0, spec.Capacity) that was not written, and bytes past spec.Capacity are
// left alone. An aborted restore leaves the device's content undefined.
func (t *Target) Create(ctx context.Context, spec plugins.DiskSpec) (plugins.Writer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if spec.Capacity < 0 {
		return nil, fmt.Errorf("restore to %s: negative capacity %d", t.path, spec.Capacity)
	}
	path := t.path
	fi, err := os.Stat(path)
	switch {
	case err == nil && isBlockDevice(fi.Mode()):
		if !t.overwrite {
			return nil, fmt.Errorf("restore to %s: block device exists and restoring over it needs overwrite: %w",
				path, plugins.ErrExists)
		}
		return openDevice(path, spec.Capacity)
	case err == nil && fi.Mode().IsRegular():
		if !t.overwrite {
			return nil, fmt.Errorf("restore to %s: %w", path, plugins.ErrExists)
		}
		// Replace the file a symlink points to, not the symlink.
		if path, err = filepath.EvalSymlinks(path); err != nil {
			return nil, fmt.Errorf("restore to %s: %w", t.path, err)
		}
	case err == nil:
		return nil, fmt.Errorf("restore to %s: it is a %s, not an image file or block device: %w",
			path, describeMode(fi.Mode()), plugins.ErrUnsupported)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("restore to %s: %w", path, err)
	}
	return createPartial(path, spec.Capacity)
}

// checkRange fails unless [off, off+n) lies within a disk of capacity bytes.
func checkRange(path string, off int64, n int, capacity int64) error {
	if off < 0 || off > capacity || int64(n) > capacity-off {
		return fmt.Errorf("write %d bytes at %d to %s: outside the %d-byte disk", n, off, path, capacity)
	}
	return nil
}

// state is where a writer is in its life.
type state int

const (
	writing state = iota
	committed
	aborted
)

// errDone is returned by writes after Commit or Abort.
var errDone = errors.New("restore already committed or aborted")
