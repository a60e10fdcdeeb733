package openstack

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"

	"github.com/cairnhq/cairn/plugins"
)

// Restore options (plugins.TargetConfig.Options).
const (
	OptVolumeName       = "volume-name"       // name of the new volume
	OptVolumeType       = "volume-type"       // its volume type
	OptAvailabilityZone = "availability-zone" // its availability zone
	OptVolume           = "volume"            // restore onto this existing, detached volume (ID)
)

// TargetOptions say where a restore goes.
type TargetOptions struct {
	// Volume, if set, is the ID of an existing volume to restore onto; it
	// must be detached ("available") and needs Overwrite.
	Volume string
	// Name, Type and Zone describe a new volume. A Name already used in the
	// project is refused unless Overwrite, which restores onto that volume.
	Name, Type, Zone string
	Overwrite        bool
}

// ParseTargetOptions checks restore options; errors wrap plugins.ErrInvalid.
func ParseTargetOptions(opts map[string]string, overwrite bool) (TargetOptions, error) {
	var t TargetOptions
	for k, v := range opts {
		switch k {
		case OptVolumeName:
			t.Name = v
		case OptVolumeType:
			t.Type = v
		case OptAvailabilityZone:
			t.Zone = v
		case OptVolume:
			t.Volume = v
		default:
			return t, fmt.Errorf("openstack restore: unknown option %q: %w", k, plugins.ErrInvalid)
		}
	}
	if t.Volume != "" && (t.Name != "" || t.Type != "" || t.Zone != "") {
		return t, fmt.Errorf("openstack restore: volume names an existing volume; volume-name, volume-type and availability-zone describe a new one: %w", plugins.ErrInvalid)
	}
	t.Overwrite = overwrite
	return t, nil
}

// Target restores one disk into a Cinder volume: a new one, or an existing
// detached one. The volume is attached to this appliance through the
// attachments API and written in place through its local device; Commit
// zeroes what was not written, detaches, and for a new volume removes the
// marker that lets a later run delete it as a leftover. Finish reports the
// volume's ID.
type Target struct {
	src    *Source // for its connection
	opts   TargetOptions
	object string

	mu       sync.Mutex
	created  bool
	volumeID string // once a disk is committed
}

var (
	_ plugins.Target   = (*Target)(nil)
	_ plugins.Finisher = (*Target)(nil)
)

// NewTarget returns a target restoring with src's connection; object names
// the restore point's object, for the new volume's default name.
func NewTarget(src *Source, opts TargetOptions, object string) *Target {
	return &Target{src: src, opts: opts, object: object}
}

// Create makes (or claims) the volume and attaches it. spec.Key is not
// used: a volume has one disk, and a second Create fails.
func (t *Target) Create(ctx context.Context, spec plugins.DiskSpec) (plugins.Writer, error) {
	if spec.Capacity <= 0 {
		return nil, fmt.Errorf("restore to openstack: capacity %d is not positive", spec.Capacity)
	}
	t.mu.Lock()
	if t.created {
		t.mu.Unlock()
		return nil, fmt.Errorf("restore to openstack: a volume holds one disk; a second disk (%s): %w", spec.Key, plugins.ErrUnsupported)
	}
	t.created = true
	t.mu.Unlock()
	a, err := t.src.client(ctx)
	if err != nil {
		return nil, err
	}
	if err := t.sweep(ctx, a); err != nil {
		return nil, fmt.Errorf("restore to openstack: remove leftovers of an earlier restore: %w", err)
	}
	w := &writer{t: t, a: a, timing: t.src.timing, capacity: spec.Capacity}
	vol, err := t.existing(ctx, a)
	if err != nil {
		return nil, err
	}
	if vol == nil {
		w.fresh = true
		if vol, err = t.newVolume(ctx, a, spec.Capacity, w); err != nil {
			return nil, w.undo(ctx, err)
		}
	} else if int64(vol.Size)*GiB < spec.Capacity {
		return nil, fmt.Errorf("restore onto volume %s: it holds %d GiB, the disk needs %d bytes", vol.ID, vol.Size, spec.Capacity)
	}
	w.volumeID = vol.ID
	if w.att, err = a.attach(ctx, vol.ID); err != nil {
		return nil, w.undo(ctx, err)
	}
	if w.dev, err = w.att.Device.OpenWriter(ctx, spec.Capacity); err != nil {
		return nil, w.undo(ctx, fmt.Errorf("restore onto volume %s: %w", vol.ID, err))
	}
	return w, nil
}

