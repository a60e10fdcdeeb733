package kvm

// Evidence: backups of qcow2 disks holding a real ext4 filesystem, driven
// through the appliance's own job manager (backup and restore engines, in-memory
// catalog and chunk store), with real qemu-img, qemu-nbd and QEMU.

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairnhq/cairn/appliance/api"
	"github.com/cairnhq/cairn/appliance/jobs"
	"github.com/cairnhq/cairn/appliance/jobs/jobstest"
	"github.com/cairnhq/cairn/appliance/keys"
	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/meta"
	"github.com/cairnhq/cairn/cluster/store"
	"github.com/cairnhq/cairn/plugins"
)

const block = chunk.BlockSize

// reads records what the engine read through the plugin's disks.
type reads struct {
	mu     sync.Mutex
	ranges []plugins.Extent
	before func(n int) // called before each read with the reads so far
}

func (r *reads) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ranges, r.before = nil, nil
}

func (r *reads) total() (n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.ranges {
		n += e.Length
	}
	return n
}

type countedSource struct {
	plugins.Source
	r *reads
}

func (s countedSource) Open(ctx context.Context, object string, opts plugins.OpenOptions) (plugins.Snapshot, error) {
	snap, err := s.Source.Open(ctx, object, opts)
	if err != nil {
		return nil, err
	}
	return countedSnapshot{snap, s.r}, nil
}

type countedSnapshot struct {
	plugins.Snapshot
	r *reads
}

func (s countedSnapshot) Disks() []plugins.Disk {
	var out []plugins.Disk
	for _, d := range s.Snapshot.Disks() {
		out = append(out, countedDisk{d, s.r})
	}
	return out
}

type countedDisk struct {
	plugins.Disk
	r *reads
}

func (d countedDisk) ReadAt(p []byte, off int64) (int, error) {
	d.r.mu.Lock()
	before, n := d.r.before, len(d.r.ranges)
	d.r.mu.Unlock()
	if before != nil {
		before(n)
	}
	got, err := d.Disk.ReadAt(p, off)
	d.r.mu.Lock()
	d.r.ranges = append(d.r.ranges, plugins.Extent{Offset: off, Length: int64(got)})
	d.r.mu.Unlock()
	return got, err
}

// appliance is an in-process appliance with the kvm plugin, counting reads.
type appliance struct {
	m     *jobs.Manager
	reads *reads
	tmp   string // the plugin's folder for sockets and overlays
}

