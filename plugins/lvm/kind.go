package lvm

import (
	"context"
	"fmt"

	"github.com/cairnhq/cairn/plugins"
)

// Kind wires the lvm plugin: sources are {"vg": VG} or {"vg": VG, "lv": LV}
// on the appliance's own volume groups, driven with the LVM tools in PATH
// (or /usr/sbin, /sbin). It offers no restore target; restore a thin
// volume's restore point to its device with "file:/dev/VG/LV --overwrite".
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
	}
}
