// Package kvm is Cairn's plugin for QEMU/KVM disks, with change tracking by
// QEMU's persistent dirty bitmaps read over NBD.
//
// A source is either an offline qcow2 image (setting "image": a path; the
// object is the file's name, one disk "disk0") or a running VM reached
// through its QMP socket (settings "qmp" and "drive": the object is the
// drive's block node, one disk named after it).
//
// # Bitmaps and points in time
//
// Every backup adds a new persistent, enabled bitmap named
// "cairn-<UTC time>-<random>" at its point in time; that name is the disk's
// change token. An incremental reads the extents marked dirty in the bitmap
// named by its base's token: that bitmap has recorded every write since the
// base's point in time, and the new one records every write from this point
// on, so no write falls between two backups:
//
//   - Offline image: Open adds the new bitmap with `qemu-img bitmap --add`
//     and then exports the image with `qemu-nbd --read-only --bitmap=...`
//     (every usable bitmap of the plugin, since the base is only known when
//     Changes is called). qemu-nbd holds QEMU's image lock while it serves,
//     so no VM can start on the image and write during the backup; a write
//     made between adding the bitmap and the export is read now and marked
//     dirty for the next backup too, which costs a read, never a lost write.
//     Consistency is "none": nothing is snapshotted, the image is read in
//     place and must be offline (Open fails if a VM holds its lock).
//   - Running VM: one QMP transaction adds the new bitmap, starts a
//     fleecing backup job (blockdev-backup sync=none into a temporary qcow2
//     overlay that keeps the point in time's old data) and copies each
//     existing bitmap into a disabled temporary one, so the dirty set and
//     the data are both taken at the same instant while the guest keeps
//     writing. QEMU's NBD server exports the overlay with those copies.
//     Consistency is "crash-consistent".
//
// A base bitmap that is missing, disabled or left "in-use" by a QEMU that
// stopped without saving it cannot be trusted: the disk is then read in full
// (its allocated extents, per base:allocation) and Changes.Note says why.
//
// Rotation: Snapshot.Close keeps the new bitmap only if Changes worked and
// every read succeeded; otherwise it removes it, whatever failed. After a
// successful backup it removes the plugin's bitmaps other than the new one
// and the base's; the base's stays because the appliance commits the new
// restore point after Close, and if that commit fails the next incremental
// starts again from the same base. Bitmaps not named "cairn-..." are never
// touched.
//
// A Target restores one disk into a new qcow2 (default) or raw image: it
// makes PATH.cairn-partial with qemu-img create, writes it through qemu-nbd
// (all-zero blocks as NBD write-zeroes, so they stay unallocated) and renames
// it over PATH at Commit.
package kvm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cairnhq/cairn/plugins"
)

// Kind is the kvm plugin as the appliance wires it.
func Kind() plugins.Kind { return kind(Tools{}) }

func kind(t Tools) plugins.Kind {
	return plugins.Kind{
		Name: "kvm",
		NewSource: func(ctx context.Context, cfg plugins.SourceConfig) (plugins.Source, error) {
			return newSource(ctx, cfg, t)
		},
		NewTarget: func(ctx context.Context, cfg plugins.TargetConfig) (plugins.Target, error) {
			return newTarget(ctx, cfg, t)
		},
	}
}

func newSource(_ context.Context, cfg plugins.SourceConfig, tools Tools) (plugins.Source, error) {
	image, qmp, drive := cfg.Settings["image"], cfg.Settings["qmp"], cfg.Settings["drive"]
	switch {
	case image != "" && (qmp != "" || drive != ""):
		return nil, fmt.Errorf("a kvm source is an image or a QMP socket and drive, not both: %w", plugins.ErrInvalid)
	case image != "":
		if !filepath.IsAbs(image) {
			return nil, fmt.Errorf("image %q is not an absolute path: %w", image, plugins.ErrInvalid)
		}
		if _, err := os.Stat(image); err != nil {
			return nil, fmt.Errorf("image %s: %w", image, plugins.ErrNotFound)
		}
		return NewImage(image, tools), nil
	case qmp != "" && drive != "":
		if !filepath.IsAbs(qmp) {
			return nil, fmt.Errorf("QMP socket %q is not an absolute path: %w", qmp, plugins.ErrInvalid)
		}
		return NewVM(qmp, drive, tools), nil
	default:
		return nil, fmt.Errorf("a kvm source needs an image, or a QMP socket and a drive: %w", plugins.ErrInvalid)
	}
}

func newTarget(_ context.Context, cfg plugins.TargetConfig, tools Tools) (plugins.Target, error) {
	path := cfg.Location
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("path %q is not absolute: %w", path, plugins.ErrInvalid)
	}
	if _, err := os.Stat(path); err == nil && !cfg.Overwrite {
		return nil, fmt.Errorf("%s already exists; restore with --overwrite to replace it: %w", path, plugins.ErrExists)
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("folder %s does not exist: %w", filepath.Dir(path), plugins.ErrInvalid)
	}
	return NewTarget(path, cfg.Options["format"], cfg.Overwrite, tools)
}
