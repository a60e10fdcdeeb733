package vsphere

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/cairnhq/cairn/plugins"
	"github.com/cairnhq/cairn/vddk"
)

// SnapshotPrefix starts the name of every snapshot Cairn takes; a snapshot
// so named that exists when a backup starts was left by a crashed run and
// is removed.
const SnapshotPrefix = "cairn-backup-"

// Consistency values.
const (
	ConsistencyApplication = "application-consistent"
	ConsistencyCrash       = "crash-consistent"
)

// Open snapshots the VM named object (a name or an inventory path).
func (s *Source) Open(ctx context.Context, object string, opts plugins.OpenOptions) (plugins.Snapshot, error) {
	if opts.ChangedExtents != nil {
		return nil, fmt.Errorf("vsphere tracks changes itself; a changed-extent list: %w", plugins.ErrUnsupported)
	}
	c, err := s.cfg.connect(ctx)
	if err != nil {
		return nil, err
	}
	snap, err := s.open(ctx, c, object)
	if err != nil {
		if snap != nil {
			_ = snap.Close(context.WithoutCancel(ctx))
		} else {
			c.logout(ctx)
		}
		return nil, err
	}
	return snap, nil
}

func (s *Source) open(ctx context.Context, c *conn, name string) (*snapshot, error) {
	vm, err := findVM(ctx, c, name)
	if err != nil {
		return nil, err
	}
	var m mo.VirtualMachine
	if err := vm.Properties(ctx, vm.Reference(), vmProps, &m); err != nil {
		return nil, fmt.Errorf("read vm %s: %w", name, err)
	}
	if m.Config == nil {
		return nil, fmt.Errorf("vm %s has no configuration (inaccessible?)", name)
	}
	var notes []string
	if n, err := removeLeftovers(ctx, vm, m.Snapshot); err != nil {
		return nil, err
	} else if n > 0 {
		notes = append(notes, fmt.Sprintf("removed %d snapshot(s) a crashed backup left on %s", n, name))
	}
	if m.Config.ChangeTrackingEnabled == nil || !*m.Config.ChangeTrackingEnabled {
		task, err := vm.Reconfigure(ctx, types.VirtualMachineConfigSpec{ChangeTrackingEnabled: types.NewBool(true)})
		if err == nil {
			err = task.Wait(ctx)
		}
		if err != nil {
			return nil, fmt.Errorf("enable changed-block tracking on %s: %w", name, err)
		}
		notes = append(notes, "changed-block tracking was off on "+name+": enabled it")
	}
	quiesce := m.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn &&
		m.Guest != nil && m.Guest.ToolsRunningStatus == string(types.VirtualMachineToolsRunningStatusGuestToolsRunning)
	snapName := SnapshotPrefix + time.Now().UTC().Format("20060102T150405Z")
	ref, err := createSnapshot(ctx, vm, snapName, quiesce)
	if err != nil && quiesce {
		notes = append(notes, fmt.Sprintf("quiesced snapshot failed (%v): took a crash-consistent one", err))
		quiesce = false
		ref, err = createSnapshot(ctx, vm, snapName, false)
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", name, err)
	}
	sn := &snapshot{cfg: s.cfg, c: c, vm: vm, name: name, ref: ref, quiesced: quiesce, notes: notes}
	var ms mo.VirtualMachineSnapshot
	if err := property.DefaultCollector(c.vim()).RetrieveOne(ctx, ref, []string{"config"}, &ms); err != nil {
		return sn, fmt.Errorf("read snapshot of %s: %w", name, err)
	}
	sn.config = ms.Config
	sn.config.Name = m.Config.Name
	if m.ResourcePool != nil {
		sn.pool = m.ResourcePool.Value
	}
	sn.path = vm.InventoryPath
	dsTypes, err := datastoreTypes(ctx, c, m.Datastore)
	if err != nil {
		return sn, err
	}
	transports, err := s.cfg.transports(c)
	if err != nil {
		return sn, err
	}
	for _, d := range diskList(ms.Config.Hardware.Device) {
		ref := vddk.DiskRef{VM: vm.Reference(), Snapshot: ref, DeviceKey: d.device.Key, Datacenter: c.dc.InventoryPath,
			Backing: d.device.Backing, Capacity: d.capacity}
		if b, ok := d.device.Backing.(types.BaseVirtualDeviceFileBackingInfo); ok {
			if ds := b.GetVirtualDeviceFileBackingInfo().Datastore; ds != nil {
				ref.DatastoreType = dsTypes[ds.Value]
			}
		}
		rd, err := openDisk(ctx, transports, ref)
		if err != nil {
			return sn, fmt.Errorf("open disk %s of %s: %w", d.key, name, err)
		}
		sn.disks = append(sn.disks, &disk{snap: sn, info: d, ref: ref, r: rd, changeID: changeID(d.device)})
	}
	return sn, nil
}