func newAppliance(t *testing.T) *appliance {
	t.Helper()
	dir := t.TempDir()
	catalog := meta.NewMemory()
	master, _, err := keys.Load(filepath.Join(dir, "master.key"), nil, true)
	if err != nil {
		t.Fatal(err)
	}
	a := &appliance{reads: &reads{}, tmp: t.TempDir()}
	k := kind(Tools{TempDir: a.tmp})
	newSrc := k.NewSource
	k.NewSource = func(ctx context.Context, cfg plugins.SourceConfig) (plugins.Source, error) {
		s, err := newSrc(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return countedSource{s, a.reads}, nil
	}
	a.m, err = jobs.New(context.Background(), catalog, keys.NewRing(master, catalog, nil), store.NewMemory(store.Options{}),
		[]plugins.Kind{k}, jobs.Options{Secrets: keys.NewSecrets(master, nil)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.m.Close)
	return a
}

func (a *appliance) addSource(t *testing.T, name string, config map[string]string) {
	t.Helper()
	if _, err := a.m.AddSource(t.Context(), api.AddSourceRequest{Name: name, Kind: "kvm", Config: config}); err != nil {
		t.Fatalf("add source: %v", err)
	}
}

func (a *appliance) wait(t *testing.T, j meta.Job) meta.Job {
	t.Helper()
	return jobstest.Wait(t, a.m, j.ID, time.Minute)
}

// backup runs a backup of source and returns the finished job.
func (a *appliance) backup(t *testing.T, source string) meta.Job {
	t.Helper()
	a.reads.mu.Lock()
	a.reads.ranges = nil
	a.reads.mu.Unlock()
	j, err := a.m.StartBackup(t.Context(), api.BackupRequest{Source: source})
	if err != nil {
		t.Fatalf("start backup: %v", err)
	}
	return a.wait(t, j)
}

func (a *appliance) point(t *testing.T, j meta.Job) meta.RestorePoint {
	t.Helper()
	if j.State != meta.JobSucceeded {
		t.Fatalf("backup job %s: %s", j.State, j.Error)
	}
	rp, err := a.m.RestorePoint(t.Context(), j.RestorePoint)
	if err != nil {
		t.Fatal(err)
	}
	return rp
}

func (a *appliance) points(t *testing.T) int {
	t.Helper()
	rps, err := a.m.RestorePoints(t.Context(), meta.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	return len(rps)
}

// restore restores rp into a new qcow2 image and checks with qemu-img
// compare that it holds the same disk as want.
func (a *appliance) restoreMatches(t *testing.T, rp meta.RestorePoint, want string) {
	t.Helper()
	out := a.restore(t, rp)
	if b, err := exec.Command("qemu-img", "compare", "-U", want, out).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img compare %s (restore point %s) with %s: %v: %s", want, rp.ID, out, err, b)
	}
}

// restore restores rp into a new qcow2 image and returns its path.
func (a *appliance) restore(t *testing.T, rp meta.RestorePoint) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "restored.qcow2")
	j, err := a.m.StartRestore(t.Context(), api.RestoreRequest{RestorePoint: rp.ID, To: "kvm:" + out, Options: map[string]string{"format": "qcow2"}})
	if err != nil {
		t.Fatalf("start restore: %v", err)
	}
	if j = a.wait(t, j); j.State != meta.JobSucceeded {
		t.Fatalf("restore of %s: %s: %s", rp.ID, j.State, j.Error)
	}
	info, err := parseInfo([]byte(run(t, "qemu-img", "info", "--output=json", out)))
	if err != nil || info.Format != "qcow2" || info.VirtualSize != rp.LogicalBytes {
		t.Fatalf("restored image: %+v, %v", info, err)
	}
	return out
}

