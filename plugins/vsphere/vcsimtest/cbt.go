package vcsimtest

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// newChangeUUID returns a change-tracking identity in VMware's format,
// "52 3c 5e 1a 2b 4d 6f 70-81 92 a3 b4 c5 d6 e7 f8".
func newChangeUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[0] = 0x52
	var sb strings.Builder
	for i, x := range b {
		switch {
		case i == 8:
			sb.WriteByte('-')
		case i > 0:
			sb.WriteByte(' ')
		}
		fmt.Fprintf(&sb, "%02x", x)
	}
	return sb.String()
}

// parseChangeID splits "UUID/N".
func parseChangeID(id string) (string, int, error) {
	i := strings.LastIndexByte(id, '/')
	if i < 0 {
		return "", 0, errors.New("no sequence number")
	}
	n, err := strconv.Atoi(id[i+1:])
	if err != nil || n < 0 {
		return "", 0, errors.New("bad sequence number")
	}
	return id[:i], n, nil
}

// hook sees snapshots come and go in the simulator's registry.
type hook struct{ s *Sim }

func (h *hook) Reference() types.ManagedObjectReference {
	return types.ManagedObjectReference{Type: "CairnHarness", Value: "cbt"}
}

// PutObject stamps a new snapshot's disks with changeIds and freezes their
// flat files. The simulator's snapshot shares device structs with the live
// VM, so the snapshot gets copies.
func (h *hook) PutObject(ctx *simulator.Context, obj mo.Reference) {
	snap, ok := obj.(*simulator.VirtualMachineSnapshot)
	if !ok {
		return
	}
	vm, ok := ctx.Map.Get(snap.Vm).(*simulator.VirtualMachine)
	if !ok {
		return
	}
	cbt := vm.Config.ChangeTrackingEnabled != nil && *vm.Config.ChangeTrackingEnabled
	devs := make([]types.BaseVirtualDevice, len(snap.Config.Hardware.Device))
	s := h.s
	type frozen struct {
		vm       string
		i        int
		id, flat string
	}
	var report []frozen
	defer func() {
		if s.onSnapshot != nil {
			for _, f := range report {
				s.onSnapshot(f.vm, f.i, f.id, f.flat)
			}
		}
	}()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, dev := range snap.Config.Hardware.Device {
		devs[i] = dev
		vd, ok := dev.(*types.VirtualDisk)
		if !ok {
			continue
		}
		c := *vd
		if b, ok := c.Backing.(*types.VirtualDiskFlatVer2BackingInfo); ok {
			bc := *b
			if d := s.disks[diskID{snap.Vm.Value, vd.Key}]; d != nil {
				d.seq++
				d.frozen++
				s.snaps[snap.Self.Value] = append(s.snaps[snap.Self.Value], d.id)
				bc.ChangeId = ""
				if cbt {
					bc.ChangeId = fmt.Sprintf("%s/%d", d.uuid, d.seq)
				}
				report = append(report, frozen{d.vmName, slices.Index(s.vmDisks[d.vmName], d.id), bc.ChangeId, d.flat})
			}
			c.Backing = &bc
		}
		devs[i] = &c
	}
	snap.Config.Hardware.Device = devs
}

func (h *hook) UpdateObject(*simulator.Context, mo.Reference, []types.PropertyChange) {}

// RemoveObject merges redo logs when a VM's last snapshot goes, and forgets
// the disks of a destroyed VM.
func (h *hook) RemoveObject(ctx *simulator.Context, ref types.ManagedObjectReference) {
	s := h.s
	s.mu.Lock()
	defer s.mu.Unlock()
	switch ref.Type {
	case "VirtualMachineSnapshot":
		for _, id := range s.snaps[ref.Value] {
			if d := s.disks[id]; d != nil {
				d.frozen--
				if d.frozen == 0 {
					if err := d.consolidate(); err != nil {
						fmt.Fprintf(os.Stderr, "vcsimtest: consolidate %s: %v\n", d.flat, err)
					}
				}
			}
		}
		delete(s.snaps, ref.Value)
	case "VirtualMachine":
		for id, d := range s.disks {
			if id.vm == ref.Value {
				d.closeRedo()
				delete(s.disks, id)
				ids := s.vmDisks[d.vmName]
				for i := range ids {
					if ids[i] == id {
						s.vmDisks[d.vmName] = append(ids[:i:i], ids[i+1:]...)
						break
					}
				}
				if len(s.vmDisks[d.vmName]) == 0 {
					delete(s.vmDisks, d.vmName)
				}
			}
		}
	}
}