func changeID(vd *types.VirtualDisk) string {
	if b, ok := vd.Backing.(*types.VirtualDiskFlatVer2BackingInfo); ok {
		return b.ChangeId
	}
	return ""
}

func datastoreTypes(ctx context.Context, c *conn, refs []types.ManagedObjectReference) (map[string]string, error) {
	out := map[string]string{}
	if len(refs) == 0 {
		return out, nil
	}
	var dss []mo.Datastore
	if err := property.DefaultCollector(c.vim()).Retrieve(ctx, refs, []string{"summary.type"}, &dss); err != nil {
		return nil, fmt.Errorf("read datastores: %w", err)
	}
	for _, ds := range dss {
		out[ds.Self.Value] = ds.Summary.Type
	}
	return out, nil
}

func createSnapshot(ctx context.Context, vm *object.VirtualMachine, name string, quiesce bool) (types.ManagedObjectReference, error) {
	task, err := vm.CreateSnapshot(ctx, name, "Taken by Cairn for a backup; removed when it ends", false, quiesce)
	if err != nil {
		return types.ManagedObjectReference{}, err
	}
	info, err := task.WaitForResult(ctx)
	if err != nil {
		return types.ManagedObjectReference{}, err
	}
	ref, ok := info.Result.(types.ManagedObjectReference)
	if !ok {
		return types.ManagedObjectReference{}, errors.New("snapshot task returned no snapshot")
	}
	return ref, nil
}

// removeLeftovers removes snapshots named by Cairn, from a crashed run.
func removeLeftovers(ctx context.Context, vm *object.VirtualMachine, info *types.VirtualMachineSnapshotInfo) (int, error) {
	if info == nil {
		return 0, nil
	}
	var refs []types.ManagedObjectReference
	var walk func([]types.VirtualMachineSnapshotTree)
	walk = func(ts []types.VirtualMachineSnapshotTree) {
		for _, t := range ts {
			if strings.HasPrefix(t.Name, SnapshotPrefix) {
				refs = append(refs, t.Snapshot)
			}
			walk(t.ChildSnapshotList)
		}
	}
	walk(info.RootSnapshotList)
	for _, ref := range refs {
		if err := removeSnapshot(ctx, vm, ref); err != nil {
			return 0, fmt.Errorf("remove leftover snapshot %s: %w", ref.Value, err)
		}
	}
	return len(refs), nil
}

func removeSnapshot(ctx context.Context, vm *object.VirtualMachine, ref types.ManagedObjectReference) error {
	consolidate := true
	req := types.RemoveSnapshot_Task{This: ref, RemoveChildren: false, Consolidate: &consolidate}
	task, err := removeTask(ctx, vm, req)
	if err != nil {
		return err
	}
	return task.Wait(ctx)
}

// snapshot is an open backup snapshot of one VM.
type snapshot struct {
	cfg      Config
	c        *conn
	vm       *object.VirtualMachine
	name     string
	path     string
	pool     string
	ref      types.ManagedObjectReference
	quiesced bool
	config   types.VirtualMachineConfigInfo
	disks    []*disk

	mu    sync.Mutex
	notes []string // for the first Changes call, so the job shows them

	once sync.Once
	err  error
}

func (s *snapshot) Disks() []plugins.Disk {
	out := make([]plugins.Disk, len(s.disks))
	for i, d := range s.disks {
		out[i] = d
	}
	return out
}

// Consistency is application-consistent for a quiesced snapshot.
func (s *snapshot) Consistency() string {
	if s.quiesced {
		return ConsistencyApplication
	}
	return ConsistencyCrash
}

// takeNotes returns the pending notes once.
func (s *snapshot) takeNotes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.notes
	s.notes = nil
	return n
}

// Close removes the snapshot. If the session is gone (expired, or the
// server restarted) it logs in again to do so.
func (s *snapshot) Close(ctx context.Context) error {
	s.once.Do(func() {
		for _, d := range s.disks {
			d.r.Close()
		}
		if s.ref.Value == "" {
			s.c.logout(ctx)
			return
		}
		err := removeSnapshot(ctx, s.vm, s.ref)
		if err != nil {
			if c, cerr := s.cfg.connect(ctx); cerr == nil {
				err = removeSnapshot(ctx, object.NewVirtualMachine(c.vim(), s.vm.Reference()), s.ref)
				c.logout(ctx)
			}
		}
		s.c.logout(ctx)
		if err != nil {
			s.err = fmt.Errorf("remove snapshot %s of %s (the next backup removes it): %w", s.ref.Value, s.name, err)
		}
	})
	return s.err
}
