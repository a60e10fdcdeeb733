package lvm

import (
	"context"
	"fmt"

	"github.com/cairnhq/cairn/plugins"
)

// Kind wires the lvm plugin: sources are {"vg": VG} or {"vg": VG, "lv": LV}
// on the appliance's own volume groups, driven with the LVM tools in PATH
// (or /usr/sbin, /sbin). A restore destination "lvm:SOURCE" (or "lvm:VG")
// is a new thin volume named by the "lv-name" option (default: the restore
// point's object) in the "thin-pool" option's pool (default: the pool of the
// volume it replaces or of the object, or the VG's only pool).
func Kind() plugins.Kind { return NewKind(Options{}) }

// NewKind is Kind with other collaborators, for running the plugin against
// something other than this host's LVM.
func NewKind(opts Options) plugins.Kind {
	return plugins.Kind{
		Name: "lvm",
		NewSource: func(_ context.Context, cfg plugins.SourceConfig) (plugins.Source, error) {
			c, err := ParseSettings(cfg.Name, cfg.Settings)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", err, plugins.ErrInvalid)
			}
			return New(c, opts)
		},
		NewTarget: func(_ context.Context, cfg plugins.TargetConfig) (plugins.Target, error) {
			t, err := newTarget(cfg, opts)
			if err != nil {
				return nil, err
			}
			return t, nil
		},
	}
}
