package vcsimtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
)

// block is the granularity of the emulated change tracking and of sparse
// copies: 64 KiB, like CBT on VMFS.
const block = 64 << 10

// diskID names a disk: the VM's moref value and the device key.
type diskID struct {
	vm  string
	key int32
}

// extent is a byte range.
type extent struct{ off, n int64 }

func (e extent) end() int64 { return e.off + e.n }

// write is a guest write stamped with the change sequence it happened in.
type write struct {
	seq int
	ext extent
}

// disk is the harness's state for one virtual disk.
type disk struct {
	id       diskID
	vmName   string
	flat     string // local path of the flat extent
	capacity int64

	uuid   string  // change tracking identity; a reset replaces it
	seq    int     // snapshots taken so far; writes are stamped with it
	writes []write // guest writes since the last reset

	frozen int      // snapshots holding the flat file
	redo   *os.File // guest writes while frozen
	redoEx []extent
}

func (d *disk) closeRedo() {
	if d.redo != nil {
		d.redo.Close()
		os.Remove(d.redo.Name())
		d.redo, d.redoEx = nil, nil
	}
}

// localPath maps "[ds] path" to the file on this machine.
func (s *Sim) localPath(dsPath string) (string, error) {
	var p object.DatastorePath
	if !p.FromString(dsPath) {
		return "", fmt.Errorf("bad datastore path %q", dsPath)
	}
	dir, err := s.datastoreDir(p.Datastore)
	if err != nil {
		return "", err
	}
	clean := path.Clean("/" + p.Path)
	return filepath.Join(dir, filepath.FromSlash(clean)), nil
}

func (s *Sim) datastoreDir(name string) (string, error) {
	for _, e := range s.model.Map().All("Datastore") {
		if ds, ok := e.(*simulator.Datastore); ok && ds.Name == name {
			return ds.Summary.Url, nil
		}
	}
	return "", fmt.Errorf("datastore %q not found", name)
}

// fillFlat sizes the flat file to the capacity and copies the image into
// it, leaving holes where the image has zeros.
func fillFlat(flat string, d Disk) error {
	f, err := os.OpenFile(flat, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(d.Capacity); err != nil {
		return err
	}
	if d.Image == "" {
		return nil
	}
	img, err := os.Open(d.Image)
	if err != nil {
		return err
	}
	defer img.Close()
	if fi, err := img.Stat(); err != nil {
		return err
	} else if fi.Size() > d.Capacity {
		return fmt.Errorf("image %s holds %d bytes, more than the disk's %d", d.Image, fi.Size(), d.Capacity)
	}
	return copySparse(f, img, 0)
}

// copySparse copies r to w at off, skipping all-zero blocks.
func copySparse(w io.WriterAt, r io.Reader, off int64) error {
	buf := make([]byte, block)
	zero := make([]byte, block)
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 && !bytes.Equal(buf[:n], zero[:n]) {
			if _, werr := w.WriteAt(buf[:n], off); werr != nil {
				return werr
			}
		}
		off += int64(n)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// Write writes p at off of the VM's disk number i (in device order) as the
// guest would: into the flat file, or into the redo log while a snapshot
// holds the disk. Change tracking records it.
func (s *Sim) Write(vm string, i int, off int64, p []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.diskLocked(vm, i)
	if err != nil {
		return err
	}
	if off < 0 || off > d.capacity || int64(len(p)) > d.capacity-off {
		return fmt.Errorf("write %d bytes at %d: outside the %d-byte disk", len(p), off, d.capacity)
	}
	if len(p) == 0 {
		return nil
	}
	e := extent{off, int64(len(p))}
	if d.frozen > 0 {
		if d.redo == nil {
			r, err := os.CreateTemp(filepath.Dir(d.flat), filepath.Base(d.flat)+".redo-")
			if err != nil {
				return err
			}
			d.redo = r
		}
		if _, err := d.redo.WriteAt(p, off); err != nil {
			return err
		}
		d.redoEx = append(d.redoEx, e)
	} else if err := writeFile(d.flat, p, off); err != nil {
		return err
	}
	d.writes = append(d.writes, write{d.seq, e})
	return nil
}

func writeFile(name string, p []byte, off int64) error {
	f, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(p, off); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ReadAt reads the VM's disk number i as the guest sees it now.
func (s *Sim) ReadAt(vm string, i int, p []byte, off int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.diskLocked(vm, i)
	if err != nil {
		return 0, err
	}
	if off >= d.capacity {
		return 0, io.EOF
	}
	want := p[:min(int64(len(p)), d.capacity-off)]
	f, err := os.Open(d.flat)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n, err := f.ReadAt(want, off)
	if err == io.EOF {
		clear(want[n:]) // a flat file shorter than the disk reads as zeros
		n, err = len(want), nil
	}
	if err != nil {
		return n, err
	}
	for _, e := range d.redoEx {
		lo, hi := max(e.off, off), min(e.end(), off+int64(len(want)))
		if lo < hi {
			if _, err := d.redo.ReadAt(want[lo-off:hi-off], lo); err != nil {
				return 0, err
			}
		}
	}
	if len(want) < len(p) {
		return len(want), io.EOF
	}
	return len(want), nil
}

// Capacity returns the capacity of the VM's disk number i.
func (s *Sim) Capacity(vm string, i int) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.diskLocked(vm, i)
	if err != nil {
		return 0, err
	}
	return d.capacity, nil
}

func (s *Sim) diskLocked(vm string, i int) (*disk, error) {
	ids := s.vmDisks[vm]
	if i < 0 || i >= len(ids) {
		return nil, fmt.Errorf("vm %q has no disk %d", vm, i)
	}
	return s.disks[ids[i]], nil
}

// consolidate merges a disk's redo log into its flat file, as removing the
// last snapshot does.
func (d *disk) consolidate() error {
	if d.redo == nil {
		return nil
	}
	defer d.closeRedo()
	f, err := os.OpenFile(d.flat, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, e := range d.redoEx {
		if _, err := io.Copy(io.NewOffsetWriter(f, e.off), io.NewSectionReader(d.redo, e.off, e.n)); err != nil {
			return err
		}
	}
	return nil
}

// Ext4Image makes a sparse raw image of size bytes at path holding a real
// ext4 filesystem with the contents of the directory src (mkfs.ext4 -d).
func Ext4Image(ctx context.Context, path string, size int64, src string) error {
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		if mkfs, err = exec.LookPath("/usr/sbin/mkfs.ext4"); err != nil {
			return ErrNoMkfs
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, mkfs, "-q", "-F", "-b", "4096", "-d", src, path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("mkfs.ext4 -d %s %s: %w: %s", src, path, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// VMs lists the names of the VMs the harness created.
func (s *Sim) VMs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for n := range s.vmDisks {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