// handler runs before every SOAP method: it expires sessions and routes
// QueryChangedDiskAreas to cbtVM.
func (s *Sim) handler(ctx *simulator.Context, m *simulator.Method) (mo.Reference, types.BaseMethodFault) {
	// The simulator's own in-memory client has a session without a user;
	// expiring it would break the simulator's /folder handler.
	if ctx.Session == nil || ctx.Session.UserName == "" {
		return nil, nil
	}
	key := ctx.Session.Key
	s.mu.Lock()
	delay := s.faults.delays[m.Name]
	s.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	s.mu.Lock()
	expired, known := s.sessions[key]
	if !known {
		s.sessions[key] = false
	}
	s.mu.Unlock()
	if expired {
		return nil, &types.NotAuthenticated{NoPermission: types.NoPermission{Object: &m.This, PrivilegeId: "System.View"}}
	}
	if m.Name != "QueryChangedDiskAreas" {
		return nil, nil
	}
	s.mu.Lock()
	if n := s.faults.expireAfter; n >= 0 && s.faults.queryCalls >= n {
		for k := range s.sessions {
			s.sessions[k] = true
		}
		s.faults.expireAfter = -1
		s.mu.Unlock()
		return nil, &types.NotAuthenticated{NoPermission: types.NoPermission{Object: &m.This, PrivilegeId: "System.View"}}
	}
	s.mu.Unlock()
	vm, ok := ctx.Map.Get(m.This).(*simulator.VirtualMachine)
	if !ok {
		return nil, nil
	}
	w := &cbtVM{VirtualMachine: vm, s: s}
	// The call prefers the session's registry over the handler's result,
	// so the wrapper is put there for the length of the call.
	s.mu.Lock()
	s.shadows[key+"/"+vm.Self.Value]++
	ctx.Session.Registry.Put(w)
	s.mu.Unlock()
	return w, nil
}

func (s *Sim) dropShadow(ctx *simulator.Context, ref types.ManagedObjectReference) {
	k := ctx.Session.Key + "/" + ref.Value
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shadows[k]--; s.shadows[k] <= 0 {
		delete(s.shadows, k)
		ctx.Session.Registry.Remove(ctx, ref)
	}
}

// cbtVM adds QueryChangedDiskAreas to a simulated VM. It is never put in
// the simulator's global registry: the snapshot task type-asserts
// *simulator.VirtualMachine there.
type cbtVM struct {
	*simulator.VirtualMachine
	s *Sim
}

// QueryChangedDiskAreas answers from the guest writes recorded since the
// base changeId, or the allocated areas for "*".
func (v *cbtVM) QueryChangedDiskAreas(ctx *simulator.Context, req *types.QueryChangedDiskAreas) soap.HasFault {
	defer v.s.dropShadow(ctx, v.Self)
	body := &methods.QueryChangedDiskAreasBody{}
	info, msg, fault := v.s.queryChanged(ctx, req)
	if fault != nil {
		body.Fault_ = simulator.Fault(msg, fault)
		return body
	}
	body.Res = &types.QueryChangedDiskAreasResponse{Returnval: *info}
	return body
}

