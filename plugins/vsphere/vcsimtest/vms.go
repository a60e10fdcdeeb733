package vcsimtest

import (
	"context"
	"fmt"
	"net/url"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vapi/rest"
	"github.com/vmware/govmomi/vapi/tags"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/types"
)

// CreateVM creates a VM with a SCSI controller, its disks (flat files
// holding the images' bytes), a NIC on "VM Network", and tags.
func (s *Sim) CreateVM(ctx context.Context, vm VM) error {
	c, err := s.Client(ctx)
	if err != nil {
		return err
	}
	defer c.Logout(context.WithoutCancel(ctx))
	f := find.NewFinder(c.Client)
	dc, err := f.Datacenter(ctx, Datacenter)
	if err != nil {
		return fmt.Errorf("create vm %s: %w", vm.Name, err)
	}
	f.SetDatacenter(dc)
	folders, err := dc.Folders(ctx)
	if err != nil {
		return fmt.Errorf("create vm %s: %w", vm.Name, err)
	}
	pool, err := f.ResourcePool(ctx, "DC0_C0/Resources")
	if err != nil {
		return fmt.Errorf("create vm %s: %w", vm.Name, err)
	}
	ds, err := f.Datastore(ctx, Datastore)
	if err != nil {
		return fmt.Errorf("create vm %s: %w", vm.Name, err)
	}
	netw, err := f.Network(ctx, "VM Network")
	if err != nil {
		return fmt.Errorf("create vm %s: %w", vm.Name, err)
	}
	nicBacking, err := netw.EthernetCardBackingInfo(ctx)
	if err != nil {
		return fmt.Errorf("create vm %s: %w", vm.Name, err)
	}

	var devices object.VirtualDeviceList
	ctrl, err := devices.CreateSCSIController("pvscsi")
	if err != nil {
		return err
	}
	devices = append(devices, ctrl)
	nic, err := devices.CreateEthernetCard("vmxnet3", nicBacking)
	if err != nil {
		return err
	}
	devices = append(devices, nic)
	spec := types.VirtualMachineConfigSpec{
		Name:     vm.Name,
		GuestId:  string(types.VirtualMachineGuestOsIdentifierOtherLinux64Guest),
		NumCPUs:  max(vm.CPUs, 1),
		MemoryMB: int64(max(vm.MemoryMB, 512)),
		Files:    &types.VirtualMachineFileInfo{VmPathName: fmt.Sprintf("[%s] %s", Datastore, vm.Name)},
	}
	add, err := devices.ConfigSpec(types.VirtualDeviceConfigSpecOperationAdd)
	if err != nil {
		return err
	}
	spec.DeviceChange = add
	for i, d := range vm.Disks {
		if d.Capacity <= 0 || d.Capacity%1024 != 0 {
			return fmt.Errorf("create vm %s: disk %d capacity %d is not a positive multiple of 1 KiB", vm.Name, i, d.Capacity)
		}
		vd := devices.CreateDisk(ctrl.(types.BaseVirtualController), ds.Reference(),
			fmt.Sprintf("[%s] %s/%s_%d.vmdk", Datastore, vm.Name, vm.Name, i))
		vd.CapacityInKB = d.Capacity / 1024
		vd.CapacityInBytes = d.Capacity
		vd.UnitNumber = types.NewInt32(int32(i))
		vd.Key = int32(-100 - i)
		spec.DeviceChange = append(spec.DeviceChange, &types.VirtualDeviceConfigSpec{
			Operation:     types.VirtualDeviceConfigSpecOperationAdd,
			FileOperation: types.VirtualDeviceConfigSpecFileOperationCreate,
			Device:        vd,
		})
	}
	task, err := folders.VmFolder.CreateVM(ctx, spec, pool, nil)
	if err != nil {
		return fmt.Errorf("create vm %s: %w", vm.Name, err)
	}
	info, err := task.WaitForResult(ctx)
	if err != nil {
		return fmt.Errorf("create vm %s: %w", vm.Name, err)
	}
	ref := info.Result.(types.ManagedObjectReference)
	vmo := object.NewVirtualMachine(c.Client, ref)
	list, err := vmo.Device(ctx)
	if err != nil {
		return fmt.Errorf("create vm %s: %w", vm.Name, err)
	}
	vdisks := list.SelectByType((*types.VirtualDisk)(nil))
	if len(vdisks) != len(vm.Disks) {
		return fmt.Errorf("create vm %s: simulator made %d disks, want %d", vm.Name, len(vdisks), len(vm.Disks))
	}
	for i, dev := range vdisks {
		vd := dev.(*types.VirtualDisk)
		b := vd.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
		flat, err := s.localPath(b.FileName)
		if err != nil {
			return err
		}
		flat = simulator.VirtualDiskBackingFileName(flat)
		if err := fillFlat(flat, vm.Disks[i]); err != nil {
			return fmt.Errorf("create vm %s: disk %d: %w", vm.Name, i, err)
		}
		d := &disk{id: diskID{ref.Value, vd.Key}, vmName: vm.Name, flat: flat, capacity: vm.Disks[i].Capacity, uuid: newChangeUUID()}
		s.mu.Lock()
		s.disks[d.id] = d
		s.vmDisks[vm.Name] = append(s.vmDisks[vm.Name], d.id)
		s.mu.Unlock()
	}
	if !vm.PoweredOff {
		task, err := vmo.PowerOn(ctx)
		if err == nil {
			err = task.Wait(ctx)
		}
		if err != nil {
			return fmt.Errorf("power on vm %s: %w", vm.Name, err)
		}
		s.setToolsRunning(ref)
	}
	if len(vm.Tags) > 0 {
		if err := s.tag(ctx, c.Client, ref, vm.Tags); err != nil {
			return fmt.Errorf("tag vm %s: %w", vm.Name, err)
		}
	}
	return nil
}

