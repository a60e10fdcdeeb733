//go:build !vddk || !cgo

package libvix

import (
	"context"

	"github.com/cairnhq/cairn/vddk"
)

// LibVix is the libvixDiskLib transport; this build has no VDDK.
type LibVix struct{ cfg Config }

// Open returns vddk.ErrNotBuilt.
func (l *LibVix) Open(ctx context.Context, ref vddk.DiskRef) (vddk.Disk, error) {
	return nil, vddk.ErrNotBuilt
}

// Built reports whether the binding is compiled in.
func Built() bool { return false }
