// Package file is Cairn's plugin for raw disk images and block devices.
//
// A Source protects one path: a regular file (kind "image") or a block device
// (kind "block-device"), as one object with one disk, "disk0". The file is
// read in place while it is live, so Snapshot.Consistency is "none": the user
// must quiesce whatever writes it (stop the VM, freeze the filesystem, or
// back up an LVM or filesystem snapshot instead) for the backup to be
// consistent.
//
// The plugin has no change tracking of its own and its change token is always
// empty. A full backup reads the allocated extents of a regular file
// (SEEK_DATA/SEEK_HOLE, method "allocated") or every byte of a block device
// (method "full"). An incremental either uses the caller's extent list
// (OpenOptions.ChangedExtents, method "extent-list", a delta) or reads like a
// full backup while the engine compares block hashes with the base (method
// "hash-compare", not a delta).
//
// A Target restores one disk to one path: a new regular file written under a
// temporary name and renamed into place at Commit, sparse wherever the disk
// is zero; or, with overwrite, an existing block device written in place.
package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/cairnhq/cairn/plugins"
)

// Object kinds.
const (
	KindImage       = "image"
	KindBlockDevice = "block-device"
)

// diskKey is the key of the only disk of a file object.
const diskKey = "disk0"

// Source protects one image file or block device.
type Source struct {
	path string
}

var _ plugins.Source = (*Source)(nil)

// New returns a source for the image file or block device at path. Its one
// object is named after the path's last element.
func New(path string) *Source { return &Source{path: path} }

// name is the object's name.
func (s *Source) name() string { return filepath.Base(s.path) }

// Objects lists the source's one object.
func (s *Source) Objects(ctx context.Context) ([]plugins.Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, kind, size, err := openDisk(s.path)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", s.path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("list %s: %w", s.path, err)
	}
	return []plugins.Object{{
		Name:  s.name(),
		Kind:  kind,
		Size:  size,
		Disks: 1,
		Info:  map[string]string{"path": s.path},
	}}, nil
}

// Open opens the file for reading in place. opts.ChangedExtents, if given,
// must lie within the file; Changes uses it for an incremental.
func (s *Source) Open(ctx context.Context, object string, opts plugins.OpenOptions) (plugins.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if object != s.name() {
		return nil, fmt.Errorf("open %q: source %s holds only %q: %w", object, s.path, s.name(), plugins.ErrNotFound)
	}
	f, kind, size, err := openDisk(s.path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", s.path, err)
	}
	d := &disk{f: f, path: s.path, capacity: size, device: kind == KindBlockDevice}
	if opts.ChangedExtents != nil {
		d.changed, err = plugins.NormalizeExtents(opts.ChangedExtents, size)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("open %s: changed extents: %w", s.path, err)
		}
	}
	return &snapshot{disk: d}, nil
}

// openDisk opens path read-only and reports its kind and size. A missing
// path is plugins.ErrNotFound.
func openDisk(path string) (f *os.File, kind string, size int64, err error) {
	f, err = os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", 0, fmt.Errorf("%w: %w", plugins.ErrNotFound, err)
	}
	if err != nil {
		return nil, "", 0, err
	}
	// Stat the open file, not the path, so the kind matches what is read.
	fi, err := f.Stat()
	if err == nil {
		kind, size, err = kindAndSize(f, fi)
	}
	if err != nil {
		f.Close()
		return nil, "", 0, err
	}
	return f, kind, size, nil
}

func kindAndSize(f *os.File, fi os.FileInfo) (string, int64, error) {
	switch m := fi.Mode(); {
	case m.IsRegular():
		return KindImage, fi.Size(), nil
	case isBlockDevice(m):
		size, err := deviceSize(f)
		return KindBlockDevice, size, err
	default:
		return "", 0, fmt.Errorf("%s is a %s, not an image file or block device: %w", f.Name(), describeMode(m), plugins.ErrUnsupported)
	}
}

func isBlockDevice(m os.FileMode) bool {
	return m&os.ModeDevice != 0 && m&os.ModeCharDevice == 0
}

func describeMode(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&os.ModeCharDevice != 0:
		return "character device"
	case m&os.ModeNamedPipe != 0:
		return "named pipe"
	case m&os.ModeSocket != 0:
		return "socket"
	}
	return "special file"
}

// deviceSize returns the size of an open block device. Seeking to the end
// works on every Linux block device and leaves ReadAt (pread) unaffected.
func deviceSize(f *os.File) (int64, error) {
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, fmt.Errorf("size of block device: %w", err)
	}
	return size, nil
}
