package lvm_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cairnhq/cairn/plugins/lvm"
)

// pool is a stand-in for one volume group with one thin pool, answering the
// commands the plugin runs the way LVM and dm-thin would: it keeps the real
// state (which thin volumes exist, their thin IDs, which pool data block each
// of their blocks maps to, with copy-on-write sharing between a volume and
// its snapshots) and real bytes (one file per volume, the "device"). Its
// metadata is real: reserve_metadata_snap writes the state as thin_restore
// XML, runs the real thin_restore into the pool's _tmeta file and marks a
// held metadata root in its superblock, so the plugin's thin_delta command
// runs unchanged on the real tool.
type pool struct {
	t         testing.TB
	vg, name  string
	blockSize int64 // bytes
	devDir    string
	mapperDir string

	mu       sync.Mutex
	vols     map[string]*thinVol
	nextID   int64
	refs     map[int64]int // pool data block → thin volumes mapping it
	nextData int64
	held     bool
	calls    []string
	fail     map[string]error // command line prefix → error to answer with
	after    map[string]error // command line prefix → error after doing the work
	opens    map[string]int   // device path → open handles
	readFail func(path string, off int64) error

	read atomic.Int64 // bytes read from devices
}

type thinVol struct {
	name, origin string
	id, size     int64
	mapping      map[int64]int64 // volume block → pool data block
	active, skip bool
}

const (
	testVG    = "vg0"
	testPool  = "pool-1" // a hyphen, to check device-mapper name escaping
	testLV    = "data"
	blockSize = 64 << 10
)

