package vsphere_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/cairnhq/cairn/appliance/api"
	"github.com/cairnhq/cairn/appliance/jobs"
	"github.com/cairnhq/cairn/appliance/jobs/jobstest"
	"github.com/cairnhq/cairn/appliance/keys"
	"github.com/cairnhq/cairn/cluster/meta"
	"github.com/cairnhq/cairn/cluster/store"
	"github.com/cairnhq/cairn/plugins"
	"github.com/cairnhq/cairn/plugins/vsphere"
	"github.com/cairnhq/cairn/plugins/vsphere/vcsimtest"
)

const mib = 1 << 20

// startSim runs a simulator holding vms.
func startSim(t *testing.T, vms ...vcsimtest.VM) *vcsimtest.Sim {
	t.Helper()
	s, err := vcsimtest.Start(t.Context(), vcsimtest.Options{Dir: t.TempDir(), VMs: vms})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// sourceConfig is the source record for the simulator, pinned by SHA-1.
func sourceConfig(s *vcsimtest.Sim, name string) plugins.SourceConfig {
	return plugins.SourceConfig{Name: name, Settings: map[string]string{
		vsphere.SettingURL: s.URL.String(), vsphere.SettingUser: s.User, vsphere.SettingThumbprint: s.Thumbprint,
	}, Secrets: map[string]string{vsphere.SecretPassword: s.Password}}
}

// fill writes a pattern of data regions into the VM's disk 0 and returns
// the disk's content.
func fill(t *testing.T, s *vcsimtest.Sim, vm string, seed byte) []byte {
	t.Helper()
	capacity, err := s.Capacity(vm, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct{ off, n int64 }{{0, 100 << 10}, {5*mib + 3, 300 << 10}, {capacity - 5000, 5000}} {
		p := bytes.Repeat([]byte{seed, seed + 1, seed + 2}, int(r.n)/3+1)[:r.n]
		if err := s.Write(vm, 0, r.off, p); err != nil {
			t.Fatal(err)
		}
	}
	return live(t, s, vm, 0)
}

func live(t *testing.T, s *vcsimtest.Sim, vm string, disk int) []byte {
	t.Helper()
	capacity, err := s.Capacity(vm, disk)
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, capacity)
	if _, err := s.ReadAt(vm, disk, p, 0); err != nil {
		t.Fatal(err)
	}
	return p
}

// appliance is the real job manager with the real engines over an
// in-memory store, and the simulator registered as source "sim".
type appliance struct {
	m       *jobs.Manager
	catalog *meta.Memory
	sim     *vcsimtest.Sim
}

func newAppliance(t *testing.T, s *vcsimtest.Sim) *appliance {
	t.Helper()
	dir := t.TempDir()
	catalog := meta.NewMemory()
	master, _, err := keys.Load(filepath.Join(dir, "master.key"), nil, true)
	if err != nil {
		t.Fatal(err)
	}
	m, err := jobs.New(context.Background(), catalog, keys.NewRing(master, catalog, nil), store.NewMemory(store.Options{}),
		[]plugins.Kind{vsphere.Kind()}, jobs.Options{Secrets: keys.NewSecrets(master, nil)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	sc := sourceConfig(s, "sim")
	if _, err := m.AddSource(t.Context(), api.AddSourceRequest{Name: "sim", Kind: "vsphere", Config: sc.Settings, Secrets: sc.Secrets}); err != nil {
		t.Fatal(err)
	}
	return &appliance{m: m, catalog: catalog, sim: s}
}

func (a *appliance) wait(t *testing.T, j meta.Job, err error) meta.Job {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	return jobstest.Wait(t, a.m, j.ID, time.Minute)
}

func (a *appliance) backup(t *testing.T, vm string) meta.Job {
	t.Helper()
	j, err := a.m.StartBackup(t.Context(), api.BackupRequest{Source: "sim", Object: vm})
	return a.wait(t, j, err)
}

func (a *appliance) point(t *testing.T, j meta.Job) meta.RestorePoint {
	t.Helper()
	if j.State != meta.JobSucceeded {
		t.Fatalf("job %s: %s: %s", j.ID, j.State, j.Error)
	}
	rp, err := a.m.RestorePoint(t.Context(), j.RestorePoint)
	if err != nil {
		t.Fatal(err)
	}
	return rp
}

// vmObject finds a VM through a client of its own.
func vmObject(t *testing.T, s *vcsimtest.Sim, name string) *object.VirtualMachine {
	t.Helper()
	c, err := s.Client(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Logout(context.Background()) })
	f := find.NewFinder(c.Client)
	dc, err := f.Datacenter(t.Context(), vcsimtest.Datacenter)
	if err != nil {
		t.Fatal(err)
	}
	f.SetDatacenter(dc)
	vm, err := f.VirtualMachine(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return vm
}

// diskFile returns the local flat file of the VM's disk i.
func diskFile(t *testing.T, s *vcsimtest.Sim, vm *object.VirtualMachine, i int) []byte {
	t.Helper()
	devs, err := vm.Device(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	disks := devs.SelectByType((*types.VirtualDisk)(nil))
	b := disks[i].(*types.VirtualDisk).Backing.(*types.VirtualDiskFlatVer2BackingInfo)
	p, err := s.LocalPath(b.FileName)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(p[:len(p)-len(".vmdk")] + "-flat.vmdk")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func snapshots(t *testing.T, s *vcsimtest.Sim, vm string) []string {
	t.Helper()
	names, err := s.Snapshots(t.Context(), vm)
	if err != nil {
		t.Fatal(err)
	}
	return names
}
