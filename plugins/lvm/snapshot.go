package lvm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/cairnhq/cairn/plugins"
)

// Change methods this plugin reports.
const (
	MethodAllocated = "allocated"
	MethodThinDelta = "thin-delta"
)

// diskKey is the key of a thin volume's only disk.
const diskKey = "disk0"

// snapshot is a thin snapshot Cairn made of one thin volume.
type snapshot struct {
	src    *Source
	origin Volume
	name   string // the thin snapshot's LV name
	thinID int64
	dev    Device
	disk   *disk

	mu        sync.Mutex
	committed bool
	closed    bool
	closeErr  error
}

var (
	_ plugins.Snapshot  = (*snapshot)(nil)
	_ plugins.Committer = (*snapshot)(nil)
)

// start activates the new snapshot, learns its thin ID and opens its device.
func (s *snapshot) start(ctx context.Context) error {
	lvm, vg := s.src.lvm, s.src.cfg.VG
	if err := lvm.Activate(ctx, vg, s.name); err != nil {
		return err
	}
	vols, err := lvm.Volumes(ctx, vg)
	if err != nil {
		return err
	}
	v, ok := find(vols, s.name)
	switch {
	case !ok:
		return fmt.Errorf("snapshot %s/%s: lvs does not list it after lvcreate", vg, s.name)
	case !v.Thin() || v.Pool != s.origin.Pool:
		return fmt.Errorf("snapshot %s/%s: lvs reports it is not a thin volume in pool %s (attributes %q, pool %q)", vg, s.name, s.origin.Pool, v.Attr, v.Pool)
	case v.Size != s.origin.Size:
		return fmt.Errorf("snapshot %s/%s: %d bytes, but its origin has %d", vg, s.name, v.Size, s.origin.Size)
	}
	s.thinID = v.ThinID
	path := lvm.DevicePath(vg, s.name)
	dev, err := s.src.open(path)
	if err != nil {
		return fmt.Errorf("open snapshot device: %w", err)
	}
	s.dev = dev
	s.disk = &disk{snap: s, capacity: v.Size}
	return nil
}

func (s *snapshot) Disks() []plugins.Disk { return []plugins.Disk{s.disk} }

// Consistency is "crash-consistent": a thin snapshot is taken atomically,
// without quiescing whatever writes the volume.
func (s *snapshot) Consistency() string { return "crash-consistent" }

// Committed keeps this snapshot as the base of the next incremental and
// removes every older snapshot this source made of the volume: the restore
// point that named it is superseded, and so are snapshots an interrupted run
// left behind.
func (s *snapshot) Committed(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("snapshot %s/%s: committed after Close removed it", s.src.cfg.VG, s.name)
	}
	s.committed = true
	vols, err := s.src.lvm.Volumes(ctx, s.src.cfg.VG)
	if err != nil {
		return fmt.Errorf("rotate snapshots of %s/%s: %w", s.src.cfg.VG, s.origin.Name, err)
	}
	var errs []error
	for name := range s.src.ours(vols, s.origin.Name) {
		if name != s.name {
			errs = append(errs, s.src.lvm.Remove(ctx, s.src.cfg.VG, name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("rotate snapshots of %s/%s: %w", s.src.cfg.VG, s.origin.Name, err)
	}
	return nil
}

// Close closes the device and, unless the backup was committed, removes the
// snapshot: a failed backup leaves the previous base in place and nothing
// new. A kept snapshot is deactivated, so nothing mounts or writes it before
// the next backup compares against it.
func (s *snapshot) Close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return s.closeErr
	}
	s.closed = true
	ctx = context.WithoutCancel(ctx)
	var errs []error
	if s.dev != nil {
		if err := s.dev.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close snapshot device: %w", err))
		}
	}
	switch {
	case !s.committed:
		errs = append(errs, s.src.lvm.Remove(ctx, s.src.cfg.VG, s.name))
	case s.dev != nil:
		errs = append(errs, s.src.lvm.Deactivate(ctx, s.src.cfg.VG, s.name))
	}
	s.closeErr = errors.Join(errs...)
	return s.closeErr
}

// removeIfExists removes the snapshot after a failed lvcreate, if lvcreate
// got as far as making it.
func (s *snapshot) removeIfExists(ctx context.Context) error {
	s.closed = true
	ctx = context.WithoutCancel(ctx)
	vols, err := s.src.lvm.Volumes(ctx, s.src.cfg.VG)
	if err != nil {
		return fmt.Errorf("check for a half-made snapshot %s: %w", s.name, err)
	}
	if _, ok := find(vols, s.name); ok {
		return s.src.lvm.Remove(ctx, s.src.cfg.VG, s.name)
	}
	return nil
}