// tag attaches tags (created in category "cairn-test" as needed) to ref.
func (s *Sim) tag(ctx context.Context, vc *vim25.Client, ref types.ManagedObjectReference, names []string) error {
	rc := rest.NewClient(vc)
	if err := rc.Login(ctx, url.UserPassword(s.User, s.Password)); err != nil {
		return err
	}
	defer rc.Logout(context.WithoutCancel(ctx))
	m := tags.NewManager(rc)
	// Look names up in the lists: the simulator logs every failed Get.
	cats, err := m.GetCategories(ctx)
	if err != nil {
		return err
	}
	var catID string
	for _, c := range cats {
		if c.Name == "cairn-test" {
			catID = c.ID
		}
	}
	if catID == "" {
		if catID, err = m.CreateCategory(ctx, &tags.Category{
			Name: "cairn-test", Cardinality: "MULTIPLE", AssociableTypes: []string{"VirtualMachine"},
		}); err != nil {
			return err
		}
	}
	existing, err := m.GetTags(ctx)
	if err != nil {
		return err
	}
	for _, n := range names {
		var id string
		for _, t := range existing {
			if t.Name == n {
				id = t.ID
			}
		}
		if id == "" {
			if id, err = m.CreateTag(ctx, &tags.Tag{Name: n, CategoryID: catID}); err != nil {
				return err
			}
			existing = append(existing, tags.Tag{ID: id, Name: n})
		}
		if err := m.AttachTag(ctx, id, ref); err != nil {
			return err
		}
	}
	return nil
}

// setToolsRunning makes the simulator report VMware Tools running in the
// VM, so snapshots of it can be quiesced.
func (s *Sim) setToolsRunning(ref types.ManagedObjectReference) {
	m := s.model.Map()
	vm, ok := m.Get(ref).(*simulator.VirtualMachine)
	if !ok {
		return
	}
	m.WithLock(s.model.Service.Context, vm, func() {
		vm.Guest.ToolsRunningStatus = string(types.VirtualMachineToolsRunningStatusGuestToolsRunning)
		vm.Guest.ToolsStatus = types.VirtualMachineToolsStatusToolsOk
	})
}