// ext4Image makes a 64 MiB qcow2 image holding an ext4 filesystem with about
// 12 MiB of files.
func ext4Image(t *testing.T) string {
	t.Helper()
	need(t, "mkfs.ext4", "qemu-img", "qemu-nbd", "qemu-io")
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	for i, size := range []int{5 << 20, 3 << 20, 4<<20 + 12345, 1000} {
		sub := filepath.Join(tree, "d"+string(rune('a'+i)))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, size)
		rand.Read(b)
		if err := os.WriteFile(filepath.Join(sub, "data.bin"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw := filepath.Join(dir, "fs.raw")
	run(t, "truncate", "-s", "64M", raw)
	run(t, "mkfs.ext4", "-q", "-F", "-d", tree, raw)
	img := filepath.Join(dir, "vm.qcow2")
	run(t, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, img)
	os.Remove(raw)
	return img
}

func snapshotCopy(t *testing.T, img string) string {
	t.Helper()
	cp := filepath.Join(t.TempDir(), "copy.qcow2")
	run(t, "cp", "--sparse=always", img, cp)
	return cp
}

func bitmapNames(t *testing.T, img string) []string {
	var names []string
	for _, b := range bitmapsOf(t, img) {
		names = append(names, b.Name)
	}
	return names
}

// blocksOf counts the engine blocks the extents touch.
func blocksOf(ext []plugins.Extent) int64 {
	seen := map[int64]bool{}
	for _, e := range ext {
		for b := e.Offset / block; b <= (e.End()-1)/block; b++ {
			seen[b] = true
		}
	}
	return int64(len(seen))
}

func checkNoLeftovers(t *testing.T, a *appliance, img string) {
	t.Helper()
	left, err := leftovers(a.tmp, img)()
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Fatalf("left behind: %q", left)
	}
}

func TestImageFullIncrementalRestore(t *testing.T) {
	img := ext4Image(t)
	a := newAppliance(t)
	a.addSource(t, "vm", map[string]string{"image": img})

	full := a.point(t, a.backup(t, "vm"))
	fullRead := a.reads.total()
	d := full.Disks[0]
	if d.Method != "allocated" || !strings.HasPrefix(d.ChangeToken, BitmapPrefix) {
		t.Fatalf("full backup disk %+v: want method allocated and a cairn- bitmap token", d)
	}
	if got := bitmapNames(t, img); !slices.Equal(got, []string{d.ChangeToken}) {
		t.Fatalf("image bitmaps after the full backup: %q, want [%s]", got, d.ChangeToken)
	}
	if fullRead < 12<<20 || fullRead >= 64<<20 {
		t.Fatalf("full backup read %d bytes of a 64 MiB disk holding ~12 MiB of files", fullRead)
	}
	v1 := snapshotCopy(t, img)
	checkNoLeftovers(t, a, img)

	// A guest of the stopped VM writes: 1 MiB at 20 MiB and 64 KiB at 50 MiB.
	writes := []plugins.Extent{{Offset: 20 << 20, Length: 1 << 20}, {Offset: 50 << 20, Length: 64 << 10}}
	for _, w := range writes {
		run(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x5a "+itoa(w.Offset)+" "+itoa(w.Length), img)
	}
	v2 := snapshotCopy(t, img)

	incr := a.point(t, a.backup(t, "vm"))
	incrRead := a.reads.total()
	di := incr.Disks[0]
	if di.Method != "dirty-bitmap" || incr.Base != full.ID || di.ChangeToken == d.ChangeToken {
		t.Fatalf("incremental disk %+v (base %s): want method dirty-bitmap on base %s with a new token", di, incr.Base, full.ID)
	}
	// The engine reads whole 4 MiB blocks: exactly the blocks the writes
	// touched, each read once.
	if want := blocksOf(writes) * block; incrRead != want {
		t.Fatalf("incremental read %d bytes; the dirty extents touch %d bytes of blocks", incrRead, want)
	}
	for _, r := range a.reads.ranges {
		if blocksOf([]plugins.Extent{r}) != 1 || !slices.ContainsFunc(writes, func(w plugins.Extent) bool {
			return w.Offset/block == r.Offset/block
		}) {
			t.Fatalf("incremental read %+v outside the dirty blocks", r)
		}
	}
	t.Logf("bytes read: full %d, incremental %d (writes: %d bytes)", fullRead, incrRead, writes[0].Length+writes[1].Length)
	// Rotation: the base's bitmap stays until a newer point is the base.
	if got := bitmapNames(t, img); !slices.Equal(sorted(got), sorted([]string{d.ChangeToken, di.ChangeToken})) {
		t.Fatalf("bitmaps after the incremental: %q", got)
	}
	checkNoLeftovers(t, a, img)

	a.restoreMatches(t, full, v1)
	a.restoreMatches(t, incr, v2)

	// A third backup with nothing written reads nothing and drops the
	// first bitmap.
	third := a.point(t, a.backup(t, "vm"))
	if n := a.reads.total(); n != 0 || third.Disks[0].Method != "dirty-bitmap" {
		t.Fatalf("backup without writes read %d bytes, method %s", n, third.Disks[0].Method)
	}
	if got := bitmapNames(t, img); !slices.Equal(sorted(got), sorted([]string{di.ChangeToken, third.Disks[0].ChangeToken})) {
		t.Fatalf("bitmaps after the third backup: %q", got)
	}
	a.restoreMatches(t, third, v2)
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestImageBitmapMissingOrInconsistent(t *testing.T) {
	img := ext4Image(t)
	a := newAppliance(t)
	a.addSource(t, "vm", map[string]string{"image": img})
	full := a.point(t, a.backup(t, "vm"))
	fullRead := a.reads.total()

	// Missing: someone removed the bitmap.
	run(t, "qemu-img", "bitmap", "--remove", img, full.Disks[0].ChangeToken)
	run(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 30M 64k", img)
	j := a.backup(t, "vm")
	rp := a.point(t, j)
	if rp.Disks[0].Method != "allocated" || a.reads.total() < fullRead ||
		!slices.ContainsFunc(j.Messages, func(m string) bool { return strings.Contains(m, "missing: full read") }) {
		t.Fatalf("backup after the bitmap vanished: method %s, read %d, messages %q; want a full read that says so",
			rp.Disks[0].Method, a.reads.total(), j.Messages)
	}
	a.restoreMatches(t, rp, snapshotCopy(t, img))

	// Inconsistent: a QEMU process died with the image open, leaving the
	// bitmap "in-use".
	_ = exec.Command("qemu-io", "-f", "qcow2", "-c", "write -P 0x6b 40M 64k", "-c", "sigraise 9", img).Run()
	flags := bitmapsOf(t, img)
	if len(flags) != 1 || flags[0].usable() {
		t.Fatalf("after a killed writer the bitmap is %+v; want it in-use", flags)
	}
	j = a.backup(t, "vm")
	rp = a.point(t, j)
	if rp.Disks[0].Method != "allocated" ||
		!slices.ContainsFunc(j.Messages, func(m string) bool { return strings.Contains(m, "inconsistent") }) {
		t.Fatalf("backup after an in-use bitmap: method %s, messages %q", rp.Disks[0].Method, j.Messages)
	}
	a.restoreMatches(t, rp, snapshotCopy(t, img))
	if got := bitmapNames(t, img); !slices.Equal(got, []string{rp.Disks[0].ChangeToken}) {
		t.Fatalf("bitmaps after the fallback: %q; the inconsistent one must be gone", got)
	}
	checkNoLeftovers(t, a, img)
}

func TestImageNBDServerDiesMidRead(t *testing.T) {
	img := ext4Image(t)
	a := newAppliance(t)
	a.addSource(t, "vm", map[string]string{"image": img})
	full := a.point(t, a.backup(t, "vm"))
	run(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 16M", img)

	a.reads.mu.Lock()
	a.reads.ranges = nil
	var once sync.Once
	a.reads.before = func(n int) {
		if n < 1 {
			return
		}
		once.Do(func() {
			for _, p := range processesUsing(img) {
				var pid int
				if _, err := fmt.Sscanf(p, "pid %d:", &pid); err == nil {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		})
	}
	a.reads.mu.Unlock()
	j, err := a.m.StartBackup(t.Context(), api.BackupRequest{Source: "vm"})
	if err != nil {
		t.Fatal(err)
	}
	j = a.wait(t, j)
	a.reads.reset()
	if j.State != meta.JobFailed || !strings.Contains(j.Error, "read") {
		t.Fatalf("backup whose NBD server died: %s, error %q; want a failed job naming the read", j.State, j.Error)
	}
	t.Logf("job error: %s; messages: %q", j.Error, j.Messages)
	if n := a.points(t); n != 1 {
		t.Fatalf("%d restore points; the failed backup must add none", n)
	}
	if got := bitmapNames(t, img); !slices.Equal(got, []string{full.Disks[0].ChangeToken}) {
		t.Fatalf("bitmaps after the failed backup: %q, want only the base's", got)
	}
	checkNoLeftovers(t, a, img)
	// The next backup still reads the changes from the base's bitmap.
	rp := a.point(t, a.backup(t, "vm"))
	if rp.Disks[0].Method != "dirty-bitmap" || a.reads.total() != 4*block {
		t.Fatalf("backup after the failure: method %s, read %d", rp.Disks[0].Method, a.reads.total())
	}
	a.restoreMatches(t, rp, snapshotCopy(t, img))
}

func TestImageBitmapCreationFails(t *testing.T) {
	need(t, "qemu-img", "qemu-nbd")
	// qcow2 version 2 (compat=0.10) cannot store bitmaps.
	img := filepath.Join(t.TempDir(), "old.qcow2")
	run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "compat=0.10", img, "16M")
	a := newAppliance(t)
	a.addSource(t, "vm", map[string]string{"image": img})
	j := a.backup(t, "vm")
	if j.State != meta.JobFailed || !strings.Contains(j.Error, "create dirty bitmap") {
		t.Fatalf("backup of a qcow2 v2 image: %s, error %q; want a failed job about the bitmap", j.State, j.Error)
	}
	t.Logf("job error: %s", j.Error)
	if n := a.points(t); n != 0 {
		t.Fatalf("%d restore points after a failed backup", n)
	}
	if got := bitmapNames(t, img); len(got) != 0 {
		t.Fatalf("bitmaps left: %q", got)
	}
	checkNoLeftovers(t, a, img)
}
