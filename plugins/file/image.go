package file

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// holeBlock is the granularity at which written zeros become holes. It
// matches the 4 KiB block of ext4 and XFS; on filesystems with larger
// blocks the kernel zeroes the partial blocks of a punched range.
const holeBlock = 4096

var zeroBlock [holeBlock]byte

// imageWriter restores into a new regular file under a temporary name.
type imageWriter struct {
	path, partial string
	capacity      int64
	noPunch       atomic.Bool // the filesystem refused to punch holes

	mu    sync.RWMutex // writes hold it shared, Commit and Abort exclusive
	f     *os.File     // nil once closed
	state state
}

// createPartial creates PATH.cairn-partial, sized so that everything not
// written is a hole.
func createPartial(path string, capacity int64) (*imageWriter, error) {
	dir := filepath.Dir(path)
	if fi, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("restore to %s: directory %s does not exist", path, dir)
	} else if err != nil {
		return nil, fmt.Errorf("restore to %s: %w", path, err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("restore to %s: %s is not a directory", path, dir)
	}
	partial := path + PartialSuffix
	f, err := os.OpenFile(partial, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("restore to %s: %s exists: another restore to this path is running, "+
			"or one was interrupted (remove the file to retry)", path, partial)
	}
	if err != nil {
		return nil, fmt.Errorf("restore to %s: %w", path, err)
	}
	if err := f.Truncate(capacity); err != nil {
		f.Close()
		os.Remove(partial)
		return nil, fmt.Errorf("restore to %s: size %s: %w", path, partial, err)
	}
	return &imageWriter{path: path, partial: partial, capacity: capacity, f: f}, nil
}

// WriteAt writes p at off. Whole 4 KiB blocks of zeros are punched out
// instead of written, so the image stays sparse even when zeros are written
// explicitly (or over data written earlier).
func (w *imageWriter) WriteAt(p []byte, off int64) (int, error) {
	if err := checkRange(w.partial, off, len(p), w.capacity); err != nil {
		return 0, err
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.state != writing || w.f == nil {
		return 0, fmt.Errorf("write to %s: %w", w.partial, errDone)
	}
	// p[data:i] is data not yet written; i advances over whole blocks of
	// the file, starting at the first block boundary in p.
	data := 0
	i := int(min((holeBlock-off%holeBlock)%holeBlock, int64(len(p))))
	for i+holeBlock <= len(p) {
		if !bytes.Equal(p[i:i+holeBlock], zeroBlock[:]) {
			i += holeBlock
			continue
		}
		j := i + holeBlock
		for j+holeBlock <= len(p) && bytes.Equal(p[j:j+holeBlock], zeroBlock[:]) {
			j += holeBlock
		}
		if i > data {
			if n, err := w.f.WriteAt(p[data:i], off+int64(data)); err != nil {
				return data + n, fmt.Errorf("write %s: %w", w.partial, err)
			}
		}
		if err := w.zero(p[i:j], off+int64(i)); err != nil {
			return i, err
		}
		data, i = j, j
	}
	n, err := w.f.WriteAt(p[data:], off+int64(data))
	if err != nil {
		return data + n, fmt.Errorf("write %s: %w", w.partial, err)
	}
	return len(p), nil
}

// zero makes the range of the zero-filled z at off read as zeros, as a hole
// where the filesystem can punch one.
func (w *imageWriter) zero(z []byte, off int64) error {
	if !w.noPunch.Load() {
		err := fallocate(w.f, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, int64(len(z)))
		if err == nil {
			return nil
		}
		if !unsupported(err) {
			return fmt.Errorf("punch hole in %s: %w", w.partial, err)
		}
		w.noPunch.Store(true)
	}
	if _, err := w.f.WriteAt(z, off); err != nil {
		return fmt.Errorf("write %s: %w", w.partial, err)
	}
	return nil
}

// Commit makes the file durable and renames it over the target path. If
// the rename succeeds but syncing the directory fails, the disk is in place
// and Commit still reports the error.
func (w *imageWriter) Commit(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch w.state {
	case committed:
		return nil
	case aborted:
		return fmt.Errorf("commit %s: %w", w.path, errDone)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("commit %s: %w", w.path, err)
	}
	if w.f != nil {
		if err := w.f.Sync(); err != nil {
			return fmt.Errorf("commit %s: sync %s: %w", w.path, w.partial, err)
		}
		err := w.f.Close()
		w.f = nil
		if err != nil {
			return fmt.Errorf("commit %s: close %s: %w", w.path, w.partial, err)
		}
	}
	if err := os.Rename(w.partial, w.path); err != nil {
		return fmt.Errorf("commit %s: %w", w.path, err)
	}
	w.state = committed
	if err := syncDir(filepath.Dir(w.path)); err != nil {
		return fmt.Errorf("commit %s: %w", w.path, err)
	}
	return nil
}

// Abort removes the partial file. After Commit it does nothing.
func (w *imageWriter) Abort(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state != writing {
		return nil
	}
	w.state = aborted
	if w.f != nil {
		w.f.Close() // the file is removed; a close error changes nothing
		w.f = nil
	}
	if err := os.Remove(w.partial); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("abort restore to %s: %w", w.path, err)
	}
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// fallocate calls fallocate(2) on f.
func fallocate(f *os.File, mode uint32, off, n int64) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = unix.Fallocate(int(fd), mode, off, n) }); err != nil {
		return err
	}
	return ferr
}

// unsupported reports whether a fallocate error means the file or device
// cannot do that kind of fallocate, rather than that it failed.
func unsupported(err error) bool {
	return errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) ||
		errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.ENODEV)
}
