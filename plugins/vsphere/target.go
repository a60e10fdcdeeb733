package vsphere

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/cairnhq/cairn/plugins"
	"github.com/cairnhq/cairn/vddk"
)

// Restore options.
const (
	OptionVMName  = "vm-name"
	OptionInPlace = "in-place"
	OptionSpool   = "spool-dir"
)

// Target restores one restore point into a vSphere source.
type Target struct {
	cfg       Config
	vmc       *VMConfig
	name      string
	inPlace   bool
	overwrite bool
	spoolDir  string

	mu      sync.Mutex
	spools  map[string]*writer // committed disks of a new VM, by key
	checked bool               // the new VM's name was found free
}

var _ plugins.Target = (*Target)(nil)

func newTarget(_ context.Context, tc plugins.TargetConfig) (plugins.Target, error) {
	if tc.Source == nil {
		return nil, fmt.Errorf("restore destination vsphere:%s must name a configured vsphere source: %w", tc.Location, plugins.ErrInvalid)
	}
	for k := range tc.Options {
		if k != OptionVMName && k != OptionInPlace && k != OptionSpool {
			return nil, fmt.Errorf("unknown vsphere restore option %q (want %s, %s or %s): %w", k, OptionVMName, OptionInPlace, OptionSpool, plugins.ErrInvalid)
		}
	}
	cfg := configOf(*tc.Source)
	if _, err := cfg.check(); err != nil {
		return nil, err
	}
	vmc, err := ParseVMConfig(tc.ObjectConfig)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, plugins.ErrInvalid)
	}
	t := &Target{cfg: cfg, vmc: vmc, overwrite: tc.Overwrite, spoolDir: tc.Options[OptionSpool], spools: map[string]*writer{}}
	switch tc.Options[OptionInPlace] {
	case "", "false":
	case "true":
		t.inPlace = true
	default:
		return nil, fmt.Errorf("option %s=%q: want true or false: %w", OptionInPlace, tc.Options[OptionInPlace], plugins.ErrInvalid)
	}
	t.name = tc.Options[OptionVMName]
	switch {
	case t.inPlace && t.name != "" && t.name != vmc.Name:
		return nil, fmt.Errorf("an in-place restore goes to vm %s; %s cannot name another: %w", vmc.Name, OptionVMName, plugins.ErrInvalid)
	case t.inPlace:
		t.name = vmc.Name
	case t.name == "":
		t.name = vmc.Name + "-restored"
	}
	return t, nil
}

func (t *Target) diskCfg(key string) (DiskCfg, bool) {
	i := slices.IndexFunc(t.vmc.Disks, func(d DiskCfg) bool { return d.Key == key })
	if i < 0 {
		return DiskCfg{}, false
	}
	return t.vmc.Disks[i], true
}

// Create spools the disk to a sparse local file. For an in-place restore it
// first checks the VM is powered off, has no snapshots and has this disk
// with this capacity.
func (t *Target) Create(ctx context.Context, spec plugins.DiskSpec) (plugins.Writer, error) {
	dc, ok := t.diskCfg(spec.Key)
	if !ok {
		return nil, fmt.Errorf("restore disk %s: not in the saved configuration of %s", spec.Key, t.vmc.Name)
	}
	if spec.Capacity != dc.Capacity {
		return nil, fmt.Errorf("restore disk %s: %d bytes, the saved configuration says %d", spec.Key, spec.Capacity, dc.Capacity)
	}
	if t.inPlace {
		if !t.overwrite {
			return nil, fmt.Errorf("restoring in place replaces the disks of vm %s; that needs overwrite: %w", t.vmc.Name, plugins.ErrExists)
		}
		c, err := t.cfg.connect(ctx)
		if err != nil {
			return nil, err
		}
		defer c.logout(ctx)
		if _, _, err := t.inPlaceDisk(ctx, c, spec); err != nil {
			return nil, err
		}
	}
	if !t.inPlace {
		if err := t.checkName(ctx); err != nil {
			return nil, err
		}
	}
	f, err := os.CreateTemp(t.spoolDir, "cairn-vsphere-restore-")
	if err != nil {
		return nil, fmt.Errorf("restore disk %s: spool: %w", spec.Key, err)
	}
	if err := f.Truncate(spec.Capacity); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("restore disk %s: spool: %w", spec.Key, err)
	}
	return &writer{t: t, key: spec.Key, capacity: spec.Capacity, f: f}, nil
}

