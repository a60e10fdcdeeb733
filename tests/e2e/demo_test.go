package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/plugins"
)

// cairnd --demo: the embedded vSphere simulator is listed, backed up twice
// (the second an incremental through CBT), and restored to a new VM whose
// disk is byte for byte what the snapshot froze.
func TestDemo(t *testing.T) {
	started := time.Now()
	data := filepath.Join(t.TempDir(), "data")
	d := startDaemon(t, data, "", "--demo", "--demo-vcsim", freeAddr(t), "--demo-churn", "200ms")

	var objs []plugins.Object
	if err := json.Unmarshal([]byte(d.ok("object", "list", "demo", "-o", "json")), &objs); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		names = append(names, o.Name)
		if o.Kind != "vm" || o.Size == 0 || o.Info["path"] == "" || o.Info["power"] != "poweredOn" {
			t.Errorf("object %+v lacks a kind, size, path or power state", o)
		}
	}
	if len(objs) < 3 || !slices.Contains(names, "web") {
		t.Fatalf("objects %v, want at least three VMs including web", names)
	}

	// The same simulator added again through the CLI, as a real vCenter is.
	var srcs []struct {
		Name   string            `json:"name"`
		Config map[string]string `json:"config"`
	}
	if err := json.Unmarshal([]byte(d.ok("source", "list", "-o", "json")), &srcs); err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(srcs, func(s struct {
		Name   string            `json:"name"`
		Config map[string]string `json:"config"`
	}) bool {
		return s.Name == "demo"
	})
	if i < 0 {
		t.Fatalf("sources %+v lack demo", srcs)
	}
	demo := srcs[i].Config
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("demo-password\n"), 0o600)
	d.ok("source", "add", "vsphere", "vc2", "--url", demo["url"], "--user", demo["user"], "--password-file", pw,
		"--thumbprint", demo["thumbprint"])
	if out := d.ok("object", "list", "vc2"); !strings.Contains(out, "web") || !strings.Contains(out, "files") {
		t.Errorf("object list vc2:\n%s", out)
	}
	if out := d.ok("source", "list", "-o", "json"); strings.Contains(out, "demo-password") {
		t.Error("source list shows the password")
	}
	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, []byte("s3cr3t-Wr0ng\n"), 0o600)
	// Adding checks the settings without connecting; using it logs in.
	d.ok("source", "add", "vsphere", "vc3", "--url", demo["url"], "--user", demo["user"],
		"--password-file", bad, "--thumbprint", demo["thumbprint"])
	if _, errs, code := d.cairn("object", "list", "vc3"); code == 0 || !strings.Contains(errs, "log in") {
		t.Errorf("object list with a wrong password: exit %d, %s", code, errs)
	} else if strings.Contains(errs, "s3cr3t") || strings.Contains(d.logText(), "s3cr3t") {
		t.Errorf("the password shows in the error or the log: %s", errs)
	}

	full := d.backup("demo/web")
	if took := time.Since(started); took > time.Minute {
		t.Errorf("first backup done %s after cairnd started, want within a minute", took)
	}
	if full.Consistency != "application-consistent" || len(full.Disks) != 1 || full.Disks[0].ChangeToken == "" {
		t.Fatalf("full backup %+v: want a quiesced snapshot with a changeId", full)
	}
	time.Sleep(time.Second) // the web guest writes its log every 200 ms
	inc := d.backup("demo/web")
	if inc.Base != full.ID || inc.ReadBytes == 0 || inc.ReadBytes >= full.ReadBytes || inc.Disks[0].ChangeToken == full.Disks[0].ChangeToken {
		t.Fatalf("incremental read %d bytes (full %d), base %q: want a CBT delta on %s", inc.ReadBytes, full.ReadBytes, inc.Base, full.ID)
	}

	out := d.ok("restore", inc.ID, "--to", "vsphere:demo", "--vm-name", "web-restored", "--wait", "-o", "json")
	var job map[string]any
	if err := json.Unmarshal([]byte(out), &job); err != nil {
		t.Fatal(err)
	}
	if job["vm"] != "web-restored" || !strings.HasPrefix(fmt.Sprint(job["vm_id"]), "vm-") {
		t.Fatalf("restore result %s", out)
	}
	flats, _ := filepath.Glob(filepath.Join(data, "demo-vcsim", "*", "*", "web-restored", "web-restored_0-flat.vmdk"))
	if len(flats) != 1 {
		t.Fatalf("restored disk files %v", flats)
	}
	disk, err := os.ReadFile(flats[0])
	if err != nil {
		t.Fatal(err)
	}
	if disk[1080] != 0x53 || disk[1081] != 0xef {
		t.Error("the restored disk has no ext4 superblock")
	}
	sum := sha256.Sum256(disk)
	log, err := os.ReadFile(filepath.Join(data, "demo-vcsim", "snapshots.log"))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("vm=web disk=0 change_id=%q sha256=%s", inc.Disks[0].ChangeToken, hex.EncodeToString(sum[:]))
	if !strings.Contains(string(log), want) {
		t.Fatalf("restored disk sha256 %x is not what the snapshot with changeId %q froze; snapshot log:\n%s",
			sum, inc.Disks[0].ChangeToken, log)
	}
}
