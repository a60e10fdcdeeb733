package vsphere_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/cairnhq/cairn/appliance/api"
	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/meta"
	"github.com/cairnhq/cairn/plugins"
	"github.com/cairnhq/cairn/plugins/vsphere"
	"github.com/cairnhq/cairn/plugins/vsphere/vcsimtest"
)

const capacity = 16 * mib

func oneVM(t *testing.T) (*appliance, []byte) {
	s := startSim(t, vcsimtest.VM{Name: "web", Disks: []vcsimtest.Disk{{Capacity: capacity}}, Tags: []string{"gold"}})
	a := newAppliance(t, s)
	return a, fill(t, s, "web", 1)
}

// blocksTouched counts the engine's blocks that writes at offs touch.
func blocksTouched(ws map[int64]int) int64 {
	seen := map[int64]bool{}
	for off, n := range ws {
		for b := off / chunk.BlockSize; b <= (off+int64(n)-1)/chunk.BlockSize; b++ {
			seen[b] = true
		}
	}
	return int64(len(seen))
}

func TestFullIncrementalRestore(t *testing.T) {
	a, before := oneVM(t)
	s := a.sim

	full := a.point(t, a.backup(t, "web"))
	if full.Consistency != vsphere.ConsistencyApplication {
		t.Errorf("consistency %q, want application-consistent (tools run in the simulator)", full.Consistency)
	}
	if len(full.Disks) != 1 || full.Disks[0].Key != "scsi0:0" || !strings.HasPrefix(full.Disks[0].ChangeToken, "52 ") {
		t.Fatalf("disks %+v, want scsi0:0 with a VMware changeId", full.Disks)
	}
	if full.ReadBytes != 3*chunk.BlockSize {
		t.Errorf("full backup read %d bytes of a %d-byte disk holding three small regions; want the three blocks holding them", full.ReadBytes, capacity)
	}
	if len(snapshots(t, s, "web")) != 0 {
		t.Fatal("the backup left a snapshot")
	}

	// Guest writes between the two backups.
	writes := map[int64]int{9*mib + 10: 5000, 13 * mib: 64 << 10}
	for off, n := range writes {
		if err := s.Write("web", 0, off, bytes.Repeat([]byte{0xab}, n)); err != nil {
			t.Fatal(err)
		}
	}
	after := live(t, s, "web", 0)
	served0, _ := s.FlatBytesServed()
	inc := a.point(t, a.backup(t, "web"))
	served1, _ := s.FlatBytesServed()
	if inc.Base != full.ID {
		t.Fatalf("incremental's base %q, want %q", inc.Base, full.ID)
	}
	want := blocksTouched(writes) * chunk.BlockSize
	if inc.ReadBytes != want || served1-served0 != want {
		t.Errorf("incremental read %d bytes (datastore served %d); want exactly the %d bytes of the blocks the writes touched",
			inc.ReadBytes, served1-served0, want)
	}
	if inc.Disks[0].ChangeToken == full.Disks[0].ChangeToken {
		t.Error("the incremental recorded the full backup's changeId")
	}

	// Restore both points to new VMs and compare bytes.
	for _, tc := range []struct {
		rp   meta.RestorePoint
		name string
		want []byte
	}{{full, "web-full", before}, {inc, "web-inc", after}} {
		j, err := a.m.StartRestore(t.Context(), api.RestoreRequest{RestorePoint: tc.rp.ID, To: "vsphere:sim",
			Options: map[string]string{"vm-name": tc.name, "spool-dir": t.TempDir()}})
		j = a.wait(t, j, err)
		if j.State != meta.JobSucceeded || j.Result["vm"] != tc.name || !strings.HasPrefix(j.Result["vm_id"], "vm-") {
			t.Fatalf("restore job: %+v", j)
		}
		vm := vmObject(t, s, tc.name)
		if got := diskFile(t, s, vm, 0); !bytes.Equal(got, tc.want) {
			t.Errorf("restored %s's disk differs from the source at its backup", tc.name)
		}
		var m mo.VirtualMachine
		if err := vm.Properties(t.Context(), vm.Reference(), []string{"config"}, &m); err != nil {
			t.Fatal(err)
		}
		devs := object.VirtualDeviceList(m.Config.Hardware.Device)
		nics := devs.SelectByType((*types.VirtualVmxnet3)(nil))
		if m.Config.Hardware.NumCPU != 1 || m.Config.Hardware.MemoryMB != 512 || m.Config.GuestId != "otherLinux64Guest" ||
			len(devs.SelectByType((*types.ParaVirtualSCSIController)(nil))) != 1 || len(nics) != 1 ||
			nics[0].GetVirtualDevice().Backing.(*types.VirtualEthernetCardNetworkBackingInfo).DeviceName != "VM Network" {
			t.Errorf("restored %s: cpus %d, memory %d, guest %s, devices %v", tc.name, m.Config.Hardware.NumCPU,
				m.Config.Hardware.MemoryMB, m.Config.GuestId, devs)
		}
	}
	if got := snapshots(t, s, "web"); len(got) != 0 {
		t.Errorf("snapshots left: %v", got)
	}
	j, err := a.m.StartRestore(t.Context(), api.RestoreRequest{RestorePoint: inc.ID, To: "vsphere:sim",
		Options: map[string]string{"vm-name": "web"}})
	if j = a.wait(t, j, err); j.State != meta.JobFailed || !strings.Contains(j.Error, "a vm named web exists") || j.Progress.Done != 0 {
		t.Errorf("restore onto an existing name: %+v; want an early failure", j)
	}
}

