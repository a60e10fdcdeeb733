package vddk_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/cairnhq/cairn/plugins/vsphere/vcsimtest"
	"github.com/cairnhq/cairn/vddk"
	"github.com/cairnhq/cairn/vddk/libvix"
)

const mib = 1 << 20

// snapshotDisk starts a simulator with one VM, writes data, snapshots it
// and returns the disk's reference in the snapshot.
func snapshotDisk(t *testing.T) (*vcsimtest.Sim, *vim25.Client, vddk.DiskRef, []byte) {
	t.Helper()
	ctx := t.Context()
	s, err := vcsimtest.Start(ctx, vcsimtest.Options{Dir: t.TempDir(),
		VMs: []vcsimtest.VM{{Name: "vm1", Disks: []vcsimtest.Disk{{Capacity: 8 * mib}}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	want := make([]byte, 8*mib)
	for i, off := range []int64{0, 3*mib + 5, 8*mib - 1000} {
		p := bytes.Repeat([]byte{byte(i + 1)}, 1000)
		copy(want[off:], p)
		if err := s.Write("vm1", 0, off, p); err != nil {
			t.Fatal(err)
		}
	}
	c, err := s.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f := find.NewFinder(c.Client)
	dc, _ := f.Datacenter(ctx, vcsimtest.Datacenter)
	f.SetDatacenter(dc)
	vm, err := f.VirtualMachine(ctx, "vm1")
	if err != nil {
		t.Fatal(err)
	}
	task, err := vm.CreateSnapshot(ctx, "t", "", false, false)
	if err != nil {
		t.Fatal(err)
	}
	info, err := task.WaitForResult(ctx)
	if err != nil {
		t.Fatal(err)
	}
	snap := info.Result.(types.ManagedObjectReference)
	var ms mo.VirtualMachineSnapshot
	if err := c.RetrieveOne(ctx, snap, []string{"config.hardware"}, &ms); err != nil {
		t.Fatal(err)
	}
	disks := object.VirtualDeviceList(ms.Config.Hardware.Device).SelectByType((*types.VirtualDisk)(nil))
	vd := disks[0].(*types.VirtualDisk)
	return s, c.Client, vddk.DiskRef{VM: vm.Reference(), Snapshot: snap, DeviceKey: vd.Key, Datacenter: "DC0",
		DatastoreType: "OTHER", Backing: vd.Backing, Capacity: vd.CapacityInBytes}, want
}

func TestHTTPSReads(t *testing.T) {
	s, c, ref, want := snapshotDisk(t)
	d, err := (&vddk.HTTPS{Client: c}).Open(t.Context(), ref)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Size() != 8*mib {
		t.Fatalf("Size = %d", d.Size())
	}
	// A write after the snapshot must not show.
	if err := s.Write("vm1", 0, 0, []byte("after")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 8*mib)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if n, err := d.ReadAt(got[i*mib:(i+1)*mib], int64(i)*mib); n != mib || (err != nil && err != io.EOF) {
				t.Errorf("ReadAt MiB %d = %d, %v", i, n, err)
			}
		})
	}
	wg.Wait()
	if !bytes.Equal(got, want) {
		t.Error("disk read over HTTPS differs from what was written before the snapshot")
	}
	p := make([]byte, 100)
	if n, err := d.ReadAt(p, 8*mib-10); n != 10 || err != io.EOF {
		t.Errorf("read across the end = %d, %v; want 10, io.EOF", n, err)
	}
	s.FailReads(1)
	if _, err := d.ReadAt(p, 0); err == nil || !strings.Contains(err.Error(), "500") {
		t.Errorf("read with an injected failure: %v, want the datastore's 500", err)
	}
	s.ExpireSessions()
	if _, err := d.ReadAt(p, 0); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("read after the session expired: %v, want one saying so", err)
	}
}

