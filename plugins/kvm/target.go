package kvm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/cairnhq/cairn/plugins"
	"github.com/cairnhq/cairn/plugins/nbd"
	"github.com/cairnhq/cairn/plugins/nbd/qemunbd"
)

// PartialSuffix is appended to a target path to name the image a restore
// writes before Commit renames it into place.
const PartialSuffix = ".cairn-partial"

// Target restores one disk to a new qcow2 or raw image file.
type Target struct {
	path      string
	format    string
	overwrite bool
	tools     Tools
}

var _ plugins.Target = (*Target)(nil)

// NewTarget returns a target that writes an image of format ("qcow2" or
// "raw") at path; an existing file there is replaced only with overwrite.
func NewTarget(path, format string, overwrite bool, tools Tools) (*Target, error) {
	switch format {
	case "":
		format = "qcow2"
	case "qcow2", "raw":
	default:
		return nil, fmt.Errorf("image format %q: want qcow2 or raw: %w", format, plugins.ErrInvalid)
	}
	return &Target{path: path, format: format, overwrite: overwrite, tools: tools}, nil
}

// Create makes PATH.cairn-partial with qemu-img create (so every cluster
// starts unallocated) and serves it writable through qemu-nbd; all-zero
// writes become NBD_CMD_WRITE_ZEROES that leave holes. Commit flushes, stops
// qemu-nbd and renames the image over PATH.
func (t *Target) Create(ctx context.Context, spec plugins.DiskSpec) (plugins.Writer, error) {
	if spec.Capacity < 0 || spec.Capacity%512 != 0 {
		return nil, fmt.Errorf("restore to %s: capacity %d is not a whole number of 512-byte sectors, as QEMU images are", t.path, spec.Capacity)
	}
	switch fi, err := os.Stat(t.path); {
	case err == nil && !fi.Mode().IsRegular():
		return nil, fmt.Errorf("restore to %s: not a regular file: %w", t.path, plugins.ErrUnsupported)
	case err == nil && !t.overwrite:
		return nil, fmt.Errorf("restore to %s: %w", t.path, plugins.ErrExists)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("restore to %s: %w", t.path, err)
	}
	partial := t.path + PartialSuffix
	// O_EXCL: a partial image means another restore runs, or one crashed.
	f, err := os.OpenFile(partial, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("restore to %s: %w", t.path, err)
	}
	f.Close()
	fail := func(err error) (plugins.Writer, error) {
		os.Remove(partial)
		return nil, fmt.Errorf("restore to %s: %w", t.path, err)
	}
	if _, err := t.tools.qemuImg(ctx, "create", "-q", "-f", t.format, partial, strconv.FormatInt(spec.Capacity, 10)); err != nil {
		return fail(err)
	}
	srv, c, err := t.tools.serve(ctx, nbd.Options{Export: "restore"},
		"--format="+t.format, "--export-name=restore", "--discard=unmap", "--detect-zeroes=unmap", partial)
	if err != nil {
		return fail(err)
	}
	if c.Size() != spec.Capacity {
		c.Close()
		_ = srv.Stop()
		return fail(fmt.Errorf("qemu-nbd exports %d bytes, want %d", c.Size(), spec.Capacity))
	}
	return &writer{t: t, partial: partial, srv: srv, client: c}, nil
}

type writer struct {
	t       *Target
	partial string
	srv     *qemunbd.Server
	client  *nbd.Client

	mu    sync.Mutex
	state int // 0 writing, 1 committed, 2 aborted
}

var errDone = errors.New("restore already committed or aborted")

func (w *writer) WriteAt(p []byte, off int64) (int, error) {
	w.mu.Lock()
	st := w.state
	w.mu.Unlock()
	if st != 0 {
		return 0, errDone
	}
	if isZero(p) {
		if err := w.client.WriteZeroes(off, int64(len(p))); err != nil {
			return 0, fmt.Errorf("restore to %s: %w", w.t.path, err)
		}
		return len(p), nil
	}
	n, err := w.client.WriteAt(p, off)
	if err != nil {
		return 0, fmt.Errorf("restore to %s: %w", w.t.path, err)
	}
	return n, nil
}

func isZero(p []byte) bool {
	const step = 4096
	var zero [step]byte
	for len(p) > 0 {
		n := min(len(p), step)
		if !bytes.Equal(p[:n], zero[:n]) {
			return false
		}
		p = p[n:]
	}
	return true
}

// Commit flushes the image, stops qemu-nbd and renames the image into place.
func (w *writer) Commit(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch w.state {
	case 1:
		return nil
	case 2:
		return errDone
	}
	err := w.client.Flush(ctx)
	w.client.Close()
	if serr := w.srv.Stop(); err == nil {
		err = serr
	}
	if err == nil {
		err = os.Rename(w.partial, w.t.path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(w.t.path))
	}
	if err != nil {
		w.state = 2
		os.Remove(w.partial)
		return fmt.Errorf("restore to %s: commit: %w", w.t.path, err)
	}
	w.state = 1
	return nil
}

// Abort stops qemu-nbd and removes the partial image.
func (w *writer) Abort(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state != 0 {
		return nil
	}
	w.state = 2
	w.client.Close()
	err := w.srv.Stop()
	if rerr := os.Remove(w.partial); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	if err != nil {
		return fmt.Errorf("restore to %s: abort: %w", w.t.path, err)
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