func TestObjectConfigSaved(t *testing.T) {
	a, _ := oneVM(t)
	rp := a.point(t, a.backup(t, "web"))
	cfg, err := vsphere.ParseVMConfig(rp.ObjectConfig)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Name != "web" || cfg.CPUs != 1 || cfg.MemoryMB != 512 || len(cfg.Disks) != 1 || cfg.Disks[0].Capacity != capacity ||
		!slices.ContainsFunc(cfg.Controllers, func(c vsphere.ControllerCfg) bool { return c.Type == "pvscsi" && c.Key == cfg.Disks[0].ControllerKey }) ||
		len(cfg.Networks) != 1 || cfg.Networks[0].Network != "VM Network" {
		t.Errorf("saved configuration %+v", cfg)
	}
}

func TestInPlaceRestore(t *testing.T) {
	a, before := oneVM(t)
	s := a.sim
	rp := a.point(t, a.backup(t, "web"))
	vm := vmObject(t, s, "web")
	restore := func(overwrite bool) meta.Job {
		j, err := a.m.StartRestore(t.Context(), api.RestoreRequest{RestorePoint: rp.ID, To: "vsphere:sim", Overwrite: overwrite,
			Options: map[string]string{"in-place": "true", "spool-dir": t.TempDir()}})
		return a.wait(t, j, err)
	}
	if j := restore(true); j.State != meta.JobFailed || !strings.Contains(j.Error, "power it off") {
		t.Fatalf("in-place restore onto a running vm: %+v", j)
	}
	task, err := vm.PowerOff(t.Context())
	if err != nil || task.Wait(t.Context()) != nil {
		t.Fatal(err)
	}
	if err := s.Write("web", 0, 0, bytes.Repeat([]byte{0xee}, 2*mib)); err != nil {
		t.Fatal(err)
	}
	if j := restore(false); j.State != meta.JobFailed || !strings.Contains(j.Error, "needs overwrite") {
		t.Fatalf("in-place restore without overwrite: %+v", j)
	}
	j := restore(true)
	if j.State != meta.JobSucceeded || j.Result["vm"] != "web" || j.Result["vm_id"] != vm.Reference().Value {
		t.Fatalf("in-place restore: %+v", j)
	}
	if got := live(t, s, "web", 0); !bytes.Equal(got, before) {
		t.Error("disk after the in-place restore differs from the backup")
	}
	// The restore wrote behind CBT's back: the next backup must not trust
	// the old changeId.
	next := a.backup(t, "web")
	if next.State != meta.JobSucceeded || !slices.ContainsFunc(next.Messages, func(m string) bool { return strings.Contains(m, "refused the base changeId") }) {
		t.Errorf("backup after an in-place restore: %+v, want a full read noting the refused changeId", next)
	}
}

