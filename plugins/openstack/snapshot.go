package openstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/attachments"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/snapshots"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"

	"github.com/cairnhq/cairn/plugins"
)

// Change methods this plugin reports.
const (
	MethodAllocated   = "allocated"    // a full backup of the allocated extents
	MethodFull        = "full"         // a full backup of every byte
	MethodHashCompare = "hash-compare" // a full read compared with the base's index
)

// diskKey is the key of a volume's only disk.
const diskKey = "volume"

var _ plugins.Committer = (*snapshot)(nil)

// snapshot is an open backup of one volume: a Cinder snapshot, a volume
// made from it, and that volume attached to this appliance.
type snapshot struct {
	a      *api
	timing Timing
	vol    *volumes.Volume

	snapID string      // the Cinder snapshot, once created
	readID string      // the volume made from it, once created
	att    *attachment // its attachment, once attached
	view   plugins.Snapshot
	disk   *disk

	mu        sync.Mutex
	token     bool  // Changes handed out snapID as a change token
	committed bool  // the restore point with that token is in the catalog
	failed    error // a read or check failed
	closeOnce sync.Once
	closeErr  error
}

// open makes the snapshot, the read volume and the attachment. On error
// the caller closes s, which removes whatever was made.
func (s *snapshot) open(ctx context.Context) error {
	a, vol := s.a, s.vol
	stamp := time.Now().UTC().Format("20060102T150405Z")
	sn, err := snapshots.Create(ctx, a.sc, snapshots.CreateOpts{
		VolumeID: vol.ID,
		// A snapshot of an attached volume needs force: it is crash-consistent.
		Force:       vol.Status == "in-use",
		Name:        namePrefix + vol.ID + "-" + stamp,
		Description: "Cairn backup point of volume " + vol.ID,
		Metadata:    map[string]string{metaRole: rolePoint},
	}).Extract()
	if err != nil {
		return fmt.Errorf("snapshot volume %s (status %s): %w", vol.ID, vol.Status, err)
	}
	s.snapID = sn.ID
	if sn, err = a.waitSnapshot(ctx, sn.ID); err != nil {
		return fmt.Errorf("snapshot volume %s: %w", vol.ID, err)
	}
	rv, err := volumes.Create(ctx, a.sc, volumes.CreateOpts{
		Size:             sn.Size,
		SnapshotID:       sn.ID,
		Name:             namePrefix + "read-" + sn.ID,
		Description:      "Cairn reads snapshot " + sn.ID + " of volume " + vol.ID + " through this volume",
		AvailabilityZone: vol.AvailabilityZone,
		Metadata:         map[string]string{metaRole: roleRead, metaSource: vol.ID},
	}, nil).Extract()
	if err != nil {
		return fmt.Errorf("make a volume from snapshot %s: %w", sn.ID, err)
	}
	s.readID = rv.ID
	if rv, err = a.waitVolume(ctx, rv.ID, "available"); err != nil {
		return fmt.Errorf("make a volume from snapshot %s: %w", sn.ID, err)
	}
	if s.att, err = a.attach(ctx, rv.ID); err != nil {
		return err
	}
	capacity := int64(vol.Size) * GiB
	view, err := s.att.Device.Open(ctx)
	if err != nil {
		return fmt.Errorf("open the attached device %s: %w", s.att.Device, err)
	}
	s.view = view
	inner := view.Disks()[0]
	if inner.Capacity() < capacity {
		return fmt.Errorf("the attached device %s holds %d bytes, less than the volume's %d GiB", s.att.Device, inner.Capacity(), vol.Size)
	}
	s.disk = &disk{s: s, inner: inner, capacity: capacity}
	return nil
}

func (s *snapshot) Disks() []plugins.Disk { return []plugins.Disk{s.disk} }

// Consistency is crash-consistent: Cinder snapshots the volume, forced
// while it is attached, without quiescing the guest.
func (s *snapshot) Consistency() string { return "crash-consistent" }

// fail records the first error that makes this snapshot unfit to keep.
func (s *snapshot) fail(err error) {
	s.mu.Lock()
	if s.failed == nil {
		s.failed = err
	}
	s.mu.Unlock()
}

// Committed is called once the restore point taken from this snapshot is in
// the catalog: the Cinder snapshot becomes the base of the next backup, and
// every other backup snapshot of the volume (the previous base, those of
// failed runs) is deleted.
func (s *snapshot) Committed(ctx context.Context) error {
	s.mu.Lock()
	if !s.token {
		s.mu.Unlock()
		return fmt.Errorf("commit the backup of volume %s: no change token was handed out", s.vol.ID)
	}
	s.committed = true
	s.mu.Unlock()
	if err := s.prune(ctx, ""); err != nil {
		return fmt.Errorf("commit the backup of volume %s: %w", s.vol.ID, err)
	}
	return nil
}