// checkName fails early, before any data moves, when a VM already bears
// the new VM's name; Finish checks again.
func (t *Target) checkName(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.checked {
		return nil
	}
	c, err := t.cfg.connect(ctx)
	if err != nil {
		return err
	}
	defer c.logout(ctx)
	if err := nameFree(ctx, c, t.name); err != nil {
		return err
	}
	t.checked = true
	return nil
}

func nameFree(ctx context.Context, c *conn, name string) error {
	if _, err := c.finder.VirtualMachine(ctx, name); err == nil {
		return fmt.Errorf("a vm named %s exists; choose another with %s: %w", name, OptionVMName, plugins.ErrExists)
	} else if _, ok := errors.AsType[*find.NotFoundError](err); !ok {
		return fmt.Errorf("look for vm %s: %w", name, err)
	}
	return nil
}

// inPlaceDisk finds the original VM and the flat file of its disk key.
func (t *Target) inPlaceDisk(ctx context.Context, c *conn, spec plugins.DiskSpec) (*object.VirtualMachine, string, error) {
	vm, err := t.originalVM(ctx, c)
	if err != nil {
		return nil, "", err
	}
	var m mo.VirtualMachine
	if err := vm.Properties(ctx, vm.Reference(), []string{"config.hardware", "runtime.powerState", "snapshot"}, &m); err != nil {
		return nil, "", fmt.Errorf("read vm %s: %w", t.vmc.Name, err)
	}
	if m.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOff {
		return nil, "", fmt.Errorf("restore in place to %s: the vm is %s; power it off first: %w", t.vmc.Name, m.Runtime.PowerState, plugins.ErrInvalid)
	}
	if m.Snapshot != nil && len(m.Snapshot.RootSnapshotList) > 0 {
		return nil, "", fmt.Errorf("restore in place to %s: the vm has snapshots; remove them first: %w", t.vmc.Name, plugins.ErrInvalid)
	}
	for _, d := range diskList(m.Config.Hardware.Device) {
		if d.key != spec.Key {
			continue
		}
		if d.capacity != spec.Capacity {
			return nil, "", fmt.Errorf("restore in place to %s: disk %s holds %d bytes, the restore point %d", t.vmc.Name, spec.Key, d.capacity, spec.Capacity)
		}
		b, ok := d.device.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
		if !ok {
			return nil, "", fmt.Errorf("restore in place to %s: disk %s is not a flat disk: %w", t.vmc.Name, spec.Key, vddk.ErrUnsupportedBacking)
		}
		return vm, b.FileName, nil
	}
	return nil, "", fmt.Errorf("restore in place to %s: the vm has no disk %s now", t.vmc.Name, spec.Key)
}

// originalVM finds the VM the restore point was taken of: by moref, as
// long as it still bears the name, else by name.
func (t *Target) originalVM(ctx context.Context, c *conn) (*object.VirtualMachine, error) {
	if t.vmc.MoRef != "" {
		vm := object.NewVirtualMachine(c.vim(), types.ManagedObjectReference{Type: "VirtualMachine", Value: t.vmc.MoRef})
		if name, err := vm.ObjectName(ctx); err == nil && name == t.vmc.Name {
			return vm, nil
		}
	}
	return findVM(ctx, c, t.vmc.Name)
}

// upload PUTs a spool file over a disk's flat extent.
func upload(ctx context.Context, c *conn, dsFile string, w *writer) error {
	h := &vddk.HTTPS{Client: c.vim()}
	u, ext, err := h.FlatFile(ctx, c.dc.InventoryPath, dsFile)
	if err != nil {
		return err
	}
	if ext.Offset != 0 {
		return fmt.Errorf("disk %s: flat extent at sector %d; only whole-file extents can be uploaded", dsFile, ext.Offset)
	}
	if _, err := w.f.Seek(0, 0); err != nil {
		return err
	}
	if err := c.vim().Client.Upload(ctx, w.f, u, &soap.Upload{Type: "application/octet-stream", Method: "PUT", ContentLength: w.capacity}); err != nil {
		return fmt.Errorf("upload disk %s to %s: %w", w.key, dsFile, err)
	}
	return nil
}