// existing returns the volume to restore onto, or nil for a new one.
func (t *Target) existing(ctx context.Context, a *api) (*volumes.Volume, error) {
	var vol *volumes.Volume
	switch {
	case t.opts.Volume != "":
		v, err := volumes.Get(ctx, a.sc, t.opts.Volume).Extract()
		if notFound(err) {
			return nil, fmt.Errorf("restore onto volume %s: %w", t.opts.Volume, plugins.ErrNotFound)
		}
		if err != nil {
			return nil, fmt.Errorf("restore onto volume %s: %w", t.opts.Volume, err)
		}
		vol = v
	case t.opts.Name != "":
		vols, err := a.listVolumes(ctx, volumes.ListOpts{Name: t.opts.Name})
		if err != nil {
			return nil, err
		}
		for i := range vols {
			if vols[i].Name != t.opts.Name {
				continue
			}
			if vol != nil {
				return nil, fmt.Errorf("restore to volume %q: several volumes have that name; give the ID", t.opts.Name)
			}
			vol = &vols[i]
		}
		if vol == nil {
			return nil, nil
		}
	default:
		return nil, nil
	}
	if !t.opts.Overwrite {
		return nil, fmt.Errorf("restore onto volume %s (%s): it exists and restoring over it needs overwrite: %w", vol.ID, vol.Name, plugins.ErrExists)
	}
	if vol.Status != "available" {
		return nil, fmt.Errorf("restore onto volume %s: its status is %s; it must be detached (available)", vol.ID, vol.Status)
	}
	return vol, nil
}

// newVolume creates a volume for the disk, marked as a restore in progress.
func (t *Target) newVolume(ctx context.Context, a *api, capacity int64, w *writer) (*volumes.Volume, error) {
	name := t.opts.Name
	if name == "" {
		name = namePrefix + "restore-" + strings.Map(func(r rune) rune {
			if r < ' ' || r == 0x7f {
				return '_'
			}
			return r
		}, t.object)
	}
	v, err := volumes.Create(ctx, a.sc, volumes.CreateOpts{
		Size:             int((capacity + GiB - 1) / GiB),
		Name:             name,
		VolumeType:       t.opts.Type,
		AvailabilityZone: t.opts.Zone,
		Description:      "Restored by Cairn from " + t.object,
		Metadata:         map[string]string{metaRole: roleRestore, metaRun: runID},
	}, nil).Extract()
	if err != nil {
		return nil, fmt.Errorf("create volume %q: %w", name, err)
	}
	w.volumeID = v.ID
	if v, err = a.waitVolume(ctx, v.ID, "available"); err != nil {
		return nil, fmt.Errorf("create volume %q: %w", name, err)
	}
	return v, nil
}

// abandoned holds restore volumes this process failed to remove, so the
// next restore's sweep retries them.
var abandoned sync.Map

// sweep deletes restore volumes left by an earlier process (one that
// crashed before Commit or Abort) or abandoned by this one.
func (t *Target) sweep(ctx context.Context, a *api) error {
	vols, err := a.listVolumes(ctx, volumes.ListOpts{Metadata: map[string]string{metaRole: roleRestore}})
	if err != nil {
		return err
	}
	for _, v := range vols {
		_, lost := abandoned.Load(v.ID)
		if v.Metadata[metaRole] != roleRestore || (v.Metadata[metaRun] == runID && !lost) {
			continue
		}
		if err := a.removeVolume(ctx, v.ID); err != nil {
			return err
		}
		abandoned.Delete(v.ID)
	}
	return nil
}

// Finish reports the restored volume's ID as "volume_id".
func (t *Target) Finish(ctx context.Context) (map[string]string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.volumeID == "" {
		return nil, errors.New("restore to openstack: no volume was committed")
	}
	return map[string]string{"volume_id": t.volumeID}, nil
}
