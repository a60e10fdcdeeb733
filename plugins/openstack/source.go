package openstack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"

	"github.com/cairnhq/cairn/plugins"
)

// GiB is Cinder's unit of volume size.
const GiB = 1 << 30

// ObjectKind is the kind of every object the source lists.
const ObjectKind = "volume"

// Timing bounds the waits of a Source or Target. The zero value means the
// defaults.
type Timing struct {
	// Wait bounds how long one Cinder resource may take to become
	// available or to be deleted (default 10 minutes).
	Wait time.Duration
	// Check is how often a read re-checks its attachment through the API
	// (default 30 seconds).
	Check time.Duration
	// Cleanup is how long Close keeps retrying clean-up through API errors
	// before leaving the rest to the next run (default 2 minutes).
	Cleanup time.Duration
}

func (t Timing) withDefaults() Timing {
	if t.Wait <= 0 {
		t.Wait = 10 * time.Minute
	}
	if t.Check <= 0 {
		t.Check = 30 * time.Second
	}
	if t.Cleanup <= 0 {
		t.Cleanup = 2 * time.Minute
	}
	return t
}

// Source protects the Cinder volumes of one project.
type Source struct {
	cfg    Config
	timing Timing

	mu  sync.Mutex
	api *api // connected on first use
}

var _ plugins.Source = (*Source)(nil)

// NewSource returns a source for cfg; it connects on first use.
func NewSource(cfg Config, timing Timing) *Source {
	return &Source{cfg: cfg, timing: timing.withDefaults()}
}

// client connects (authenticates) once and returns the API.
func (s *Source) client(ctx context.Context) (*api, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.api == nil {
		a, err := connectAPI(ctx, s.cfg, s.timing)
		if err != nil {
			return nil, err
		}
		s.api = a
	}
	return s.api, nil
}

func connectAPI(ctx context.Context, cfg Config, timing Timing) (*api, error) {
	sc, err := cfg.connect(ctx)
	if err != nil {
		return nil, err
	}
	host := cfg.Host
	if host == "" {
		if host, err = os.Hostname(); err != nil {
			return nil, fmt.Errorf("connector host name: %w", err)
		}
	}
	return &api{sc: sc, host: host, wait: timing.withDefaults().Wait}, nil
}

// Objects lists the project's volumes, except those Cairn made itself. An
// object is named by its volume's name when that name is unique in the
// project, else by the volume's ID.
func (s *Source) Objects(ctx context.Context) ([]plugins.Object, error) {
	a, err := s.client(ctx)
	if err != nil {
		return nil, err
	}
	vols, err := a.listVolumes(ctx, volumes.ListOpts{})
	if err != nil {
		return nil, err
	}
	count := map[string]int{}
	for _, v := range vols {
		count[v.Name]++
	}
	var out []plugins.Object
	for _, v := range vols {
		if v.Metadata[metaRole] != "" {
			continue
		}
		name := v.ID
		if v.Name != "" && count[v.Name] == 1 {
			name = v.Name
		}
		out = append(out, plugins.Object{
			Name: name, Kind: ObjectKind, Size: int64(v.Size) * GiB, Disks: 1, Info: volumeInfo(v, s.cfg.project()),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// volumeInfo is what a listing shows of a volume.
func volumeInfo(v volumes.Volume, project string) map[string]string {
	info := map[string]string{
		"id": v.ID, "name": v.Name, "status": v.Status, "size_gb": strconv.Itoa(v.Size),
		"volume_type": v.VolumeType, "availability_zone": v.AvailabilityZone,
	}
	if p := v.TenantID; p != "" {
		project = p
	}
	info["project"] = project
	var servers []string
	for _, at := range v.Attachments {
		if at.ServerID != "" {
			servers = append(servers, at.ServerID)
		}
	}
	if len(servers) > 0 {
		info["servers"] = strings.Join(servers, ",")
	}
	for k, val := range v.Metadata {
		info["metadata."+k] = val
	}
	for k, val := range info {
		if val == "" {
			delete(info, k)
		}
	}
	return info
}

// find returns the volume an object names: by ID, else by unique name.
func (a *api) find(ctx context.Context, object string) (*volumes.Volume, error) {
	if object == "" {
		return nil, fmt.Errorf("no volume named: %w", plugins.ErrNotFound)
	}
	v, err := volumes.Get(ctx, a.sc, object).Extract()
	if err == nil {
		return v, nil
	}
	if !notFound(err) {
		return nil, fmt.Errorf("get volume %q: %w", object, err)
	}
	vols, err := a.listVolumes(ctx, volumes.ListOpts{Name: object})
	if err != nil {
		return nil, err
	}
	var match []volumes.Volume
	for _, v := range vols {
		if v.Name == object {
			match = append(match, v)
		}
	}
	switch len(match) {
	case 0:
		return nil, fmt.Errorf("volume %q: %w", object, plugins.ErrNotFound)
	case 1:
		return &match[0], nil
	}
	return nil, fmt.Errorf("%d volumes are named %q: name the volume by its ID", len(match), object)
}

// Open snapshots the volume, makes a volume from the snapshot, attaches it
// to this appliance and opens its device for reading. Whatever fails, what
// Open made is removed before it returns. Leftovers of earlier runs on the
// same volume (temporary volumes and their attachments) are removed first.
func (s *Source) Open(ctx context.Context, object string, opts plugins.OpenOptions) (plugins.Snapshot, error) {
	if opts.ChangedExtents != nil {
		return nil, fmt.Errorf("openstack: a changed-extents list: %w", plugins.ErrUnsupported)
	}
	a, err := s.client(ctx)
	if err != nil {
		return nil, err
	}
	// The caller names the object in its own error; these errors name the
	// volume and the step.
	vol, err := a.find(ctx, object)
	if err != nil {
		return nil, err
	}
	if err := s.sweep(ctx, a, vol.ID); err != nil {
		return nil, fmt.Errorf("remove leftovers of an earlier backup of volume %s: %w", vol.ID, err)
	}
	snap := &snapshot{a: a, timing: s.timing, vol: vol}
	if err := snap.open(ctx); err != nil {
		if cerr := snap.Close(context.WithoutCancel(ctx)); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return nil, err
	}
	return snap, nil
}

// sweep removes what earlier runs on a volume left: temporary read volumes
// (with their attachments) and snapshots in an error state.
func (s *Source) sweep(ctx context.Context, a *api, volumeID string) error {
	vols, err := a.listVolumes(ctx, volumes.ListOpts{Metadata: map[string]string{metaRole: roleRead, metaSource: volumeID}})
	if err != nil {
		return err
	}
	for _, v := range vols {
		if v.Metadata[metaRole] != roleRead || v.Metadata[metaSource] != volumeID {
			continue // an API that ignores the filter
		}
		if err := a.removeVolume(ctx, v.ID); err != nil {
			return err
		}
	}
	snaps, err := a.cairnSnapshots(ctx, volumeID)
	if err != nil {
		return err
	}
	for _, sn := range snaps {
		if sn.Status == "error" {
			if err := a.deleteSnapshot(ctx, sn.ID); err != nil {
				return err
			}
		}
	}
	return nil
}
