package vsphere

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"
)

// VMConfig is the part of a VM's configuration a restore rebuilds it
// from, saved as JSON with each restore point.
type VMConfig struct {
	Name           string          `json:"name"`
	MoRef          string          `json:"moref"`
	Path           string          `json:"path,omitempty"` // inventory path
	GuestID        string          `json:"guest_id"`
	CPUs           int32           `json:"cpus"`
	CoresPerSocket int32           `json:"cores_per_socket,omitempty"`
	MemoryMB       int64           `json:"memory_mb"`
	Firmware       string          `json:"firmware,omitempty"`
	Version        string          `json:"version,omitempty"` // virtual hardware, "vmx-19"
	ResourcePool   string          `json:"resource_pool,omitempty"`
	Controllers    []ControllerCfg `json:"controllers"`
	Disks          []DiskCfg       `json:"disks"`
	Networks       []NetworkCfg    `json:"networks,omitempty"`
}

// ControllerCfg is a disk controller.
type ControllerCfg struct {
	Type string `json:"type"` // pvscsi, lsilogic, lsilogic-sas, buslogic, ahci, nvme, ide
	Bus  int32  `json:"bus"`
	Key  int32  `json:"key"` // in the original VM, to match disks
}

// DiskCfg is a virtual disk.
type DiskCfg struct {
	Key           string `json:"key"` // "scsi0:1", the restore point's disk key
	Capacity      int64  `json:"capacity"`
	ControllerKey int32  `json:"controller_key"`
	Unit          int32  `json:"unit"`
	Datastore     string `json:"datastore"` // name
	FileName      string `json:"file_name"`
	Thin          bool   `json:"thin,omitempty"`
}

// NetworkCfg is a network adapter.
type NetworkCfg struct {
	Type           string `json:"type"`              // vmxnet3, e1000e, ...
	Network        string `json:"network,omitempty"` // a standard port group's name
	PortgroupKey   string `json:"portgroup_key,omitempty"`
	SwitchUUID     string `json:"switch_uuid,omitempty"`
	StartConnected bool   `json:"start_connected,omitempty"`
}

// maxConfig bounds a saved configuration; real ones are a few KiB.
const maxConfig = 1 << 20

// ParseVMConfig reads a saved configuration and checks it enough to build
// a VM from.
func ParseVMConfig(b []byte) (*VMConfig, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("the restore point has no saved vm configuration")
	}
	if len(b) > maxConfig {
		return nil, fmt.Errorf("saved vm configuration: %d bytes, more than %d", len(b), maxConfig)
	}
	var c VMConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("saved vm configuration: %w", err)
	}
	switch {
	case c.Name == "":
		return nil, fmt.Errorf("saved vm configuration has no name")
	case c.CPUs <= 0 || c.CPUs > 768:
		return nil, fmt.Errorf("saved vm configuration: %d cpus", c.CPUs)
	case c.MemoryMB <= 0 || c.MemoryMB > 24<<20:
		return nil, fmt.Errorf("saved vm configuration: %d MB of memory", c.MemoryMB)
	case len(c.Disks) == 0 || len(c.Disks) > 256:
		return nil, fmt.Errorf("saved vm configuration: %d disks", len(c.Disks))
	}
	ctrls := map[int32]bool{}
	for _, ct := range c.Controllers {
		ctrls[ct.Key] = true
	}
	seen := map[string]bool{}
	for _, d := range c.Disks {
		switch {
		case d.Key == "" || seen[d.Key]:
			return nil, fmt.Errorf("saved vm configuration: disk key %q missing or repeated", d.Key)
		case d.Capacity <= 0 || d.Capacity%1024 != 0:
			return nil, fmt.Errorf("saved vm configuration: disk %s capacity %d", d.Key, d.Capacity)
		case !ctrls[d.ControllerKey]:
			return nil, fmt.Errorf("saved vm configuration: disk %s on unknown controller %d", d.Key, d.ControllerKey)
		}
		seen[d.Key] = true
	}
	return &c, nil
}

// Describe returns the VM's configuration at the snapshot as JSON.
func (s *snapshot) Describe(ctx context.Context) ([]byte, error) {
	return json.Marshal(describe(s.config, s.vm.Reference().Value, s.path, s.pool))
}

func describe(ci types.VirtualMachineConfigInfo, moref, path, pool string) VMConfig {
	c := VMConfig{Name: ci.Name, MoRef: moref, Path: path, GuestID: ci.GuestId, CPUs: ci.Hardware.NumCPU,
		CoresPerSocket: ci.Hardware.NumCoresPerSocket, MemoryMB: int64(ci.Hardware.MemoryMB), Firmware: ci.Firmware,
		Version: ci.Version, ResourcePool: pool}
	list := object.VirtualDeviceList(ci.Hardware.Device)
	for _, dev := range list {
		switch d := dev.(type) {
		case types.BaseVirtualController:
			if t := controllerType(dev); t != "" {
				c.Controllers = append(c.Controllers, ControllerCfg{Type: t, Bus: d.GetVirtualController().BusNumber, Key: dev.GetVirtualDevice().Key})
			}
		case types.BaseVirtualEthernetCard:
			n := NetworkCfg{Type: nicType(dev)}
			switch b := dev.GetVirtualDevice().Backing.(type) {
			case *types.VirtualEthernetCardNetworkBackingInfo:
				n.Network = b.DeviceName
			case *types.VirtualEthernetCardDistributedVirtualPortBackingInfo:
				n.PortgroupKey, n.SwitchUUID = b.Port.PortgroupKey, b.Port.SwitchUuid
			}
			if cn := dev.GetVirtualDevice().Connectable; cn != nil {
				n.StartConnected = cn.StartConnected
			}
			c.Networks = append(c.Networks, n)
		}
	}
	for _, d := range diskList(ci.Hardware.Device) {
		dc := DiskCfg{Key: d.key, Capacity: d.capacity, ControllerKey: d.device.ControllerKey}
		if d.device.UnitNumber != nil {
			dc.Unit = *d.device.UnitNumber
		}
		if b, ok := d.device.Backing.(*types.VirtualDiskFlatVer2BackingInfo); ok {
			dc.FileName = b.FileName
			var p object.DatastorePath
			if p.FromString(b.FileName) {
				dc.Datastore = p.Datastore
			}
			dc.Thin = b.ThinProvisioned != nil && *b.ThinProvisioned
		}
		c.Disks = append(c.Disks, dc)
	}
	return c
}

func nicType(dev types.BaseVirtualDevice) string {
	switch dev.(type) {
	case *types.VirtualVmxnet3:
		return "vmxnet3"
	case *types.VirtualVmxnet2:
		return "vmxnet2"
	case *types.VirtualE1000e:
		return "e1000e"
	case *types.VirtualE1000:
		return "e1000"
	case *types.VirtualPCNet32:
		return "pcnet32"
	case *types.VirtualSriovEthernetCard:
		return "sriov"
	}
	return "vmxnet3"
}

func controllerType(dev types.BaseVirtualDevice) string {
	switch dev.(type) {
	case *types.ParaVirtualSCSIController:
		return "pvscsi"
	case *types.VirtualLsiLogicController:
		return "lsilogic"
	case *types.VirtualLsiLogicSASController:
		return "lsilogic-sas"
	case *types.VirtualBusLogicController:
		return "buslogic"
	case *types.VirtualAHCIController:
		return "ahci"
	case *types.VirtualNVMEController:
		return "nvme"
	case *types.VirtualIDEController:
		return "ide"
	}
	return ""
}