func TestPaging(t *testing.T) {
	a, _ := oneVM(t)
	s := a.sim
	s.SetPageLimit(5 * mib) // four pages for a 16 MiB disk
	full := a.point(t, a.backup(t, "web"))
	calls := s.QueryCalls()
	if calls != 4 {
		t.Errorf("full backup made %d QueryChangedDiskAreas calls, want 4 pages", calls)
	}
	if err := s.Write("web", 0, 15*mib, []byte("tail")); err != nil {
		t.Fatal(err)
	}
	inc := a.point(t, a.backup(t, "web"))
	if s.QueryCalls()-calls != 4 || inc.ReadBytes != chunk.BlockSize {
		t.Errorf("incremental made %d calls and read %d bytes; want 4 pages and the one block holding the change", s.QueryCalls()-calls, inc.ReadBytes)
	}
	_ = full
	// Without paging the same point restores identically.
	s.SetPageLimit(0)
	j, err := a.m.StartRestore(t.Context(), api.RestoreRequest{RestorePoint: inc.ID, To: "vsphere:sim",
		Options: map[string]string{"vm-name": "paged", "spool-dir": t.TempDir()}})
	if j = a.wait(t, j, err); j.State != meta.JobSucceeded {
		t.Fatal(j.Error)
	}
	if !bytes.Equal(diskFile(t, s, vmObject(t, s, "paged"), 0), live(t, s, "web", 0)) {
		t.Error("restore of a point built from paged replies differs")
	}
}

func TestChangeIDReset(t *testing.T) {
	a, _ := oneVM(t)
	s := a.sim
	full := a.point(t, a.backup(t, "web"))
	if err := s.Write("web", 0, 3*mib, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.ResetChangeTracking("web"); err != nil {
		t.Fatal(err)
	}
	j := a.backup(t, "web")
	rp := a.point(t, j)
	if rp.ReadBytes != full.ReadBytes+chunk.BlockSize && rp.ReadBytes < full.ReadBytes {
		t.Errorf("after a CBT reset the backup read %d bytes; want a full read of the allocated areas (%d+)", rp.ReadBytes, full.ReadBytes)
	}
	if !slices.ContainsFunc(j.Messages, func(m string) bool {
		return strings.Contains(m, "full read") && strings.Contains(m, "invalid change ID")
	}) {
		t.Errorf("job messages %q do not say the read was full and why", j.Messages)
	}
	j, err := a.m.StartRestore(t.Context(), api.RestoreRequest{RestorePoint: rp.ID, To: "vsphere:sim",
		Options: map[string]string{"vm-name": "after-reset", "spool-dir": t.TempDir()}})
	if j = a.wait(t, j, err); j.State != meta.JobSucceeded {
		t.Fatal(j.Error)
	}
	if !bytes.Equal(diskFile(t, s, vmObject(t, s, "after-reset"), 0), live(t, s, "web", 0)) {
		t.Error("restore after a reset differs")
	}
}

func TestFaults(t *testing.T) {
	tests := []struct {
		name   string
		inject func(s *vcsimtest.Sim)
		want   string
	}{
		{"snapshot creation fails", func(s *vcsimtest.Sim) {
			s.FailMethod("CreateSnapshot_Task", &types.InsufficientResourcesFault{})
		}, "snapshot web"},
		{"QueryChangedDiskAreas fails half-way", func(s *vcsimtest.Sim) {
			s.SetPageLimit(5 * mib)
			s.FailQueryAfter(2)
		}, "page 3"},
		{"session expires", func(s *vcsimtest.Sim) {
			s.SetPageLimit(5 * mib)
			s.ExpireSessionsAfterQueries(1)
		}, "NotAuthenticated"},
		{"read errors", func(s *vcsimtest.Sim) { s.FailReads(1000) }, "injected read error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, _ := oneVM(t)
			tt.inject(a.sim)
			j := a.backup(t, "web")
			if j.State != meta.JobFailed || !strings.Contains(j.Error, tt.want) {
				t.Fatalf("job %s: %q; want failed with %q", j.State, j.Error, tt.want)
			}
			if strings.Contains(j.Error, a.sim.Password) {
				t.Fatal("the job error holds the password")
			}
			if rps, err := a.m.RestorePoints(t.Context(), meta.Filter{}); err != nil || len(rps) != 0 {
				t.Errorf("restore points after a failed backup: %v, %v", rps, err)
			}
			a.sim.ClearFaults()
			if left := snapshots(t, a.sim, "web"); len(left) != 0 {
				t.Errorf("snapshots left behind: %v", left)
			}
			// The next backup works.
			a.point(t, a.backup(t, "web"))
		})
	}
}