func newPool(t testing.TB) *pool {
	dir := t.TempDir()
	p := &pool{t: t, vg: testVG, name: testPool, blockSize: blockSize,
		devDir: filepath.Join(dir, "dev"), mapperDir: filepath.Join(dir, "dev", "mapper"),
		vols: map[string]*thinVol{}, nextID: 1, refs: map[int64]int{},
		fail: map[string]error{}, after: map[string]error{}, opens: map[string]int{}}
	for _, d := range []string{filepath.Join(p.devDir, p.vg), p.mapperDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// cli is the plugin's real command layer, running commands on this pool.
func (p *pool) cli() *lvm.CLI {
	return &lvm.CLI{Run: p.run, DevDir: p.devDir, MapperDir: p.mapperDir}
}

func (p *pool) source(t testing.TB, cfg lvm.Config) *lvm.Source {
	if cfg.VG == "" {
		cfg.VG = p.vg
	}
	if cfg.Source == "" {
		cfg.Source = "src"
	}
	s, err := lvm.New(cfg, p.options())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (p *pool) options() lvm.Options {
	return lvm.Options{LVM: p.cli(), Open: p.openDevice, OpenWrite: p.openWriteDevice}
}

func (p *pool) path(name string) string { return filepath.Join(p.devDir, p.vg, name) }

// addVolume makes a thin volume holding content; only blocks with a non-zero
// byte are mapped, as if content had been written skipping zeros.
func (p *pool) addVolume(name string, content []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v := &thinVol{name: name, id: p.nextID, size: int64(len(content)), mapping: map[int64]int64{}, active: true}
	p.nextID++
	p.vols[name] = v
	if err := os.WriteFile(p.path(name), content, 0o600); err != nil {
		p.t.Fatal(err)
	}
	for b := int64(0); b*p.blockSize < v.size; b++ {
		if bytes.ContainsFunc(content[b*p.blockSize:min((b+1)*p.blockSize, v.size)], func(r rune) bool { return r != 0 }) {
			p.mapNew(v, b)
		}
	}
}

// mapNew points a volume block at a fresh pool data block.
func (p *pool) mapNew(v *thinVol, b int64) {
	if old, ok := v.mapping[b]; ok {
		p.unref(old)
	}
	v.mapping[b] = p.nextData
	p.refs[p.nextData] = 1
	p.nextData++
}

func (p *pool) unref(data int64) {
	if p.refs[data]--; p.refs[data] == 0 {
		delete(p.refs, data)
	}
}

// write changes a live volume as dm-thin does: a block that is unmapped or
// shared with a snapshot gets a new data block; an unshared one is
// overwritten in place.
func (p *pool) write(name string, off int64, data []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	v := p.vols[name]
	if v == nil || off < 0 || off+int64(len(data)) > v.size {
		return fmt.Errorf("write %d bytes at %d of %s: out of range", len(data), off, name)
	}
	f, err := os.OpenFile(p.path(name), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.WriteAt(data, off); err != nil {
		return err
	}
	for b := off / p.blockSize; b*p.blockSize < off+int64(len(data)); b++ {
		if d, ok := v.mapping[b]; !ok || p.refs[d] > 1 {
			p.mapNew(v, b)
		}
	}
	return nil
}

// discard unmaps whole blocks of a live volume, which then read as zeros.
func (p *pool) discard(name string, block, n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v := p.vols[name]
	f, err := os.OpenFile(p.path(name), os.O_WRONLY, 0)
	if err != nil {
		p.t.Fatal(err)
	}
	defer f.Close()
	for b := block; b < block+n; b++ {
		if d, ok := v.mapping[b]; ok {
			p.unref(d)
			delete(v.mapping, b)
		}
		if _, err := f.WriteAt(make([]byte, p.blockSize), b*p.blockSize); err != nil {
			p.t.Fatal(err)
		}
	}
}

// snapshots lists the volumes that are snapshots, sorted.
func (p *pool) snapshots() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, v := range p.vols {
		if v.origin != "" {
			out = append(out, v.name)
		}
	}
	slices.Sort(out)
	return out
}

func (p *pool) callLog() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.calls)
}

// leftovers is what a closed backup must not leave: snapshots other than
// the kept ones, a kept one left active, a held metadata snapshot, open
// devices.
func (p *pool) leftovers(keep ...string) []string {
	var out []string
	for _, s := range p.snapshots() {
		if !slices.Contains(keep, s) {
			out = append(out, "snapshot "+s)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range keep {
		if v := p.vols[s]; v != nil && v.active {
			out = append(out, "active snapshot "+s)
		}
	}
	if p.held {
		out = append(out, "held metadata snapshot of "+p.name)
	}
	for path, n := range p.opens {
		if n > 0 {
			out = append(out, fmt.Sprintf("%d open handles on %s", n, path))
		}
	}
	return out
}

// exitError mimics a command that printed msg on standard error.
func exitError(cmd string, code int, msg string) error {
	return fmt.Errorf("%s: exit status %d: %s", cmd, code, msg)
}

// run answers one command line as LVM, dmsetup or thin_delta would.
func (p *pool) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	line := strings.Join(append([]string{name}, args...), " ")
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, line)
	for _, prefix := range slices.Sorted(maps.Keys(p.fail)) {
		if strings.HasPrefix(line, prefix) {
			return nil, p.fail[prefix]
		}
	}
	out, err := p.answer(ctx, name, args)
	if err == nil {
		for _, prefix := range slices.Sorted(maps.Keys(p.after)) {
			if strings.HasPrefix(line, prefix) {
				return nil, p.after[prefix]
			}
		}
	}
	return out, err
}

func (p *pool) answer(ctx context.Context, name string, args []string) ([]byte, error) {
	line := strings.Join(append([]string{name}, args...), " ")
	want := func(n int) error {
		if len(args) != n {
			return exitError(line, 3, "unexpected arguments")
		}
		return nil
	}
	switch {
	case name == "lvs":
		if err := want(8); err != nil {
			return nil, err
		}
		if !slices.Equal(args[:7], []string{"--reportformat", "json", "--units", "b", "--nosuffix", "--options", "lv_name,vg_name,lv_attr,lv_size,pool_lv,thin_id,origin"}) {
			return nil, exitError(line, 3, "unexpected arguments")
		}
		if args[7] != p.vg {
			return nil, exitError(line, 5, fmt.Sprintf("Volume group %q not found", args[7]))
		}
		return p.lvs(), nil
	case name == "lvcreate" && len(args) > 0 && args[0] == "--thin":
		if err := want(6); err != nil || args[1] != "--virtualsize" || args[3] != "--name" || !strings.HasSuffix(args[2], "s") {
			return nil, exitError(line, 3, "unexpected arguments")
		}
		sectors, err := strconv.ParseInt(strings.TrimSuffix(args[2], "s"), 10, 64)
		if err != nil {
			return nil, exitError(line, 3, "invalid size")
		}
		return nil, p.createThin(line, args[5], args[4], sectors*512)
	case name == "lvcreate":
		if err := want(4); err != nil || args[0] != "--snapshot" || args[1] != "--name" {
			return nil, exitError(line, 3, "unexpected arguments")
		}
		return nil, p.createSnapshot(line, args[3], args[2])
	case name == "lvrename":
		if err := want(3); err != nil {
			return nil, err
		}
		return nil, p.rename(line, args[0], args[1], args[2])
	case name == "lvchange" && len(args) == 4:
		if args[0] != "--activate" || args[1] != "y" || args[2] != "--ignoreactivationskip" {
			return nil, exitError(line, 3, "unexpected arguments")
		}
		v, err := p.lookup(line, args[3])
		if err != nil {
			return nil, err
		}
		v.active = true
		return nil, nil
	case name == "lvchange":
		if err := want(3); err != nil || args[0] != "--activate" || args[1] != "n" {
			return nil, exitError(line, 3, "unexpected arguments")
		}
		v, err := p.lookup(line, args[2])
		if err != nil {
			return nil, err
		}
		if p.opens[p.path(v.name)] > 0 {
			return nil, exitError(line, 5, fmt.Sprintf("Logical volume %s in use.", args[2]))
		}
		v.active = false
		return nil, nil
	case name == "lvremove":
		if err := want(2); err != nil || args[0] != "--yes" {
			return nil, exitError(line, 3, "unexpected arguments")
		}
		return nil, p.remove(line, args[1])
	case name == "dmsetup":
		if err := want(4); err != nil || args[0] != "message" || args[2] != "0" {
			return nil, exitError(line, 1, "unexpected arguments")
		}
		// LVM doubles hyphens inside names in device-mapper names.
		if dev := "vg0-pool--1-tpool"; args[1] != dev {
			return nil, exitError(line, 1, fmt.Sprintf("Device %s not found", args[1]))
		}
		return nil, p.message(ctx, line, args[3])
	case name == "thin_delta":
		if err := want(6); err != nil || args[0] != "--metadata-snap" || args[1] != "--snap1" || args[3] != "--snap2" {
			return nil, exitError(line, 1, "unexpected arguments")
		}
		if args[5] != p.metaPath() {
			return nil, exitError(line, 1, fmt.Sprintf("couldn't open %s", args[5]))
		}
		return runTool(ctx, "thin_delta", args...)
	}
	return nil, exitError(line, 127, "command not found")
}

func (p *pool) metaPath() string { return filepath.Join(p.mapperDir, "vg0-pool--1_tmeta") }

// lookup finds VG/NAME.
func (p *pool) lookup(line, ref string) (*thinVol, error) {
	vg, lv, ok := strings.Cut(ref, "/")
	if !ok || vg != p.vg {
		return nil, exitError(line, 5, fmt.Sprintf("Volume group %q not found", vg))
	}
	v := p.vols[lv]
	if v == nil {
		return nil, exitError(line, 5, fmt.Sprintf("Failed to find logical volume \"%s/%s\"", vg, lv))
	}
	return v, nil
}

func (p *pool) lvs() []byte {
	rows := []map[string]string{
		{"lv_name": p.name, "vg_name": p.vg, "lv_attr": "twi-aotz--", "lv_size": "1073741824", "pool_lv": "", "thin_id": "", "origin": ""},
		{"lv_name": "root", "vg_name": p.vg, "lv_attr": "-wi-ao----", "lv_size": "8388608", "pool_lv": "", "thin_id": "", "origin": ""},
	}
	for _, name := range slices.Sorted(maps.Keys(p.vols)) {
		v := p.vols[name]
		attr := "Vwi-a-tz--"
		if !v.active {
			attr = "Vwi---tz--"
		}
		if v.skip {
			attr = attr[:9] + "k"
		}
		rows = append(rows, map[string]string{"lv_name": v.name, "vg_name": p.vg, "lv_attr": attr,
			"lv_size": strconv.FormatInt(v.size, 10), "pool_lv": p.name, "thin_id": strconv.FormatInt(v.id, 10), "origin": v.origin})
	}
	b, err := json.MarshalIndent(map[string]any{"report": []any{map[string]any{"lv": rows}}}, "  ", "    ")
	if err != nil {
		p.t.Fatal(err)
	}
	return b
}

func (p *pool) createSnapshot(line, ref, name string) error {
	origin, err := p.lookup(line, ref)
	if err != nil {
		return err
	}
	if p.vols[name] != nil {
		return exitError(line, 5, fmt.Sprintf("Logical Volume %q already exists in volume group %q", name, p.vg))
	}
	v := &thinVol{name: name, origin: origin.name, id: p.nextID, size: origin.size, mapping: maps.Clone(origin.mapping), skip: true}
	p.nextID++
	for _, d := range v.mapping {
		p.refs[d]++
	}
	b, err := os.ReadFile(p.path(origin.name))
	if err != nil {
		return err
	}
	if err := os.WriteFile(p.path(name), b, 0o600); err != nil {
		return err
	}
	p.vols[name] = v
	return nil
}

// extent is the VG's extent size: LVM rounds volume sizes up to it.
const extent = 4 << 20

func (p *pool) createThin(line, ref, name string, size int64) error {
	vg, pool, _ := strings.Cut(ref, "/")
	if vg != p.vg || pool != p.name {
		return exitError(line, 5, fmt.Sprintf("Thin pool %s not found", ref))
	}
	if p.vols[name] != nil {
		return exitError(line, 5, fmt.Sprintf("Logical Volume %q already exists in volume group %q", name, p.vg))
	}
	size = (size + extent - 1) / extent * extent
	if err := os.WriteFile(p.path(name), nil, 0o600); err != nil {
		return err
	}
	if err := os.Truncate(p.path(name), size); err != nil {
		return err
	}
	p.vols[name] = &thinVol{name: name, id: p.nextID, size: size, mapping: map[int64]int64{}, active: true}
	p.nextID++
	return nil
}

func (p *pool) rename(line, vg, from, to string) error {
	v, err := p.lookup(line, vg+"/"+from)
	if err != nil {
		return err
	}
	if p.vols[to] != nil {
		return exitError(line, 5, fmt.Sprintf("Logical Volume %q already exists in volume group %q", to, p.vg))
	}
	if p.opens[p.path(from)] > 0 {
		return exitError(line, 5, fmt.Sprintf("Logical volume %s/%s in use.", vg, from))
	}
	if err := os.Rename(p.path(from), p.path(to)); err != nil {
		return err
	}
	delete(p.vols, from)
	v.name = to
	p.vols[to] = v
	for _, o := range p.vols {
		if o.origin == from {
			o.origin = to
		}
	}
	return nil
}

func (p *pool) remove(line, ref string) error {
	v, err := p.lookup(line, ref)
	if err != nil {
		return err
	}
	if p.opens[p.path(v.name)] > 0 {
		return exitError(line, 5, fmt.Sprintf("Logical volume %s in use.", ref))
	}
	for _, o := range p.vols {
		if o.origin == v.name {
			// Thin snapshots outlive their origin.
			o.origin = ""
		}
	}
	for _, d := range v.mapping {
		p.unref(d)
	}
	delete(p.vols, v.name)
	return os.Remove(p.path(v.name))
}

// message handles the two dm-thin pool messages the plugin sends.
func (p *pool) message(ctx context.Context, line, msg string) error {
	switch msg {
	case "reserve_metadata_snap":
		if p.held {
			return exitError(line, 1, "device-mapper: message ioctl on vg0-pool--1-tpool failed: Device or resource busy")
		}
		if err := p.writeMetadata(ctx); err != nil {
			return err
		}
		p.held = true
		return nil
	case "release_metadata_snap":
		if !p.held {
			return exitError(line, 1, "device-mapper: message ioctl on vg0-pool--1-tpool failed: Invalid argument")
		}
		if err := setHeldRoot(p.metaPath(), false); err != nil {
			return err
		}
		p.held = false
		return nil
	}
	return exitError(line, 1, "unknown message")
}

// writeMetadata makes the pool's metadata device from the current state with
// the real thin_restore, with a held metadata root.
func (p *pool) writeMetadata(ctx context.Context) error {
	var x strings.Builder
	fmt.Fprintf(&x, "<superblock uuid=\"\" time=\"0\" transaction=\"1\" flags=\"0\" version=\"2\" data_block_size=\"%d\" nr_data_blocks=\"%d\">\n",
		p.blockSize/512, p.nextData+1024)
	for _, name := range slices.Sorted(maps.Keys(p.vols)) {
		v := p.vols[name]
		fmt.Fprintf(&x, "  <device dev_id=\"%d\" mapped_blocks=\"%d\" transaction=\"0\" creation_time=\"0\" snap_time=\"0\">\n", v.id, len(v.mapping))
		for _, b := range slices.Sorted(maps.Keys(v.mapping)) {
			fmt.Fprintf(&x, "    <single_mapping origin_block=\"%d\" data_block=\"%d\" time=\"0\"/>\n", b, v.mapping[b])
		}
		x.WriteString("  </device>\n")
	}
	x.WriteString("</superblock>\n")
	xmlPath := p.metaPath() + ".xml"
	if err := os.WriteFile(xmlPath, []byte(x.String()), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(p.metaPath(), nil, 0o600); err != nil {
		return err
	}
	if err := os.Truncate(p.metaPath(), 8<<20); err != nil {
		return err
	}
	if _, err := runTool(ctx, "thin_restore", "-i", xmlPath, "-o", p.metaPath()); err != nil {
		return err
	}
	return setHeldRoot(p.metaPath(), true)
}

// Thin pool metadata superblock layout (dm-thin-metadata.c): a CRC32C of
// the rest of the 4 KiB block at 0, the block's own number at 8 and the held
// metadata root at 56.
const (
	metaBlock    = 4096
	csumXOR      = 160774
	offBlocknr   = 8
	offHeldRoot  = 56
	heldRootCopy = 8<<20/metaBlock - 1 // the last block, unused by thin_restore here
)

// setHeldRoot does what reserve_metadata_snap does to the superblock: copy
// it to a free block and point held_root at the copy (or clear held_root).
func setHeldRoot(path string, hold bool) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	sb := make([]byte, metaBlock)
	if _, err := f.ReadAt(sb, 0); err != nil {
		return err
	}
	if !checkSum(sb) {
		return errors.New("metadata superblock checksum is wrong")
	}
	root := uint64(0)
	if hold {
		root = heldRootCopy
		cp := bytes.Clone(sb)
		binary.LittleEndian.PutUint64(cp[offBlocknr:], heldRootCopy)
		sum(cp)
		if _, err := f.WriteAt(cp, heldRootCopy*metaBlock); err != nil {
			return err
		}
	}
	binary.LittleEndian.PutUint64(sb[offHeldRoot:], root)
	sum(sb)
	_, err = f.WriteAt(sb, 0)
	return err
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// The kernel's dm_bm_checksum is crc32c seeded with ~0, not inverted at the
// end, XORed with a per-block-type constant.
func blockSum(b []byte) uint32 { return ^crc32.Checksum(b[4:], castagnoli) ^ csumXOR }

func sum(b []byte)           { binary.LittleEndian.PutUint32(b, blockSum(b)) }
func checkSum(b []byte) bool { return binary.LittleEndian.Uint32(b) == blockSum(b) }

func runTool(ctx context.Context, name string, args ...string) ([]byte, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, toolPath(name), args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, exitError(strings.Join(append([]string{name}, args...), " "), cmd.ProcessState.ExitCode(), strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// openDevice opens a volume's device file, counting handles and bytes read.
func (p *pool) openDevice(path string) (lvm.Device, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	name := filepath.Base(path)
	if v := p.vols[name]; v == nil || !v.active || filepath.Dir(path) != filepath.Join(p.devDir, p.vg) {
		return nil, fmt.Errorf("open %s: no such device", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	p.opens[path]++
	return &device{f: f, p: p, path: path}, nil
}

type device struct {
	f      *os.File
	p      *pool
	path   string
	closed atomic.Bool
}

func (d *device) ReadAt(b []byte, off int64) (int, error) {
	d.p.mu.Lock()
	fail := d.p.readFail
	d.p.mu.Unlock()
	if fail != nil {
		if err := fail(d.path, off); err != nil {
			return 0, err
		}
	}
	n, err := d.f.ReadAt(b, off)
	d.p.read.Add(int64(n))
	return n, err
}

func (d *device) Close() error {
	if d.closed.Swap(true) {
		return errors.New("device closed twice")
	}
	d.p.mu.Lock()
	d.p.opens[d.path]--
	d.p.mu.Unlock()
	return d.f.Close()
}

// needTools fails (in CI) or skips when thin-provisioning-tools is missing.
func needTools(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"thin_restore", "thin_delta"} {
		if _, err := exec.LookPath(toolPath(tool)); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not found: tests/setup installs thin-provisioning-tools", tool)
			}
			t.Skipf("%s not found: run tests/setup (thin-provisioning-tools)", tool)
		}
	}
}

// toolPath finds a tool in PATH or in /usr/sbin, where Debian installs
// thin-provisioning-tools.
func toolPath(name string) string {
	if _, err := exec.LookPath(name); err != nil {
		if p := filepath.Join("/usr/sbin", name); exec.Command(p, "--version").Run() == nil {
			return p
		}
	}
	return name
}

// openWriteDevice opens a volume for a restore; writes go through the
// model, so mappings follow.
func (p *pool) openWriteDevice(path string) (lvm.WriteDevice, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	name := filepath.Base(path)
	if v := p.vols[name]; v == nil || !v.active || filepath.Dir(path) != filepath.Join(p.devDir, p.vg) {
		return nil, fmt.Errorf("open %s: no such device", path)
	}
	p.opens[path]++
	return &writeDevice{p: p, name: name, path: path}, nil
}

type writeDevice struct {
	p          *pool
	name, path string
	closed     atomic.Bool
}

func (d *writeDevice) WriteAt(b []byte, off int64) (int, error) {
	if d.closed.Load() {
		return 0, errors.New("write to a closed device")
	}
	if err := d.p.write(d.name, off, b); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (d *writeDevice) Close() error {
	if d.closed.Swap(true) {
		return errors.New("device closed twice")
	}
	d.p.mu.Lock()
	d.p.opens[d.path]--
	d.p.mu.Unlock()
	return nil
}