// Close detaches and deletes the read volume, and deletes the Cinder
// snapshot unless Committed kept it. Each step is retried through API
// errors for Timing.Cleanup; what is left after that is removed by the next
// run on the volume.
func (s *snapshot) Close(ctx context.Context) error {
	s.closeOnce.Do(func() { s.closeErr = s.close(ctx) })
	return s.closeErr
}

func (s *snapshot) close(ctx context.Context) error {
	var errs []error
	if s.view != nil {
		errs = append(errs, s.view.Close(ctx))
	}
	step := func(f func(context.Context) error) {
		errs = append(errs, retry(ctx, s.timing.Cleanup, f))
	}
	if s.att != nil {
		step(func(ctx context.Context) error { return s.a.detach(ctx, s.att) })
	}
	if s.readID != "" {
		// removeVolume also detaches what a failed attach left.
		step(func(ctx context.Context) error { return s.a.removeVolume(ctx, s.readID) })
	}
	s.mu.Lock()
	keep := s.committed
	s.mu.Unlock()
	if s.snapID != "" && !keep {
		step(func(ctx context.Context) error { return s.a.deleteSnapshot(ctx, s.snapID) })
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("clean up the backup of volume %s: %w", s.vol.ID, err)
	}
	return nil
}

// disk reads the attached read volume.
type disk struct {
	s        *snapshot
	inner    plugins.Disk // the file plugin's reader over the device
	capacity int64

	mu        sync.Mutex
	lastCheck time.Time
}

func (d *disk) Key() string     { return diskKey }
func (d *disk) Capacity() int64 { return d.capacity }

// ReadAt reads the device. Every Timing.Check it first confirms through
// the API that the attachment still exists: a read whose attachment was
// removed, or that can no longer reach Cinder to clean up, fails rather
// than let a restore point be made from a view the plugin cannot vouch for.
func (d *disk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read volume %s at %d: negative offset", d.s.vol.ID, off)
	}
	if err := d.check(); err != nil {
		return 0, err
	}
	if off >= d.capacity {
		return 0, io.EOF
	}
	want := p
	if rest := d.capacity - off; int64(len(p)) > rest {
		want = p[:rest]
	}
	n, err := d.inner.ReadAt(want, off)
	if err != nil && err != io.EOF {
		d.s.fail(err)
		return n, err
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (d *disk) check() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.s.failedErr() != nil {
		return d.s.failedErr()
	}
	if time.Since(d.lastCheck) < d.s.timing.Check {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	at, err := attachments.Get(ctx, d.s.a.sc, d.s.att.ID).Extract()
	switch {
	case err != nil:
		err = fmt.Errorf("read volume %s: lost the Cinder API (attachment %s): %w", d.s.vol.ID, d.s.att.ID, err)
	case at.Status != "attached":
		err = fmt.Errorf("read volume %s: attachment %s is %q, no longer attached", d.s.vol.ID, at.ID, at.Status)
	}
	if err != nil {
		d.s.fail(err)
		return err
	}
	d.lastCheck = time.Now()
	return nil
}

func (s *snapshot) failedErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

// Changes reports the allocated extents of the snapshot ("allocated", or
// "full" where the device cannot report holes) for a full backup. With a
// base it reports the same full read as "hash-compare", not a delta:
// Cinder has no changed-block tracking, so the engine stores only the
// blocks whose hashes differ from the base's index. The token is the
// Cinder snapshot's ID, kept (see Committed) until the next backup's
// restore point is committed; backup snapshots of the volume other than
// the base's, left by runs that failed, are deleted here.
func (d *disk) Changes(ctx context.Context, base *plugins.Base) (*plugins.Changes, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	ch, err := d.inner.Changes(ctx, nil)
	if err != nil {
		d.s.fail(err)
		return nil, fmt.Errorf("map the allocated extents of volume %s: %w", d.s.vol.ID, err)
	}
	out := &plugins.Changes{Method: ch.Method, Token: d.s.snapID}
	for _, e := range ch.Extents {
		if e.Offset >= d.capacity {
			break
		}
		e.Length = min(e.Length, d.capacity-e.Offset)
		out.Extents = append(out.Extents, e)
	}
	keepBase := ""
	if base != nil {
		out.Method = MethodHashCompare
		keepBase = base.ChangeToken
	}
	if err := d.s.prune(ctx, keepBase); err != nil {
		d.s.fail(err)
		return nil, err
	}
	d.s.mu.Lock()
	d.s.token = true
	d.s.mu.Unlock()
	return out, nil
}

// prune deletes the volume's backup snapshots other than this run's and
// base (if not empty).
func (s *snapshot) prune(ctx context.Context, base string) error {
	snaps, err := s.a.cairnSnapshots(ctx, s.vol.ID)
	if err != nil {
		return err
	}
	for _, sn := range snaps {
		if sn.ID == s.snapID || sn.ID == base {
			continue
		}
		if err := s.a.deleteSnapshot(ctx, sn.ID); err != nil {
			return fmt.Errorf("remove an earlier backup snapshot: %w", err)
		}
	}
	return nil
}
