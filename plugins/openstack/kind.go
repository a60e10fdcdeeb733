// Package openstack is Cairn's plugin for OpenStack Cinder volumes, through
// gophercloud's Block Storage v3 API (microversion 3.44).
//
// A Source protects the volumes of one project, each an object of kind
// "volume" with one disk, "volume", named by the volume's name when unique
// in the project, else by its ID (Open takes either). It authenticates with
// Keystone v3 (an application credential or a user and password, or a
// cloud of clouds.yaml), or talks to a Cinder without Keystone (noauth).
//
// Open snapshots the volume (forced when it is attached: crash-consistent),
// makes a temporary volume from the snapshot, and attaches that volume to
// the appliance through the Cinder attachments API, with the appliance as
// the connector host (no instance_uuid, so no Nova is involved). The
// attachment's connection info must be "driver_volume_type: local" with a
// device_path, which the plugin reads; any other type (iscsi, rbd, ...) is
// refused as plugins.ErrUnsupported until the plugin has a connector for
// it. Close detaches and deletes the temporary volume whatever happened.
//
// Cinder has no changed-block tracking. A full backup reads the allocated
// extents of the device ("allocated", or "full" where the device cannot
// report holes). The Cinder snapshot is the change token, kept once its
// restore point is committed (plugins.Committer), which deletes the
// previous one; a backup that fails deletes its own. So each protected
// volume holds one Cairn snapshot between backups (two during one). An
// incremental reads like a full backup and the engine stores only blocks
// whose hashes differ from the base's index ("hash-compare", not a delta).
// RBD diff between snapshots is not implemented.
//
// Everything the plugin creates is named "cairn-..." and carries
// "cairn-role" metadata; leftovers of a run that crashed or lost the API
// are removed by the next run on the same volume (and restore volumes of
// another process by the next restore).
//
// A Target restores into a new volume (name, type, availability zone; the
// size is the disk's, rounded up to GiB) or onto an existing detached
// volume (overwrite), written in place through an attachment; it is a
// plugins.Finisher reporting "volume_id".
package openstack

import (
	"context"
	"fmt"

	"github.com/cairnhq/cairn/plugins"
)

// Name is the plugin's kind name.
const Name = "openstack"

// Kind wires the plugin into the appliance with the default timing.
func Kind() plugins.Kind { return KindWith(Timing{}) }

// KindWith wires the plugin with the given timing (tests shorten it).
func KindWith(timing Timing) plugins.Kind {
	return plugins.Kind{
		Name: Name,
		NewSource: func(_ context.Context, cfg plugins.SourceConfig) (plugins.Source, error) {
			c, err := ParseConfig(cfg.Settings, cfg.Secrets)
			if err != nil {
				return nil, err
			}
			return NewSource(c, timing), nil
		},
		NewTarget: func(ctx context.Context, cfg plugins.TargetConfig) (plugins.Target, error) {
			return newTarget(ctx, cfg, timing)
		},
	}
}

// newTarget restores with the credentials of the configured source that
// Location names.
func newTarget(_ context.Context, cfg plugins.TargetConfig, timing Timing) (plugins.Target, error) {
	if cfg.Source == nil {
		return nil, fmt.Errorf("restore to openstack:%s: name a configured openstack source: %w", cfg.Location, plugins.ErrInvalid)
	}
	c, err := ParseConfig(cfg.Source.Settings, cfg.Source.Secrets)
	if err != nil {
		return nil, err
	}
	opts, err := ParseTargetOptions(cfg.Options, cfg.Overwrite)
	if err != nil {
		return nil, err
	}
	return NewTarget(NewSource(c, timing), opts, cfg.Object), nil
}