// disk reads the snapshot device.
type disk struct {
	snap     *snapshot
	capacity int64
}

func (d *disk) Key() string     { return diskKey }
func (d *disk) Capacity() int64 { return d.capacity }

// ReadAt reads the snapshot device, never past the volume's size.
func (d *disk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read snapshot %s at negative offset %d", d.snap.name, off)
	}
	if off >= d.capacity {
		return 0, io.EOF
	}
	short := int64(len(p)) > d.capacity-off
	if short {
		p = p[:d.capacity-off]
	}
	n, err := d.snap.dev.ReadAt(p, off)
	if err != nil && err != io.EOF {
		return n, fmt.Errorf("read snapshot %s: %w", d.snap.name, err)
	}
	if short || n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Changes compares the new snapshot with the base's through thin_delta, or
// lists the blocks it maps for a full backup.
func (d *disk) Changes(ctx context.Context, base *plugins.Base) (*plugins.Changes, error) {
	s := d.snap
	token := fmt.Sprintf("%s@%d", s.name, s.thinID)
	var note string
	if base != nil {
		left, ok, err := d.baseThinID(ctx, base.ChangeToken)
		switch {
		case err != nil:
			return nil, err
		case ok && base.Capacity == d.capacity:
			delta, err := d.delta(ctx, left)
			if err != nil {
				return nil, err
			}
			return &plugins.Changes{Extents: extents(delta.Changed, delta.BlockSize, d.capacity),
				Delta: true, Method: MethodThinDelta, Token: token}, nil
		case ok:
			note = fmt.Sprintf("the volume changed size since snapshot %s: reading the allocated blocks in full", tokenName(base.ChangeToken))
		default:
			note = fmt.Sprintf("the base snapshot %s is gone or was replaced: reading the allocated blocks in full", tokenName(base.ChangeToken))
		}
	}
	delta, err := d.delta(ctx, s.thinID)
	if err != nil {
		return nil, err
	}
	return &plugins.Changes{Extents: extents(delta.Same, delta.BlockSize, d.capacity),
		Method: MethodAllocated, Token: token, Note: note}, nil
}

// tokenName is the snapshot name in a change token, for messages.
func tokenName(token string) string {
	name, _, _ := strings.Cut(token, "@")
	if validName(name) != nil {
		return fmt.Sprintf("%q", truncate(token))
	}
	return name
}

// baseThinID finds the base's snapshot from its change token "NAME@THINID";
// ok is false when it is gone or is no longer the same thin device.
func (d *disk) baseThinID(ctx context.Context, token string) (int64, bool, error) {
	s := d.snap
	name, idText, found := strings.Cut(token, "@")
	id, err := strconv.ParseInt(idText, 10, 64)
	if !found || err != nil || validName(name) != nil {
		return 0, false, nil
	}
	vols, err := s.src.lvm.Volumes(ctx, s.src.cfg.VG)
	if err != nil {
		return 0, false, err
	}
	v, ok := find(vols, name)
	if !ok || v.ThinID != id || v.Pool != s.origin.Pool || v.Origin != s.origin.Name || v.Name == s.name {
		return 0, false, nil
	}
	return id, true, nil
}

// delta runs thin_delta from the left thin device to the new snapshot on a
// reserved metadata snapshot, released again whatever happens.
func (d *disk) delta(ctx context.Context, left int64) (_ *Delta, err error) {
	s := d.snap
	lvm, vg, pool := s.src.lvm, s.src.cfg.VG, s.origin.Pool
	mu := poolLock(vg, pool)
	mu.Lock()
	defer mu.Unlock()
	if err := lvm.ReserveMetadataSnap(ctx, vg, pool); err != nil {
		// A backup killed between reserve and release leaves the pool's
		// metadata snapshot held, and every later reserve fails.
		return nil, fmt.Errorf("%w (if no other tool holds the pool's metadata snapshot, an interrupted backup may have left it: release it with dmsetup message %s 0 release_metadata_snap)", err, poolDevice(vg, pool))
	}
	defer func() {
		if rerr := lvm.ReleaseMetadataSnap(context.WithoutCancel(ctx), vg, pool); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}()
	out, err := lvm.Delta(ctx, vg, pool, left, s.thinID)
	if err != nil {
		return nil, err
	}
	delta, err := ParseDelta(bytes.NewReader(out))
	if err != nil {
		return nil, fmt.Errorf("compare thin devices %d and %d: %w", left, s.thinID, err)
	}
	if delta.Left != left || delta.Right != s.thinID {
		return nil, fmt.Errorf("compare thin devices %d and %d: thin_delta reported on %d and %d", left, s.thinID, delta.Left, delta.Right)
	}
	return delta, nil
}
