package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/cairnhq/cairn/plugins"
)

// zeroChunk is how many zeros are written at a time when the device cannot
// zero a range itself.
const zeroChunk = 1 << 20

// deviceWriter restores in place onto a block device. It records what was
// written so that Commit can zero the rest.
type deviceWriter struct {
	path     string
	capacity int64

	mu    sync.RWMutex // writes hold it shared, Commit and Abort exclusive
	f     *os.File     // nil once closed
	state state

	wmu       sync.Mutex
	written   []plugins.Extent
	compactAt int
}

// openDevice opens a block device exclusively for writing: the kernel refuses
// if it is mounted or claimed (by device-mapper, md, another O_EXCL opener).
func openDevice(path string, capacity int64) (*deviceWriter, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_EXCL, 0)
	if errors.Is(err, unix.EBUSY) {
		return nil, fmt.Errorf("restore to %s: device is mounted or in use: %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("restore to %s: %w", path, err)
	}
	size, err := deviceSize(f)
	if err == nil && size < capacity {
		err = fmt.Errorf("device holds %d bytes, the disk needs %d", size, capacity)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("restore to %s: %w", path, err)
	}
	return &deviceWriter{path: path, capacity: capacity, f: f, compactAt: 1024}, nil
}

func (w *deviceWriter) WriteAt(p []byte, off int64) (int, error) {
	if err := checkRange(w.path, off, len(p), w.capacity); err != nil {
		return 0, err
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.state != writing || w.f == nil {
		return 0, fmt.Errorf("write to %s: %w", w.path, errDone)
	}
	n, err := w.f.WriteAt(p, off)
	if n > 0 {
		w.record(plugins.Extent{Offset: off, Length: int64(n)})
	}
	if err != nil {
		return n, fmt.Errorf("write %s: %w", w.path, err)
	}
	return n, nil
}

// record notes a written range, merging the list now and then so that it
// stays about as long as the number of separate runs written.
func (w *deviceWriter) record(e plugins.Extent) {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	w.written = append(w.written, e)
	if len(w.written) >= w.compactAt {
		w.written, _ = plugins.NormalizeExtents(w.written, w.capacity) // ranges were checked
		w.compactAt = 2*len(w.written) + 1024
	}
}

// Commit zeroes every range not written and flushes the device.
func (w *deviceWriter) Commit(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch w.state {
	case committed:
		return nil
	case aborted:
		return fmt.Errorf("commit %s: %w", w.path, errDone)
	}
	if w.f == nil {
		return fmt.Errorf("commit %s: device closed after an earlier failure", w.path)
	}
	// Flush first: zeroing a range drops the device's cached pages there.
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("commit %s: sync: %w", w.path, err)
	}
	written, err := plugins.NormalizeExtents(w.written, w.capacity)
	if err != nil {
		return fmt.Errorf("commit %s: %w", w.path, err)
	}
	for _, g := range gaps(written, w.capacity) {
		if err := zeroRange(ctx, w.f, g.Offset, g.Length); err != nil {
			return fmt.Errorf("commit %s: zero %d bytes at %d: %w", w.path, g.Length, g.Offset, err)
		}
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("commit %s: sync: %w", w.path, err)
	}
	err = w.f.Close()
	w.f = nil
	if err != nil {
		return fmt.Errorf("commit %s: close: %w", w.path, err)
	}
	w.state = committed
	return nil
}

// Abort closes the device, whose content is then undefined. After Commit it
// does nothing.
func (w *deviceWriter) Abort(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state != writing {
		return nil
	}
	w.state = aborted
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	if err != nil {
		return fmt.Errorf("abort restore to %s: %w", w.path, err)
	}
	return nil
}

// gaps returns the ranges of [0, capacity) outside the sorted, merged ext.
func gaps(ext []plugins.Extent, capacity int64) []plugins.Extent {
	var out []plugins.Extent
	off := int64(0)
	for _, e := range ext {
		if e.Offset > off {
			out = append(out, plugins.Extent{Offset: off, Length: e.Offset - off})
		}
		off = e.End()
	}
	if off < capacity {
		out = append(out, plugins.Extent{Offset: off, Length: capacity - off})
	}
	return out
}

// zeroRange makes [off, off+n) of a block device read as zeros. The
// page-aligned middle is zeroed by the device (discard that guarantees
// zeros, or write-zeroes); the unaligned edges, and everything on devices
// that cannot, are written with zeros.
func zeroRange(ctx context.Context, f *os.File, off, n int64) error {
	page := int64(os.Getpagesize())
	start := (off + page - 1) / page * page
	end := (off + n) / page * page
	if start >= end {
		return writeZeros(ctx, f, off, n)
	}
	if err := writeZeros(ctx, f, off, start-off); err != nil {
		return err
	}
	if err := deviceZero(ctx, f, start, end-start); err != nil {
		return err
	}
	return writeZeros(ctx, f, end, off+n-end)
}

// deviceZero asks the device to zero a page-aligned range.
func deviceZero(ctx context.Context, f *os.File, off, n int64) error {
	for _, mode := range []uint32{
		unix.FALLOC_FL_PUNCH_HOLE | unix.FALLOC_FL_KEEP_SIZE, // discard, unmapping thin storage
		unix.FALLOC_FL_ZERO_RANGE | unix.FALLOC_FL_KEEP_SIZE, // write-zeroes
	} {
		err := fallocate(f, mode, off, n)
		if err == nil {
			return nil
		}
		if !unsupported(err) {
			return fmt.Errorf("fallocate: %w", err)
		}
	}
	return writeZeros(ctx, f, off, n)
}

// writeZeros writes n zeros at off, checking ctx between chunks.
func writeZeros(ctx context.Context, f io.WriterAt, off, n int64) error {
	if n <= 0 {
		return nil
	}
	buf := make([]byte, min(n, zeroChunk))
	for n > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := buf[:min(n, int64(len(buf)))]
		if _, err := f.WriteAt(p, off); err != nil {
			return err
		}
		off += int64(len(p))
		n -= int64(len(p))
	}
	return nil
}