func TestLeftoverSnapshotRemoved(t *testing.T) {
	a, _ := oneVM(t)
	vm := vmObject(t, a.sim, "web")
	for _, name := range []string{vsphere.SnapshotPrefix + "20250101T000000Z", "user-snapshot"} {
		task, err := vm.CreateSnapshot(t.Context(), name, "", false, false)
		if err != nil || task.Wait(t.Context()) != nil {
			t.Fatal(err)
		}
	}
	j := a.backup(t, "web")
	if !slices.ContainsFunc(j.Messages, func(m string) bool { return strings.Contains(m, "removed 1 snapshot(s) a crashed backup left") }) {
		t.Errorf("job messages %q do not report the leftover", j.Messages)
	}
	if got := snapshots(t, a.sim, "web"); !slices.Equal(got, []string{"user-snapshot"}) {
		t.Errorf("snapshots after the backup: %v, want only the user's", got)
	}
}

// A backup canceled while vSphere is still creating its snapshot leaves
// the snapshot behind once the server finishes; the next backup removes it.
func TestCanceledDuringSnapshot(t *testing.T) {
	a, _ := oneVM(t)
	a.sim.DelayMethod("CreateSnapshot_Task", time.Second)
	j, err := a.m.StartBackup(t.Context(), api.BackupRequest{Source: "sim", Object: "web"})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if _, err := a.m.CancelJob(t.Context(), j.ID); err != nil {
		t.Fatal(err)
	}
	if j = a.wait(t, j, nil); j.State == meta.JobSucceeded {
		t.Fatalf("canceled backup: %+v", j)
	}
	a.sim.DelayMethod("CreateSnapshot_Task", 0)
	deadline := time.Now().Add(10 * time.Second)
	for len(snapshots(t, a.sim, "web")) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if left := snapshots(t, a.sim, "web"); len(left) != 1 || !strings.HasPrefix(left[0], vsphere.SnapshotPrefix) {
		t.Fatalf("snapshots after the canceled backup: %v, want the one vSphere finished creating", left)
	}
	next := a.backup(t, "web")
	a.point(t, next)
	if left := snapshots(t, a.sim, "web"); len(left) != 0 {
		t.Errorf("the next backup left %v", left)
	}
}

func TestTransports(t *testing.T) {
	s := startSim(t, vcsimtest.VM{Name: "web", Disks: []vcsimtest.Disk{{Capacity: capacity}}})
	fill(t, s, "web", 3)
	for _, tt := range []struct{ transport, want string }{
		// The simulator's export lease serves the descriptor, not a
		// streamOptimized disk: the NFC path must fail cleanly.
		{"nfc", "not streamOptimized"},
		{"libvix", "not built in"},
	} {
		t.Run(tt.transport, func(t *testing.T) {
			sc := sourceConfig(s, "sim")
			sc.Settings[vsphere.SettingTransport] = tt.transport
			src, err := vsphere.Kind().NewSource(t.Context(), sc)
			if err != nil {
				t.Fatal(err)
			}
			snap, err := src.Open(t.Context(), "web", plugins.OpenOptions{})
			if err == nil {
				snap.Close(t.Context())
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Open with transport %s: %v, want %q", tt.transport, err, tt.want)
			}
			if left := snapshots(t, s, "web"); len(left) != 0 {
				t.Errorf("snapshots left: %v", left)
			}
		})
	}
	sc := sourceConfig(s, "sim")
	sc.Settings[vsphere.SettingTransport] = "carrier-pigeon"
	if _, err := vsphere.Kind().NewSource(t.Context(), sc); !errors.Is(err, plugins.ErrInvalid) {
		t.Errorf("unknown transport: %v", err)
	}
}