func TestHTTPSRefusesBackings(t *testing.T) {
	_, c, ref, _ := snapshotDisk(t)
	flat := ref.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
	delta := *flat
	delta.Parent = flat
	enc := *flat
	enc.KeyId = &types.CryptoKeyId{KeyId: "k"}
	vsan := ref
	vsan.DatastoreType = "vsan"
	for name, r := range map[string]vddk.DiskRef{
		"delta":     {Backing: &delta},
		"encrypted": {Backing: &enc},
		"seSparse":  {Backing: &types.VirtualDiskSeSparseBackingInfo{}},
		"sparse":    {Backing: &types.VirtualDiskSparseVer2BackingInfo{}},
		"vsan":      vsan,
	} {
		if _, err := (&vddk.HTTPS{Client: c}).Open(t.Context(), r); !errors.Is(err, vddk.ErrUnsupportedBacking) {
			t.Errorf("%s: Open error %v, want ErrUnsupportedBacking", name, err)
		}
	}
}

func TestDescriptor(t *testing.T) {
	tests := []struct {
		name, text string
		ok         bool
	}{
		{"flat", "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"vmfs\"\nRW 16384 VMFS \"a-flat.vmdk\"\n", true},
		{"monolithicFlat with offset", "createType=\"monolithicFlat\"\nRW 16384 FLAT \"a-flat.vmdk\" 0\n", true},
		{"delta", "createType=\"vmfsSparse\"\nparentCID=12345678\nRW 16384 VMFSSPARSE \"a-000001-delta.vmdk\"\n", false},
		{"seSparse", "createType=\"seSparse\"\nRW 16384 SESPARSE \"a-sesparse.vmdk\"\n", false},
		{"encrypted", "createType=\"vmfs\"\nencryption.keySafe=\"vmware:key/...\"\nRW 16384 VMFS \"a-flat.vmdk\"\n", false},
		{"two extents", "createType=\"vmfs\"\nRW 8 VMFS \"a\"\nRW 8 VMFS \"b\"\n", false},
	}
	for _, tt := range tests {
		d, err := vddk.ParseDescriptor([]byte(tt.text))
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		_, err = vddk.FlatExtent(d)
		if tt.ok != (err == nil) {
			t.Errorf("%s: flat extent error %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
	for _, bad := range []string{"", "RW x VMFS \"a\"", "createType=\"vmfs\"\nRW 1 VMFS \"a", "createType=vmfs\nXX 1 VMFS \"a\""} {
		if _, err := vddk.ParseDescriptor([]byte(bad)); err == nil {
			t.Errorf("ParseDescriptor(%q) succeeded", bad)
		}
	}
}

func FuzzDescriptor(f *testing.F) {
	f.Add([]byte("createType=\"vmfs\"\nRW 16384 VMFS \"a-flat.vmdk\"\n"))
	f.Add([]byte("createType=\"monolithicFlat\"\nRW 1 FLAT \"x\" 7\nRW 2 ZERO\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := vddk.ParseDescriptor(b)
		if err != nil {
			return
		}
		if e, err := vddk.FlatExtent(d); err == nil && (e.Sectors < 0 || e.File == "") {
			t.Fatalf("accepted extent %+v", e)
		}
	})
}

// The simulator's export lease serves the descriptor, not a
// streamOptimized VMDK, so NFC must say so and release the lease.
func TestNFCAgainstSimulator(t *testing.T) {
	_, c, ref, _ := snapshotDisk(t)
	_, err := (&vddk.NFC{Client: c, SpoolDir: t.TempDir()}).Open(t.Context(), ref)
	if err == nil || !strings.Contains(err.Error(), "not a sparse VMDK") {
		t.Fatalf("NFC open against the simulator: %v, want a not-streamOptimized error", err)
	}
}

func TestLibvixStub(t *testing.T) {
	if libvix.Built() {
		t.Skip("built with VDDK")
	}
	_, err := libvix.New(libvix.Config{}).Open(t.Context(), vddk.DiskRef{})
	if !errors.Is(err, vddk.ErrNotBuilt) {
		t.Errorf("Open without VDDK: %v, want ErrNotBuilt", err)
	}
}
