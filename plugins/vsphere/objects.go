package vsphere

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vapi/rest"
	"github.com/vmware/govmomi/vapi/tags"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/cairnhq/cairn/plugins"
)

// Source is a vCenter or ESXi to back VMs up from.
type Source struct {
	cfg Config
}

var _ plugins.Source = (*Source)(nil)

// New checks cfg and returns a source; it does not connect yet.
func New(cfg Config) (*Source, error) {
	if _, err := cfg.check(); err != nil {
		return nil, err
	}
	return &Source{cfg: cfg}, nil
}

// vmProps are the VM properties the plugin reads.
var vmProps = []string{"name", "config", "runtime.powerState", "snapshot", "guest.toolsRunningStatus", "resourcePool", "datastore"}

// Objects lists the datacenter's VMs (not templates). Info carries "path"
// (inventory path), "power", "moref", "guest", "disks" and "tags" (when the
// server offers the vAPI tagging service).
func (s *Source) Objects(ctx context.Context) ([]plugins.Object, error) {
	c, err := s.cfg.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer c.logout(ctx)
	list, err := c.finder.VirtualMachineList(ctx, path.Join(c.dc.InventoryPath, "vm", "..."))
	var nf *find.NotFoundError
	if errors.As(err, &nf) {
		return []plugins.Object{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list vms: %w", err)
	}
	refs := make([]types.ManagedObjectReference, len(list))
	paths := map[types.ManagedObjectReference]string{}
	for i, vm := range list {
		refs[i] = vm.Reference()
		paths[refs[i]] = vm.InventoryPath
	}
	vms, err := retrieve(ctx, c, refs)
	if err != nil {
		return nil, err
	}
	tagNames := s.tags(ctx, c, refs)
	var out []plugins.Object
	for _, vm := range vms {
		if vm.Config == nil || vm.Config.Template {
			continue
		}
		disks := diskList(vm.Config.Hardware.Device)
		o := plugins.Object{Name: vm.Name, Kind: "vm", Disks: len(disks), Info: map[string]string{
			"path":  paths[vm.Self],
			"power": string(vm.Runtime.PowerState),
			"moref": vm.Self.Value,
			"guest": vm.Config.GuestId,
		}}
		var ds []string
		for _, d := range disks {
			o.Size += d.capacity
			ds = append(ds, d.key+"="+strconv.FormatInt(d.capacity, 10))
		}
		o.Info["disks"] = strings.Join(ds, ",")
		if t := tagNames[vm.Self.Value]; len(t) > 0 {
			o.Info["tags"] = strings.Join(t, ",")
		}
		out = append(out, o)
	}
	slices.SortFunc(out, func(a, b plugins.Object) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func retrieve(ctx context.Context, c *conn, refs []types.ManagedObjectReference) ([]mo.VirtualMachine, error) {
	var vms []mo.VirtualMachine
	if len(refs) == 0 {
		return vms, nil
	}
	if err := property.DefaultCollector(c.vim()).Retrieve(ctx, refs, vmProps, &vms); err != nil {
		return nil, fmt.Errorf("read vm properties: %w", err)
	}
	return vms, nil
}

// tags returns tag names by VM moref; empty when tagging is unavailable
// (ESXi has no vAPI), which is not an error for listing.
func (s *Source) tags(ctx context.Context, c *conn, refs []types.ManagedObjectReference) map[string][]string {
	out := map[string][]string{}
	if len(refs) == 0 {
		return out
	}
	rc := rest.NewClient(c.vim())
	if err := rc.Login(ctx, url.UserPassword(s.cfg.User, s.cfg.Password)); err != nil {
		return out
	}
	defer rc.Logout(context.WithoutCancel(ctx))
	objs := make([]mo.Reference, len(refs))
	for i := range refs {
		objs[i] = refs[i]
	}
	attached, err := tags.NewManager(rc).GetAttachedTagsOnObjects(ctx, objs)
	if err != nil {
		return out
	}
	for _, a := range attached {
		for _, t := range a.Tags {
			out[a.ObjectID.Reference().Value] = append(out[a.ObjectID.Reference().Value], t.Name)
		}
		slices.Sort(out[a.ObjectID.Reference().Value])
	}
	return out
}

// findVM finds a VM by name or inventory path.
func findVM(ctx context.Context, c *conn, name string) (*object.VirtualMachine, error) {
	vm, err := c.finder.VirtualMachine(ctx, name)
	var nf *find.NotFoundError
	if errors.As(err, &nf) {
		return nil, fmt.Errorf("vm %q: %w", name, plugins.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("find vm %q: %w", name, err)
	}
	return vm, nil
}

// diskInfo is a virtual disk as the plugin names it.
type diskInfo struct {
	key      string // "scsi0:1": controller type, bus, unit
	device   *types.VirtualDisk
	capacity int64
}

// diskList returns the VM's disks in device order, keyed by controller.
func diskList(devs []types.BaseVirtualDevice) []diskInfo {
	list := object.VirtualDeviceList(devs)
	var out []diskInfo
	for _, d := range list.SelectByType((*types.VirtualDisk)(nil)) {
		vd := d.(*types.VirtualDisk)
		out = append(out, diskInfo{key: diskKey(list, vd), device: vd, capacity: diskCapacity(vd)})
	}
	return out
}

func diskCapacity(vd *types.VirtualDisk) int64 {
	if vd.CapacityInBytes > 0 {
		return vd.CapacityInBytes
	}
	return vd.CapacityInKB * 1024
}

// diskKey names a disk by its place ("scsi0:1"), stable across backups
// unlike the device key.
func diskKey(list object.VirtualDeviceList, vd *types.VirtualDisk) string {
	unit := int32(-1)
	if vd.UnitNumber != nil {
		unit = *vd.UnitNumber
	}
	kind, bus := "disk", int32(0)
	if ctrl := list.FindByKey(vd.ControllerKey); ctrl != nil {
		if c, ok := ctrl.(types.BaseVirtualController); ok {
			bus = c.GetVirtualController().BusNumber
		}
		switch ctrl.(type) {
		case types.BaseVirtualSCSIController:
			kind = "scsi"
		case *types.VirtualIDEController:
			kind = "ide"
		case types.BaseVirtualSATAController:
			kind = "sata"
		case *types.VirtualNVMEController:
			kind = "nvme"
		}
	}
	return fmt.Sprintf("%s%d:%d", kind, bus, unit)
}
