package e2e

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/snapshots"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"

	"github.com/cairnhq/cairn/plugins/openstack/cindertest"
)

// TestOpenStackThroughCLI adds a real Cinder (noauth) as a source with the
// CLI, lists its volumes, backs one up that holds an ext4 filesystem, and
// restores it to a new volume whose bytes equal the source's; -o json gives
// the new volume's ID at the top level.
func TestOpenStackThroughCLI(t *testing.T) {
	dep := cindertest.Get(t)
	sc, err := dep.Client(dep.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	d := startDaemon(t, filepath.Join(dir, "data"), "")

	// A guest volume holding a filesystem, written into its backing file.
	img := filepath.Join(dir, "fs.img")
	fsImage(t, img, 1<<30, 24<<20)
	vol := createVolume(t, sc, "e2e-data")
	if out, err := exec.Command("dd", "if="+img, "of="+dep.VolumeFile(vol.ID), "bs=1M", "conv=sparse,notrunc,fsync", "status=none").CombinedOutput(); err != nil {
		t.Fatalf("dd: %v %s", err, out)
	}

	d.ok("source", "add", "openstack", "cloud", "--noauth", "--volume-endpoint", dep.Endpoint,
		"--project", cindertest.Project, "--host", "e2e-appliance")
	var objs []struct {
		Name, Kind string
		Size       int64
		Info       map[string]string
	}
	if err := json.Unmarshal([]byte(d.ok("object", "list", "cloud", "-o", "json")), &objs); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, o := range objs {
		if o.Name == "e2e-data" {
			found = o.Kind == "volume" && o.Size == 1<<30 && o.Info["id"] == vol.ID && o.Info["project"] == cindertest.Project
		}
	}
	if !found {
		t.Fatalf("object list has no volume e2e-data of 1 GiB: %+v", objs)
	}

	rp := d.backup("cloud/e2e-data")
	if rp.Object != "e2e-data" || rp.LogicalBytes != 1<<30 || rp.Disks[0].Method != "allocated" || rp.ReadBytes >= 1<<29 {
		t.Fatalf("backup: %+v", rp)
	}
	out := d.ok("restore", rp.ID, "--to", "openstack:cloud", "--volume-name", "e2e-restored", "--wait", "-o", "json")
	var job struct {
		State    string `json:"state"`
		VolumeID string `json:"volume_id"`
	}
	if err := json.Unmarshal([]byte(out), &job); err != nil || job.State != "succeeded" || job.VolumeID == "" {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	t.Cleanup(func() { deleteVolume(t, sc, job.VolumeID) })
	if out, err := exec.Command("cmp", dep.VolumeFile(vol.ID), dep.VolumeFile(job.VolumeID)).CombinedOutput(); err != nil {
		t.Fatalf("the restored volume differs from the source: %v %s", err, out)
	}
	if out, err := exec.Command("e2fsck", "-fn", dep.VolumeFile(job.VolumeID)).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck of the restored volume: %v %s", err, out)
	}
	_, errs, code := d.cairn("restore", rp.ID, "--to", "openstack:cloud", "--volume-name", "e2e-restored", "--wait")
	if code == 0 || !strings.Contains(errs, "needs overwrite") {
		t.Errorf("a restore onto an existing volume name without --overwrite: exit %d, %s", code, errs)
	}
}

func createVolume(t *testing.T, sc *gophercloud.ServiceClient, name string) *volumes.Volume {
	t.Helper()
	v, err := volumes.Create(context.Background(), sc, volumes.CreateOpts{Size: 1, Name: name}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteVolume(t, sc, v.ID) })
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		if v, err = volumes.Get(context.Background(), sc, v.ID).Extract(); err != nil {
			t.Fatal(err)
		}
		if v.Status == "available" {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("volume %s is %s after a minute", v.ID, v.Status)
		}
	}
}

// deleteVolume deletes a volume and its snapshots (Cairn keeps one).
func deleteVolume(t *testing.T, sc *gophercloud.ServiceClient, id string) {
	ctx := context.Background()
	page, err := snapshots.ListDetail(sc, snapshots.ListOpts{VolumeID: id}).AllPages(ctx)
	if err == nil {
		snaps, _ := snapshots.ExtractSnapshots(page)
		for _, s := range snaps {
			_ = snapshots.Delete(ctx, sc, s.ID).ExtractErr()
			for range 100 {
				if _, err := snapshots.Get(ctx, sc, s.ID).Extract(); err != nil {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	if err := volumes.Delete(ctx, sc, id, volumes.DeleteOpts{}).ExtractErr(); err != nil && !gophercloud.ResponseCodeIs(err, 404) {
		t.Errorf("delete volume %s: %v", id, err)
	}
}
