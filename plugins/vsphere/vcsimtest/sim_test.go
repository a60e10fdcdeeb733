package vcsimtest_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/cairnhq/cairn/plugins/vsphere/vcsimtest"
)

const mib = 1 << 20

func start(t *testing.T, vms ...vcsimtest.VM) *vcsimtest.Sim {
	t.Helper()
	s, err := vcsimtest.Start(t.Context(), vcsimtest.Options{Dir: t.TempDir(), VMs: vms})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

type fixture struct {
	c  *object.VirtualMachine
	vc *soap.Client
}

func open(t *testing.T, s *vcsimtest.Sim, name string) fixture {
	ctx := t.Context()
	c, err := s.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f := find.NewFinder(c.Client)
	dc, err := f.Datacenter(ctx, vcsimtest.Datacenter)
	if err != nil {
		t.Fatal(err)
	}
	f.SetDatacenter(dc)
	vm, err := f.VirtualMachine(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	task, err := vm.Reconfigure(ctx, types.VirtualMachineConfigSpec{ChangeTrackingEnabled: types.NewBool(true)})
	if err != nil || task.Wait(ctx) != nil {
		t.Fatalf("enable CBT: %v", err)
	}
	return fixture{c: vm, vc: c.Client.Client}
}

// snapshot creates a snapshot and returns it with its disk's changeId.
func (fx fixture) snapshot(t *testing.T, name string) (types.ManagedObjectReference, *types.VirtualDisk) {
	ctx := t.Context()
	task, err := fx.c.CreateSnapshot(ctx, name, "", false, false)
	if err != nil {
		t.Fatal(err)
	}
	info, err := task.WaitForResult(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ref := info.Result.(types.ManagedObjectReference)
	var snap mo.VirtualMachineSnapshot
	if err := fx.c.Properties(ctx, ref, []string{"config.hardware"}, &snap); err != nil {
		t.Fatal(err)
	}
	for _, d := range snap.Config.Hardware.Device {
		if vd, ok := d.(*types.VirtualDisk); ok {
			return ref, vd
		}
	}
	t.Fatal("snapshot has no disk")
	return ref, nil
}

func (fx fixture) query(ctx context.Context, snap types.ManagedObjectReference, key int32, off int64, id string) (types.DiskChangeInfo, error) {
	res, err := methods.QueryChangedDiskAreas(ctx, fx.c.Client(), &types.QueryChangedDiskAreas{
		This: fx.c.Reference(), Snapshot: &snap, DeviceKey: key, StartOffset: off, ChangeId: id,
	})
	if err != nil {
		return types.DiskChangeInfo{}, err
	}
	return res.Returnval, nil
}

func areas(info types.DiskChangeInfo) []types.DiskChangeExtent { return info.ChangedArea }

func TestChangeTracking(t *testing.T) {
	s := start(t, vcsimtest.VM{Name: "vm1", Disks: []vcsimtest.Disk{{Capacity: 16 * mib}}})
	ctx := t.Context()
	if err := s.Write("vm1", 0, 100, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	fx := open(t, s, "vm1")
	snap1, d1 := fx.snapshot(t, "one")
	id1 := d1.Backing.(*types.VirtualDiskFlatVer2BackingInfo).ChangeId
	if !strings.HasPrefix(id1, "52 ") || !strings.HasSuffix(id1, "/1") {
		t.Fatalf("changeId %q, want VMware's form ending in /1", id1)
	}
	all, err := fx.query(ctx, snap1, d1.Key, 0, "*")
	if err != nil {
		t.Fatal(err)
	}
	if got := areas(all); len(got) != 1 || got[0].Start != 0 || got[0].Length != 64<<10 || all.Length != 16*mib {
		t.Fatalf("allocated areas %+v (covering %d), want one 64 KiB block at 0 covering the disk", got, all.Length)
	}
	// Point in time: a write while the snapshot exists is not in the flat file.
	if err := s.Write("vm1", 0, 5*mib+7, []byte("later")); err != nil {
		t.Fatal(err)
	}
	if err := s.Write("vm1", 0, 9*mib, bytes.Repeat([]byte{1}, 70<<10)); err != nil {
		t.Fatal(err)
	}
	after, _ := fx.query(ctx, snap1, d1.Key, 0, "*")
	if len(areas(after)) != 1 {
		t.Errorf("allocated areas of the snapshot changed after a guest write: %+v", areas(after))
	}
	task, _ := fx.c.RemoveSnapshot(ctx, "one", false, nil)
	if err := task.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 5)
	if _, err := s.ReadAt("vm1", 0, got, 5*mib+7); err != nil || string(got) != "later" {
		t.Fatalf("after removing the snapshot the disk reads %q, %v", got, err)
	}
	snap2, d2 := fx.snapshot(t, "two")
	ch, err := fx.query(ctx, snap2, d2.Key, 0, id1)
	if err != nil {
		t.Fatal(err)
	}
	want := []types.DiskChangeExtent{{Start: 5 * mib, Length: 64 << 10}, {Start: 9 * mib, Length: 128 << 10}}
	if g := areas(ch); len(g) != 2 || g[0] != want[0] || g[1] != want[1] {
		t.Errorf("changed areas %+v, want %+v", g, want)
	}

	s.SetPageLimit(6 * mib)
	page, err := fx.query(ctx, snap2, d2.Key, 0, id1)
	if err != nil || page.Length != 6*mib || len(areas(page)) != 1 {
		t.Errorf("paged reply %+v, %v; want 6 MiB covered with one area", page, err)
	}
	page, err = fx.query(ctx, snap2, d2.Key, 6*mib, id1)
	if err != nil || page.StartOffset != 6*mib || len(areas(page)) != 1 || areas(page)[0].Start != 9*mib {
		t.Errorf("second page %+v, %v", page, err)
	}
	s.SetPageLimit(0)

	if err := s.ResetChangeTracking("vm1"); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.query(ctx, snap2, d2.Key, 0, id1); err == nil || !strings.Contains(err.Error(), "invalid change ID") {
		t.Errorf("query with a changeId from before the reset: %v, want an invalid change ID fault", err)
	}
	s.FailQueryAfter(1)
	if _, err := fx.query(ctx, snap2, d2.Key, 0, "*"); err != nil {
		t.Errorf("first query after FailQueryAfter(1): %v", err)
	}
	if _, err := fx.query(ctx, snap2, d2.Key, 0, "*"); err == nil {
		t.Error("second query after FailQueryAfter(1) succeeded")
	}
}

func TestFolderNeedsSession(t *testing.T) {
	s := start(t, vcsimtest.VM{Name: "vm1", Disks: []vcsimtest.Disk{{Capacity: mib}}})
	fx := open(t, s, "vm1")
	u := *s.URL
	u.Path = "/folder/vm1/vm1_0-flat.vmdk"
	u.RawQuery = "dcPath=DC0&dsName=LocalDS_0"
	get := func(cookie bool) int {
		req, _ := http.NewRequest("GET", u.String(), nil)
		if cookie {
			for _, c := range fx.vc.Jar.Cookies(s.URL) {
				req.AddCookie(c)
			}
		}
		hc := http.Client{Transport: fx.vc.Client.Transport} // no cookie jar
		res, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if code := get(false); code != http.StatusUnauthorized {
		t.Errorf("GET without a cookie: %d, want 401", code)
	}
	if code := get(true); code != http.StatusOK {
		t.Errorf("GET with the session cookie: %d, want 200", code)
	}
	s.ExpireSessions()
	if code := get(true); code != http.StatusUnauthorized {
		t.Errorf("GET after the session expired: %d, want 401", code)
	}
	_, err := fx.c.PowerState(t.Context())
	if err == nil || !strings.Contains(err.Error(), "NotAuthenticated") && !soap.IsSoapFault(err) {
		t.Errorf("call after expiry: %v, want NotAuthenticated", err)
	}
}

func TestExt4Image(t *testing.T) {
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "hello.txt"), []byte("hello from ext4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "disk.img")
	err := vcsimtest.Ext4Image(t.Context(), img, 32*mib, src)
	if errors.Is(err, vcsimtest.ErrNoMkfs) && os.Getenv("CI") == "" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	s := start(t, vcsimtest.VM{Name: "fs", Disks: []vcsimtest.Disk{{Capacity: 64 * mib, Image: img}}})
	sb := make([]byte, 2)
	if _, err := s.ReadAt("fs", 0, sb, 1024+0x38); err != nil || sb[0] != 0x53 || sb[1] != 0xef {
		t.Errorf("ext4 superblock magic %x, %v; want 53ef", sb, err)
	}
}
