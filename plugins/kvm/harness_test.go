package kvm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/plugins/plugintest"
)

// need fails in CI, and skips elsewhere, when a tool is missing.
func need(t testing.TB, tools ...string) {
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

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// qcow2With makes a qcow2 image holding content (zeros left unallocated).
func qcow2With(t testing.TB, dir string, content []byte) string {
	t.Helper()
	raw := filepath.Join(dir, "content.raw")
	if err := os.WriteFile(raw, content, 0o600); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "vm.qcow2")
	run(t, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, img)
	os.Remove(raw)
	return img
}

// patternFile writes p to a file for qemu-io's write -s, which fills the
// write buffer with the file's bytes.
func patternFile(t testing.TB, p []byte) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "pattern")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(p); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// qemuIOWrite writes p at off into an offline image, as a guest of a
// stopped VM would have.
func qemuIOWrite(t testing.TB, img string, off int64, p []byte) error {
	out, err := exec.Command("qemu-io", "-f", "qcow2", "-c",
		fmt.Sprintf("write -s %s %d %d", patternFile(t, p), off, len(p)), img).CombinedOutput()
	if err != nil || strings.Contains(string(out), "failed") {
		return fmt.Errorf("qemu-io write: %v: %s", err, out)
	}
	return nil
}

// rawOf reads an image's content through qemu-img convert.
func rawOf(t testing.TB, img string) ([]byte, error) {
	if _, err := os.Stat(img); err != nil {
		return nil, err
	}
	raw := filepath.Join(t.TempDir(), "read.raw")
	if out, err := exec.Command("qemu-img", "convert", "-O", "raw", img, raw).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("qemu-img convert: %v: %s", err, out)
	}
	defer os.Remove(raw)
	return os.ReadFile(raw)
}

// processesUsing lists processes (other than this one) whose command line
// mentions path.
func processesUsing(path string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		// A zombie's command line is empty; a live one mentioning path counts.
		if cmd := string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})); strings.Contains(cmd, path) {
			out = append(out, fmt.Sprintf("pid %d: %s", pid, cmd))
		}
	}
	return out
}

// leftovers lists private folders left in tmp and processes using path.
func leftovers(tmp, path string) func() ([]string, error) {
	return func() ([]string, error) {
		var left []string
		ents, err := os.ReadDir(tmp)
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			left = append(left, filepath.Join(tmp, e.Name()))
		}
		return append(left, processesUsing(path)...), nil
	}
}

// bitmapsOf lists the bitmaps stored in an offline image.
func bitmapsOf(t testing.TB, img string) []bitmap {
	t.Helper()
	info, err := parseInfo([]byte(run(t, "qemu-img", "info", "-U", "--output=json", img)))
	if err != nil {
		t.Fatal(err)
	}
	return info.FormatSpecific.Data.Bitmaps
}

// vmProc is a paused QEMU (no guest code runs) with the disk attached to a
// virtio-blk device, so writes through the device's BlockBackend take the
// path a guest's writes take.
type vmProc struct {
	qmp string
	cmd *exec.Cmd
}

const vmDevice = "/machine/peripheral/vd0/virtio-backend"

func startVM(t testing.TB, img string) *vmProc {
	t.Helper()
	need(t, "qemu-system-x86_64")
	sock := filepath.Join(t.TempDir(), "qmp.sock")
	cmd := exec.Command("qemu-system-x86_64", "-M", "q35", "-S", "-nodefaults", "-display", "none", "-accel", "tcg",
		"-qmp", "unix:"+sock+",server=on,wait=off",
		"-blockdev", "driver=qcow2,node-name=drive0,file.driver=file,file.filename="+img,
		"-device", "virtio-blk-pci,drive=drive0,id=vd0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	// The socket file exists a moment before QEMU listens on it: wait until
	// a QMP session works.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if q, err := dialQMP(context.Background(), sock); err == nil {
			q.close()
			break
		}
		select {
		case <-exited:
			t.Fatalf("qemu-system-x86_64 exited: %s", stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("QEMU did not open its QMP socket in 20 s")
		}
	}
	return &vmProc{qmp: sock, cmd: cmd}
}

// hmp runs a human monitor command and fails on any output (HMP reports
// errors as text).
func (v *vmProc) hmp(t testing.TB, line string) error {
	q, err := dialQMP(context.Background(), v.qmp)
	if err != nil {
		return err
	}
	defer q.close()
	var out string
	if err := q.execute(context.Background(), "human-monitor-command", map[string]any{"command-line": line}, &out); err != nil {
		return err
	}
	if strings.TrimSpace(out) != "" {
		return errors.New(strings.TrimSpace(out))
	}
	return nil
}