func (s *Sim) queryChanged(ctx *simulator.Context, req *types.QueryChangedDiskAreas) (*types.DiskChangeInfo, string, types.BaseMethodFault) {
	if req.Snapshot == nil {
		return nil, "a snapshot is required", &types.InvalidArgument{InvalidProperty: "snapshot"}
	}
	snap, ok := ctx.Map.Get(*req.Snapshot).(*simulator.VirtualMachineSnapshot)
	if !ok || snap.Vm != req.This {
		return nil, "snapshot not found", &types.ManagedObjectNotFound{Obj: *req.Snapshot}
	}
	var vd *types.VirtualDisk
	for _, dev := range snap.Config.Hardware.Device {
		if d, ok := dev.(*types.VirtualDisk); ok && d.Key == req.DeviceKey {
			vd = d
		}
	}
	if vd == nil {
		return nil, fmt.Sprintf("no disk with device key %d", req.DeviceKey), &types.InvalidArgument{InvalidProperty: "deviceKey"}
	}
	b, _ := vd.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
	if b == nil || b.ChangeId == "" {
		return nil, "change tracking is not enabled on the disk", &types.FileFault{File: fileName(b)}
	}
	capacity := vd.CapacityInBytes
	if req.StartOffset < 0 || req.StartOffset >= capacity {
		return nil, fmt.Sprintf("start offset %d outside the %d-byte disk", req.StartOffset, capacity),
			&types.InvalidArgument{InvalidProperty: "startOffset"}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.queryCalls++
	if n := s.faults.queryFailAfter; n >= 0 && s.faults.queryCalls > n {
		return nil, "injected QueryChangedDiskAreas failure", &types.FileFault{File: b.FileName}
	}
	d := s.disks[diskID{req.This.Value, req.DeviceKey}]
	if d == nil {
		return nil, "disk unknown to the harness", &types.FileFault{File: b.FileName}
	}
	end := capacity
	if p := s.faults.pageLimit; p > 0 {
		end = min(capacity, req.StartOffset+p)
	}
	var ext []extent
	if req.ChangeId == "*" {
		var err error
		if ext, err = allocated(d.flat, req.StartOffset, end); err != nil {
			return nil, err.Error(), &types.FileFault{File: b.FileName}
		}
	} else {
		snapUUID, m, _ := parseChangeID(b.ChangeId)
		uuid, n, err := parseChangeID(req.ChangeId)
		switch {
		case err != nil:
			return nil, fmt.Sprintf("invalid change ID %q: %v", req.ChangeId, err), &types.FileFault{File: b.FileName}
		case uuid != snapUUID || uuid != d.uuid || n > m:
			return nil, fmt.Sprintf("invalid change ID %q: change tracking was reset", req.ChangeId), &types.FileFault{File: b.FileName}
		}
		for _, w := range d.writes {
			if w.seq >= n && w.seq < m {
				ext = append(ext, w.ext)
			}
		}
		ext = clip(roundOut(ext), req.StartOffset, end)
	}
	info := &types.DiskChangeInfo{StartOffset: req.StartOffset, Length: end - req.StartOffset}
	for _, e := range ext {
		info.ChangedArea = append(info.ChangedArea, types.DiskChangeExtent{Start: e.off, Length: e.n})
	}
	return info, "", nil
}

func fileName(b *types.VirtualDiskFlatVer2BackingInfo) string {
	if b == nil {
		return ""
	}
	return b.FileName
}

// roundOut widens extents to whole blocks, sorts and merges them.
func roundOut(ext []extent) []extent {
	for i, e := range ext {
		lo := e.off / block * block
		hi := (e.end() + block - 1) / block * block
		ext[i] = extent{lo, hi - lo}
	}
	return merge(ext)
}

func merge(ext []extent) []extent {
	sortExtents(ext)
	var out []extent
	for _, e := range ext {
		if n := len(out); n > 0 && e.off <= out[n-1].end() {
			out[n-1].n = max(out[n-1].end(), e.end()) - out[n-1].off
			continue
		}
		out = append(out, e)
	}
	return out
}

// clip keeps the parts of ext inside [lo, hi).
func clip(ext []extent, lo, hi int64) []extent {
	var out []extent
	for _, e := range ext {
		a, b := max(e.off, lo), min(e.end(), hi)
		if a < b {
			out = append(out, extent{a, b - a})
		}
	}
	return out
}

// allocated returns the data extents of the flat file in [lo, hi), in
// whole blocks.
func allocated(name string, lo, hi int64) ([]extent, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ext []extent
	fd := int(f.Fd())
	for off := lo; off < hi; {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("seek data in %s: %w", name, err)
		}
		if data >= hi {
			break
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return nil, fmt.Errorf("seek hole in %s: %w", name, err)
		}
		ext = append(ext, extent{data, hole - data})
		off = hole
	}
	return clip(roundOut(ext), lo, hi), nil
}
