package openstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/cairnhq/cairn/plugins"
	"github.com/cairnhq/cairn/plugins/nbd"
	"github.com/cairnhq/cairn/plugins/nbd/qemunbd"
)

// qemuDevice is a network volume (iSCSI, NFS, RBD...) that qemu-nbd opens
// with QEMU's block drivers and serves to this process on a Unix socket:
// the volume is reached in user space, with no kernel initiator, no kernel
// module and nothing left on the host when the process dies (qemu-nbd gets
// SIGTERM with its parent).
type qemuDevice struct {
	name string // for messages; never holds a secret
	srv  *qemunbd.Server
	c    *nbd.Client

	mu     sync.Mutex
	closed bool
}

// qemuExport is the export name qemu-nbd serves a device under.
const qemuExport = "volume"

// connectQemu starts qemu-nbd with cfg (whose Args end with the image: a
// QEMU filename such as "iscsi://...", or "--image-opts" options) and
// connects to it. name names the device in messages.
func connectQemu(ctx context.Context, name string, cfg qemunbd.Config) (device, error) {
	cfg.Args = append([]string{"--export-name=" + qemuExport, "--cache=writethrough", "--discard=unmap"}, cfg.Args...)
	srv, c, err := qemunbd.Start(ctx, cfg, nbd.Options{Export: qemuExport, MetaContexts: []string{nbd.ContextAllocation}})
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", name, err)
	}
	return &qemuDevice{name: name, srv: srv, c: c}, nil
}

func (d *qemuDevice) String() string { return d.name }

// Open returns a one-disk view of the volume; its Changes reports the
// extents qemu's block status says hold data.
func (d *qemuDevice) Open(context.Context) (plugins.Snapshot, error) {
	return &qemuView{d: d}, nil
}

// OpenWriter returns a writer of capacity bytes in place: Commit writes
// zeroes (unmapping where the volume can) over every range not written and
// flushes.
func (d *qemuDevice) OpenWriter(_ context.Context, capacity int64) (plugins.Writer, error) {
	if size := d.c.Size(); size < capacity {
		return nil, fmt.Errorf("restore to %s: it holds %d bytes, the disk needs %d", d.name, size, capacity)
	}
	if d.c.Flags()&nbd.FlagReadOnly != 0 {
		return nil, fmt.Errorf("restore to %s: the volume is read-only", d.name)
	}
	return &qemuWriter{d: d, capacity: capacity}, nil
}

// Close disconnects and stops qemu-nbd.
func (d *qemuDevice) Close(context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	cerr := d.c.Close()
	if err := d.srv.Stop(); err != nil {
		return fmt.Errorf("disconnect %s: %w", d.name, err)
	}
	if cerr != nil && !errors.Is(cerr, io.EOF) {
		return fmt.Errorf("disconnect %s: %w", d.name, cerr)
	}
	return nil
}

// qemuView is the backup view of a qemuDevice: one disk, the whole volume.
type qemuView struct{ d *qemuDevice }

func (v *qemuView) Disks() []plugins.Disk { return []plugins.Disk{(*qemuDisk)(v)} }

// Consistency is "none" for the device itself; the snapshot that owns it
// says how the volume was frozen.
func (v *qemuView) Consistency() string         { return "none" }
func (v *qemuView) Close(context.Context) error { return nil }

// qemuDisk reads a qemuDevice.
type qemuDisk qemuView

func (k *qemuDisk) Key() string     { return diskKey }
func (k *qemuDisk) Capacity() int64 { return k.d.c.Size() }

func (k *qemuDisk) ReadAt(p []byte, off int64) (int, error) {
	n, err := k.d.c.ReadAt(p, off)
	if err != nil && err != io.EOF {
		return n, fmt.Errorf("read %s: %w", k.d.name, err)
	}
	return n, err
}

// Changes lists the extents that hold data (neither holes nor reading as
// zeros) as an "allocated" full read; base is not used (the owner decides
// how an incremental is made).
func (k *qemuDisk) Changes(ctx context.Context, _ *plugins.Base) (*plugins.Changes, error) {
	c := k.d.c
	ext := []plugins.Extent{}
	err := c.BlockStatus(ctx, nbd.ContextAllocation, 0, c.Size(), func(e nbd.Extent) error {
		if e.Flags&nbd.StateZero != 0 {
			return nil
		}
		if n := len(ext); n > 0 && ext[n-1].End() == e.Offset {
			ext[n-1].Length += e.Length
		} else {
			ext = append(ext, plugins.Extent{Offset: e.Offset, Length: e.Length})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("map the allocated extents of %s: %w", k.d.name, err)
	}
	return &plugins.Changes{Extents: ext, Method: MethodAllocated}, nil
}

// qemuWriter restores in place into a qemuDevice.
type qemuWriter struct {
	d        *qemuDevice
	capacity int64

	mu      sync.Mutex
	written []plugins.Extent
	done    string // "", "commit" or "abort"
}

func (w *qemuWriter) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off > w.capacity || int64(len(p)) > w.capacity-off {
		return 0, fmt.Errorf("write %d bytes at %d to %s: outside the %d-byte disk", len(p), off, w.d.name, w.capacity)
	}
	w.mu.Lock()
	done := w.done
	w.mu.Unlock()
	if done != "" {
		return 0, fmt.Errorf("write to %s: the restore was already %sed", w.d.name, done)
	}
	n, err := w.d.c.WriteAt(p, off)
	if n > 0 {
		w.mu.Lock()
		w.written = append(w.written, plugins.Extent{Offset: off, Length: int64(n)})
		if len(w.written) > 4096 {
			w.written, _ = plugins.NormalizeExtents(w.written, w.capacity) // ranges were checked
		}
		w.mu.Unlock()
	}
	if err != nil {
		return n, fmt.Errorf("write %s: %w", w.d.name, err)
	}
	return n, nil
}

// Commit zeroes every range not written and flushes.
func (w *qemuWriter) Commit(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch w.done {
	case "commit":
		return nil
	case "abort":
		return fmt.Errorf("commit %s: the restore was aborted", w.d.name)
	}
	written, err := plugins.NormalizeExtents(w.written, w.capacity)
	if err != nil {
		return fmt.Errorf("commit %s: %w", w.d.name, err)
	}
	var at int64
	zero := func(end int64) error {
		if end > at {
			if err := w.d.c.WriteZeroes(at, end-at); err != nil {
				return fmt.Errorf("commit %s: zero %d bytes at %d: %w", w.d.name, end-at, at, err)
			}
		}
		return nil
	}
	for _, e := range written {
		if err := zero(e.Offset); err != nil {
			return err
		}
		at = e.End()
	}
	if err := zero(w.capacity); err != nil {
		return err
	}
	if err := w.d.c.Flush(ctx); err != nil {
		return fmt.Errorf("commit %s: flush: %w", w.d.name, err)
	}
	w.done = "commit"
	return nil
}

// Abort stops writing; the volume's content is then undefined.
func (w *qemuWriter) Abort(context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done == "" {
		w.done = "abort"
	}
	return nil
}