// write writes p at off through the guest's virtio-blk device.
func (v *vmProc) write(t testing.TB, off int64, p []byte) error {
	return v.hmp(t, fmt.Sprintf(`qemu-io -d %s "write -s %s %d %d"`, vmDevice, patternFile(t, p), off, len(p)))
}

// vmLeftovers lists what a snapshot may leave in QEMU: block jobs, exports,
// fleecing nodes and temporary bitmaps.
func (v *vmProc) leftovers(tmp string) func() ([]string, error) {
	return func() ([]string, error) {
		left, err := leftovers(tmp, "/nonexistent-cairn-path")()
		if err != nil {
			return nil, err
		}
		q, err := dialQMP(context.Background(), v.qmp)
		if err != nil {
			return nil, err
		}
		defer q.close()
		for _, query := range []string{"query-block-jobs", "query-block-exports"} {
			var list []map[string]any
			if err := q.execute(context.Background(), query, nil, &list); err != nil {
				return nil, err
			}
			for _, e := range list {
				left = append(left, fmt.Sprintf("%s: %v", query, e))
			}
		}
		var nodes []blockNode
		if err := q.execute(context.Background(), "query-named-block-nodes", map[string]any{"flat": true}, &nodes); err != nil {
			return nil, err
		}
		for _, n := range nodes {
			if strings.HasPrefix(n.NodeName, "cairn") {
				left = append(left, "node "+n.NodeName)
			}
			for _, b := range n.DirtyBitmaps {
				if strings.HasPrefix(b.Name, "cairn.") {
					left = append(left, "bitmap "+b.Name)
				}
			}
		}
		return left, nil
	}
}

// vmBitmaps lists the drive's bitmaps as QEMU sees them.
func (v *vmProc) bitmaps(t testing.TB) []string {
	t.Helper()
	q, err := dialQMP(context.Background(), v.qmp)
	if err != nil {
		t.Fatal(err)
	}
	defer q.close()
	src := NewVM(v.qmp, "drive0", Tools{})
	n, err := src.node(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range n.DirtyBitmaps {
		if b.Name != "" {
			names = append(names, b.Name)
		}
	}
	return names
}

func imageHarness(t *testing.T, content []byte) plugintest.SourceFixture {
	need(t, "qemu-img", "qemu-nbd", "qemu-io")
	img := qcow2With(t, t.TempDir(), content)
	tmp := t.TempDir()
	return plugintest.SourceFixture{
		Source:    NewImage(img, Tools{TempDir: tmp}),
		Object:    filepath.Base(img),
		Write:     func(off int64, p []byte) error { return qemuIOWrite(t, img, off, p) },
		Leftovers: leftovers(tmp, img),
	}
}

func vmHarness(t *testing.T, content []byte) plugintest.SourceFixture {
	need(t, "qemu-img", "qemu-system-x86_64")
	img := qcow2With(t, t.TempDir(), content)
	vm := startVM(t, img)
	tmp := t.TempDir()
	return plugintest.SourceFixture{
		Source:    NewVM(vm.qmp, "drive0", Tools{TempDir: tmp}),
		Object:    "drive0",
		Write:     func(off int64, p []byte) error { return vm.write(t, off, p) },
		Leftovers: vm.leftovers(tmp),
	}
}

func targetHarness(format string, capacity int64) func(t *testing.T, existing, overwrite bool) plugintest.TargetFixture {
	return func(t *testing.T, existing, overwrite bool) plugintest.TargetFixture {
		need(t, "qemu-img", "qemu-nbd", "qemu-io")
		dir, tmp := t.TempDir(), t.TempDir()
		path := filepath.Join(dir, "restored."+format)
		if existing {
			run(t, "qemu-img", "create", "-q", "-f", format, path, strconv.FormatInt(capacity, 10))
			run(t, "qemu-io", "-f", format, "-c", "write -P 0x42 0 1M", path)
		}
		tg, err := NewTarget(path, format, overwrite, Tools{TempDir: tmp})
		if err != nil {
			t.Fatal(err)
		}
		return plugintest.TargetFixture{
			Target: tg,
			Read: func() ([]byte, error) {
				if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
					return nil, err
				}
				return rawOf(t, path)
			},
			Leftovers: func() ([]string, error) {
				left, err := leftovers(tmp, path)()
				if _, serr := os.Stat(path + PartialSuffix); serr == nil {
					left = append(left, path+PartialSuffix)
				}
				return left, err
			},
		}
	}
}
