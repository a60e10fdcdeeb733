package lvm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"

	"github.com/cairnhq/cairn/plugins"
)

// Restore options (cairn restore ... --lv-name, --thin-pool).
const (
	OptionLVName   = "lv-name"
	OptionThinPool = "thin-pool"
)

// WriteDevice is a volume's device opened for writing.
type WriteDevice interface {
	io.WriterAt
	io.Closer
}

// restoreSuffix names the volume a restore writes before Commit renames it.
const restoreSuffix = ".cairn-restore"

// Target restores one disk into a new thin volume of a volume group.
type Target struct {
	lvm       LVM
	openWrite func(string) (WriteDevice, error)
	vg, name  string
	pool      string // empty: chosen at Create
	object    string // the restore point's object, whose pool is the default
	overwrite bool
}

var _ plugins.Target = (*Target)(nil)

// newTarget reads a restore destination: "lvm:SOURCE" (a configured lvm
// source, whose volume group is used) or "lvm:VG".
func newTarget(cfg plugins.TargetConfig, opts Options) (*Target, error) {
	vg := cfg.Location
	if cfg.Source != nil {
		vg = cfg.Source.Settings[SettingVG]
	}
	name := cfg.Options[OptionLVName]
	if name == "" {
		name = cfg.Object
	}
	t := &Target{lvm: opts.LVM, openWrite: opts.OpenWrite, vg: vg, name: name, pool: cfg.Options[OptionThinPool],
		object: cfg.Object, overwrite: cfg.Overwrite}
	for what, n := range map[string]string{"volume group": vg, "volume name (--lv-name)": name} {
		if err := validName(n); err != nil {
			return nil, fmt.Errorf("lvm restore: %s: %w: %w", what, err, plugins.ErrInvalid)
		}
	}
	if t.pool != "" {
		if err := validName(t.pool); err != nil {
			return nil, fmt.Errorf("lvm restore: thin pool: %w: %w", err, plugins.ErrInvalid)
		}
	}
	if err := validName(name + restoreSuffix); err != nil {
		return nil, fmt.Errorf("lvm restore: volume name %q is too long: %w", name, plugins.ErrInvalid)
	}
	if t.lvm == nil {
		t.lvm = &CLI{Run: Exec}
	}
	if t.openWrite == nil {
		t.openWrite = func(p string) (WriteDevice, error) { return os.OpenFile(p, os.O_WRONLY, 0) }
	}
	return t, nil
}

// choosePool picks the pool: the option, else the pool of the volume being
// replaced, else that of the restore point's object, else the VG's only one.
func (t *Target) choosePool(vols []Volume) (string, error) {
	if t.pool != "" {
		return t.pool, nil
	}
	for _, name := range []string{t.name, t.object} {
		if v, ok := find(vols, name); ok && v.Thin() {
			return v.Pool, nil
		}
	}
	var pools []string
	for _, v := range vols {
		if len(v.Attr) > 0 && v.Attr[0] == 't' {
			pools = append(pools, v.Name)
		}
	}
	if len(pools) != 1 {
		return "", fmt.Errorf("lvm restore: volume group %s has thin pools %q: name one with --thin-pool: %w", t.vg, pools, plugins.ErrInvalid)
	}
	return pools[0], nil
}

// Create makes a thin volume named NAME.cairn-restore to write into; Commit
// gives it its name.
func (t *Target) Create(ctx context.Context, spec plugins.DiskSpec) (plugins.Writer, error) {
	vols, err := t.lvm.Volumes(ctx, t.vg)
	if err != nil {
		return nil, err
	}
	old, exists := find(vols, t.name)
	switch {
	case exists && !t.overwrite:
		return nil, fmt.Errorf("volume %s/%s exists; restore with --overwrite to replace it, or choose another --lv-name: %w", t.vg, t.name, plugins.ErrExists)
	case exists && !old.Thin():
		return nil, fmt.Errorf("volume %s/%s is not a thin volume; the lvm target replaces only thin volumes: %w", t.vg, t.name, plugins.ErrInvalid)
	}
	pool, err := t.choosePool(vols)
	if err != nil {
		return nil, err
	}
	tmp := t.name + restoreSuffix
	if _, ok := find(vols, tmp); ok {
		// An earlier restore to this name was interrupted.
		if err := t.lvm.Remove(ctx, t.vg, tmp); err != nil {
			return nil, err
		}
	}
	if err := t.lvm.CreateThin(ctx, t.vg, pool, tmp, spec.Capacity); err != nil {
		return nil, err
	}
	w := &writer{t: t, tmp: tmp, capacity: spec.Capacity, replace: exists}
	if w.dev, err = t.openWrite(t.lvm.DevicePath(t.vg, tmp)); err != nil {
		err = fmt.Errorf("open %s/%s for writing: %w", t.vg, tmp, err)
		return nil, errors.Join(err, w.Abort(ctx))
	}
	return w, nil
}

// writer fills the temporary volume.
type writer struct {
	t        *Target
	tmp      string
	capacity int64
	replace  bool
	dev      WriteDevice

	mu              sync.RWMutex // write-held by Commit and Abort
	committed, done bool
}

func (w *writer) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off > w.capacity || int64(len(p)) > w.capacity-off {
		return 0, fmt.Errorf("write %d bytes at %d: outside the %d-byte disk", len(p), off, w.capacity)
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.dev == nil {
		return 0, fmt.Errorf("write to %s/%s after Commit or Abort", w.t.vg, w.tmp)
	}
	return w.dev.WriteAt(p, off)
}

// Commit flushes the volume and gives it its name, replacing the old volume
// (and Cairn's snapshots of it, which describe data no longer there) when
// overwriting.
func (w *writer) Commit(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		if w.committed {
			return nil
		}
		return errors.New("commit after abort")
	}
	t := w.t
	if s, ok := w.dev.(interface{ Sync() error }); ok {
		if err := s.Sync(); err != nil {
			return fmt.Errorf("flush %s/%s: %w", t.vg, w.tmp, err)
		}
	}
	if err := w.dev.Close(); err != nil {
		return fmt.Errorf("close %s/%s: %w", t.vg, w.tmp, err)
	}
	w.dev = nil
	if w.replace {
		vols, err := t.lvm.Volumes(ctx, t.vg)
		if err != nil {
			return err
		}
		for _, v := range vols {
			if v.Origin == t.name && cairnSnapshot(v) {
				if err := t.lvm.Remove(ctx, t.vg, v.Name); err != nil {
					return err
				}
			}
		}
		if slices.ContainsFunc(vols, func(v Volume) bool { return v.Name == t.name }) {
			if err := t.lvm.Remove(ctx, t.vg, t.name); err != nil {
				return err
			}
		}
	}
	if err := t.lvm.Rename(ctx, t.vg, w.tmp, t.name); err != nil {
		// The old volume may be gone already: keep the new data for the
		// admin to rename rather than let Abort remove it.
		w.done = true
		return fmt.Errorf("%w (the restored data is in %s/%s)", err, t.vg, w.tmp)
	}
	w.done, w.committed = true, true
	return nil
}

// Abort removes the temporary volume; after Commit it does nothing.
func (w *writer) Abort(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return nil
	}
	w.done = true
	var errs []error
	if w.dev != nil {
		errs = append(errs, w.dev.Close())
		w.dev = nil
	}
	errs = append(errs, w.t.lvm.Remove(context.WithoutCancel(ctx), w.t.vg, w.tmp))
	return errors.Join(errs...)
}
