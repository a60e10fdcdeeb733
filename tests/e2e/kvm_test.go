package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// needTools fails in CI, and skips elsewhere, when a tool is missing.
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is missing; tests/setup installs it", tool)
			}
			t.Skipf("%s is missing (tests/setup installs it)", tool)
		}
	}
}

func runTool(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// TestKVMImage backs up an offline qcow2 holding ext4 through cairnd and the
// CLI: a full backup, guest writes, an incremental that reads only the
// blocks the dirty bitmap marks, and restores that qemu-img compare finds
// identical to the image at each point.
func TestKVMImage(t *testing.T) {
	needTools(t, "qemu-img", "qemu-nbd", "qemu-io", "mkfs.ext4")
	dir := t.TempDir()
	d := startDaemon(t, filepath.Join(dir, "data"), "")
	raw := filepath.Join(dir, "fs.raw")
	fsImage(t, raw, 256<<20, 24<<20)
	img := filepath.Join(dir, "vm.qcow2")
	runTool(t, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, img)
	os.Remove(raw)

	d.ok("source", "add", "kvm", "vm", "--image", img)
	rp1 := d.backup("vm")
	if rp1.Object != "vm.qcow2" || len(rp1.Disks) != 1 || rp1.Disks[0].Method != "allocated" ||
		!strings.HasPrefix(rp1.Disks[0].ChangeToken, "cairn-") {
		t.Fatalf("full backup: %+v", rp1)
	}
	if rp1.ReadBytes >= 128<<20 {
		t.Fatalf("full backup of a 256 MiB image with 24 MiB of files read %d bytes", rp1.ReadBytes)
	}
	v1 := filepath.Join(dir, "v1.qcow2")
	runTool(t, "cp", "--sparse=always", img, v1)

	// Two writes in two 4 MiB blocks.
	runTool(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 100M 1M", "-c", "write -P 0xa5 201M 64k", img)
	rp2 := d.backup("vm")
	if rp2.Base != rp1.ID || rp2.Disks[0].Method != "dirty-bitmap" || rp2.ReadBytes != 2*block {
		t.Fatalf("incremental: base %s, method %s, read %d bytes; want base %s, dirty-bitmap, %d bytes",
			rp2.Base, rp2.Disks[0].Method, rp2.ReadBytes, rp1.ID, 2*block)
	}
	t.Logf("bytes read: full %d, incremental %d", rp1.ReadBytes, rp2.ReadBytes)

	out1 := filepath.Join(dir, "r1.qcow2")
	d.ok("restore", rp1.ID, "--to", "kvm:"+out1, "--wait")
	runTool(t, "qemu-img", "compare", v1, out1)
	out2 := filepath.Join(dir, "r2.raw")
	d.ok("restore", rp2.ID, "--to", "kvm:"+out2, "--format", "raw", "--wait")
	runTool(t, "qemu-img", "compare", "-f", "qcow2", "-F", "raw", img, out2)
	if _, _, code := d.cairn("restore", rp2.ID, "--to", "kvm:"+out2, "--wait"); code != 4 {
		t.Fatalf("restore over an existing image without --overwrite exited %d, want 4", code)
	}
}

// hmp sends one human monitor command over a QMP socket and returns its
// output (HMP reports errors as text).
func hmp(t *testing.T, sock, line string) string {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	dec := json.NewDecoder(c)
	var greeting map[string]any
	if err := dec.Decode(&greeting); err != nil {
		t.Fatal(err)
	}
	enc := json.NewEncoder(c)
	_ = enc.Encode(map[string]any{"execute": "qmp_capabilities", "id": 1})
	_ = enc.Encode(map[string]any{"execute": "human-monitor-command", "id": 2,
		"arguments": map[string]any{"command-line": line}})
	for {
		var m struct {
			ID     int             `json:"id"`
			Return json.RawMessage `json:"return"`
			Error  json.RawMessage `json:"error"`
		}
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		if m.Error != nil {
			t.Fatalf("QMP error: %s", m.Error)
		}
		if m.ID == 2 {
			var out string
			_ = json.Unmarshal(m.Return, &out)
			return out
		}
	}
}

// TestKVMRunningVM backs up a drive of a running (paused) QEMU through its
// QMP socket, with guest writes through its virtio-blk device in between.
func TestKVMRunningVM(t *testing.T) {
	needTools(t, "qemu-img", "qemu-nbd", "qemu-system-x86_64")
	dir := t.TempDir()
	d := startDaemon(t, filepath.Join(dir, "data"), "")
	img := filepath.Join(dir, "vm.qcow2")
	runTool(t, "qemu-img", "create", "-q", "-f", "qcow2", img, "64M")
	runTool(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 5M", "-c", "write -P 0x22 40M 1M", img)
	v1 := filepath.Join(dir, "v1.qcow2")
	runTool(t, "cp", "--sparse=always", img, v1)

	sock := filepath.Join(dir, "qmp.sock")
	qemu := exec.Command("qemu-system-x86_64", "-M", "q35", "-S", "-nodefaults", "-display", "none", "-accel", "tcg",
		"-qmp", "unix:"+sock+",server=on,wait=off",
		"-blockdev", "driver=qcow2,node-name=drive0,file.driver=file,file.filename="+img,
		"-device", "virtio-blk-pci,drive=drive0,id=vd0")
	if err := qemu.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = qemu.Process.Signal(os.Interrupt)
			_ = qemu.Wait()
		}
	}
	t.Cleanup(stop)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		// The socket file exists a moment before QEMU listens on it.
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("QEMU did not open its QMP socket")
		}
	}

	d.ok("source", "add", "kvm", "live", "--qmp", sock, "--drive", "drive0")
	rp1 := d.backup("live")
	if rp1.Consistency != "crash-consistent" || rp1.Disks[0].Method != "allocated" || rp1.ReadBytes != 3*block {
		t.Fatalf("full backup of the running VM: %+v", rp1)
	}
	if out := hmp(t, sock, `qemu-io -d /machine/peripheral/vd0/virtio-backend "write -P 0x5a 20M 64k"`); out != "" {
		t.Fatalf("guest write: %s", out)
	}
	rp2 := d.backup("live")
	if rp2.Base != rp1.ID || rp2.Disks[0].Method != "dirty-bitmap" || rp2.ReadBytes != block {
		t.Fatalf("incremental of the running VM: base %s, method %s, read %d", rp2.Base, rp2.Disks[0].Method, rp2.ReadBytes)
	}
	stop()
	for i, c := range []struct{ id, want string }{{rp1.ID, v1}, {rp2.ID, img}} {
		out := filepath.Join(dir, fmt.Sprintf("r%d.qcow2", i))
		d.ok("restore", c.id, "--to", "kvm:"+out, "--wait")
		runTool(t, "qemu-img", "compare", c.want, out)
	}
}
