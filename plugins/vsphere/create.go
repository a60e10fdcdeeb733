package vsphere

import (
	"context"
	"fmt"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"
)

// createVM builds a VM from a saved configuration: controllers, NICs and
// empty disks of the saved capacities on the saved datastores, in the saved
// resource pool when it still exists, else the first one found.
func createVM(ctx context.Context, c *conn, vmc *VMConfig, name string) (*object.VirtualMachine, error) {
	folders, err := c.dc.Folders(ctx)
	if err != nil {
		return nil, fmt.Errorf("create vm %s: %w", name, err)
	}
	pool, err := resourcePool(ctx, c, vmc.ResourcePool)
	if err != nil {
		return nil, fmt.Errorf("create vm %s: %w", name, err)
	}
	ds := vmc.Disks[0].Datastore
	spec := types.VirtualMachineConfigSpec{
		Name: name, GuestId: vmc.GuestID, NumCPUs: vmc.CPUs, NumCoresPerSocket: vmc.CoresPerSocket,
		MemoryMB: vmc.MemoryMB, Firmware: vmc.Firmware, Version: vmc.Version,
		Files: &types.VirtualMachineFileInfo{VmPathName: fmt.Sprintf("[%s]", ds)},
	}
	keys := map[int32]int32{} // saved controller key → new (negative) key
	used := map[int32]bool{}
	for _, d := range vmc.Disks {
		used[d.ControllerKey] = true
	}
	for i, ct := range vmc.Controllers {
		if !used[ct.Key] {
			continue // CD-ROM IDE controllers and the like come with a new VM
		}
		dev, err := newController(ct)
		if err != nil {
			return nil, fmt.Errorf("create vm %s: %w", name, err)
		}
		key := int32(-100 - i)
		dev.GetVirtualDevice().Key = key
		keys[ct.Key] = key
		spec.DeviceChange = append(spec.DeviceChange, &types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationAdd, Device: dev})
	}
	for i, n := range vmc.Networks {
		backing, err := networkBacking(ctx, c, n)
		if err != nil {
			return nil, fmt.Errorf("create vm %s: network %d: %w", name, i, err)
		}
		card, err := object.EthernetCardTypes().CreateEthernetCard(n.Type, backing)
		if err != nil {
			return nil, fmt.Errorf("create vm %s: network %d: %w", name, i, err)
		}
		card.GetVirtualDevice().Key = int32(-200 - i)
		card.GetVirtualDevice().Connectable = &types.VirtualDeviceConnectInfo{StartConnected: n.StartConnected, AllowGuestControl: true}
		spec.DeviceChange = append(spec.DeviceChange, &types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationAdd, Device: card})
	}
	for i, d := range vmc.Disks {
		unit := d.Unit
		dsName := d.Datastore
		if dsName == "" {
			dsName = ds
		}
		dsObj, err := c.finder.Datastore(ctx, dsName)
		if err != nil {
			return nil, fmt.Errorf("create vm %s: disk %s: %w", name, d.Key, err)
		}
		dsRef := dsObj.Reference()
		vd := &types.VirtualDisk{
			VirtualDevice: types.VirtualDevice{
				Key: int32(-300 - i), ControllerKey: keys[d.ControllerKey], UnitNumber: &unit,
				Backing: &types.VirtualDiskFlatVer2BackingInfo{
					VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{
						FileName: fmt.Sprintf("[%s] %s/%s_%d.vmdk", dsName, name, name, i), Datastore: &dsRef},
					DiskMode: string(types.VirtualDiskModePersistent), ThinProvisioned: types.NewBool(true),
				},
			},
			CapacityInKB: d.Capacity / 1024, CapacityInBytes: d.Capacity,
		}
		spec.DeviceChange = append(spec.DeviceChange, &types.VirtualDeviceConfigSpec{
			Operation: types.VirtualDeviceConfigSpecOperationAdd, FileOperation: types.VirtualDeviceConfigSpecFileOperationCreate, Device: vd})
	}
	task, err := folders.VmFolder.CreateVM(ctx, spec, pool, nil)
	if err != nil {
		return nil, fmt.Errorf("create vm %s: %w", name, err)
	}
	info, err := task.WaitForResult(ctx)
	if err != nil {
		return nil, fmt.Errorf("create vm %s: %w", name, err)
	}
	return object.NewVirtualMachine(c.vim(), info.Result.(types.ManagedObjectReference)), nil
}

func resourcePool(ctx context.Context, c *conn, saved string) (*object.ResourcePool, error) {
	if saved != "" {
		p := object.NewResourcePool(c.vim(), types.ManagedObjectReference{Type: "ResourcePool", Value: saved})
		if _, err := p.ObjectName(ctx); err == nil {
			return p, nil
		}
	}
	pools, err := c.finder.ResourcePoolList(ctx, "*/Resources")
	if err != nil || len(pools) == 0 {
		return nil, fmt.Errorf("no resource pool to create the vm in: %v", err)
	}
	return pools[0], nil
}

func newController(ct ControllerCfg) (types.BaseVirtualDevice, error) {
	var l object.VirtualDeviceList
	switch ct.Type {
	case "pvscsi", "lsilogic", "lsilogic-sas", "buslogic":
		d, err := l.CreateSCSIController(ct.Type)
		if err != nil {
			return nil, err
		}
		d.(types.BaseVirtualController).GetVirtualController().BusNumber = ct.Bus
		return d, nil
	case "ahci":
		return &types.VirtualAHCIController{VirtualSATAController: types.VirtualSATAController{
			VirtualController: types.VirtualController{BusNumber: ct.Bus}}}, nil
	case "nvme":
		return &types.VirtualNVMEController{VirtualController: types.VirtualController{BusNumber: ct.Bus}}, nil
	case "ide":
		return &types.VirtualIDEController{VirtualController: types.VirtualController{BusNumber: ct.Bus}}, nil
	}
	return nil, fmt.Errorf("controller type %q unknown", ct.Type)
}

func networkBacking(ctx context.Context, c *conn, n NetworkCfg) (types.BaseVirtualDeviceBackingInfo, error) {
	if n.PortgroupKey != "" {
		return &types.VirtualEthernetCardDistributedVirtualPortBackingInfo{
			Port: types.DistributedVirtualSwitchPortConnection{PortgroupKey: n.PortgroupKey, SwitchUuid: n.SwitchUUID}}, nil
	}
	netw, err := c.finder.Network(ctx, n.Network)
	if err != nil {
		return nil, err
	}
	return netw.EthernetCardBackingInfo(ctx)
}