// Finish creates the new VM and uploads its disks, or for an in-place
// restore reports the VM. A new VM that fails half-way is destroyed.
func (t *Target) Finish(ctx context.Context) (map[string]string, error) {
	c, err := t.cfg.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer c.logout(ctx)
	if t.inPlace {
		vm, err := t.originalVM(ctx, c)
		if err != nil {
			return nil, err
		}
		return map[string]string{"vm": t.vmc.Name, "vm_id": vm.Reference().Value}, nil
	}
	t.mu.Lock()
	spools := t.spools
	t.spools = map[string]*writer{}
	t.mu.Unlock()
	defer func() {
		for _, w := range spools {
			w.remove()
		}
	}()
	for _, d := range t.vmc.Disks {
		if spools[d.Key] == nil {
			return nil, fmt.Errorf("restore %s: disk %s was not restored", t.name, d.Key)
		}
	}
	if err := nameFree(ctx, c, t.name); err != nil {
		return nil, err
	}
	vm, err := createVM(ctx, c, t.vmc, t.name)
	if err != nil {
		return nil, err
	}
	if err := t.uploadAll(ctx, c, vm, spools); err != nil {
		if task, derr := vm.Destroy(context.WithoutCancel(ctx)); derr == nil {
			_ = task.Wait(context.WithoutCancel(ctx))
		}
		return nil, fmt.Errorf("restore %s: %w (the half-built vm was destroyed)", t.name, err)
	}
	return map[string]string{"vm": t.name, "vm_id": vm.Reference().Value}, nil
}

func (t *Target) uploadAll(ctx context.Context, c *conn, vm *object.VirtualMachine, spools map[string]*writer) error {
	devs, err := vm.Device(ctx)
	if err != nil {
		return fmt.Errorf("read the new vm's disks: %w", err)
	}
	disks := diskList(devs)
	for _, d := range disks {
		w := spools[d.key]
		if w == nil {
			return fmt.Errorf("the new vm has disk %s, which the restore point lacks", d.key)
		}
		b, ok := d.device.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
		if !ok {
			return fmt.Errorf("the new vm's disk %s is not a flat disk", d.key)
		}
		if err := upload(ctx, c, b.FileName, w); err != nil {
			return err
		}
	}
	if len(disks) != len(spools) {
		return fmt.Errorf("the new vm has %d disks, the restore point %d", len(disks), len(spools))
	}
	return nil
}

// writer spools one restored disk.
type writer struct {
	t        *Target
	key      string
	capacity int64
	mu       sync.RWMutex
	f        *os.File
	state    int // 0 writing, 1 committed, 2 aborted
}

func (w *writer) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off > w.capacity || int64(len(p)) > w.capacity-off {
		return 0, fmt.Errorf("write %d bytes at %d to disk %s: outside its %d bytes", len(p), off, w.key, w.capacity)
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.state != 0 {
		return 0, fmt.Errorf("write to disk %s: restore already committed or aborted", w.key)
	}
	return w.f.WriteAt(p, off)
}

// Commit uploads the disk over the original's flat file (in place), or
// keeps it for Finish to upload into the new VM.
func (w *writer) Commit(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch w.state {
	case 1:
		return nil
	case 2:
		return fmt.Errorf("commit disk %s: restore aborted", w.key)
	}
	if w.t.inPlace {
		c, err := w.t.cfg.connect(ctx)
		if err != nil {
			return err
		}
		defer c.logout(ctx)
		_, file, err := w.t.inPlaceDisk(ctx, c, plugins.DiskSpec{Key: w.key, Capacity: w.capacity})
		if err != nil {
			return err
		}
		if err := upload(ctx, c, file, w); err != nil {
			return err
		}
		w.state = 1
		w.remove()
		return nil
	}
	w.state = 1
	w.t.mu.Lock()
	w.t.spools[w.key] = w
	w.t.mu.Unlock()
	return nil
}

func (w *writer) Abort(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state != 0 {
		return nil
	}
	w.state = 2
	w.remove()
	return nil
}

func (w *writer) remove() {
	if w.f != nil {
		w.f.Close()
		os.Remove(w.f.Name())
	}
}
