package lvm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// LVM is the command layer the plugin drives: LVM's tools, dmsetup and
// thin_delta. CLI implements it by running the commands; names are checked
// by the caller (validName) before they get here.
type LVM interface {
	// Volumes lists the logical volumes of a volume group.
	Volumes(ctx context.Context, vg string) ([]Volume, error)
	// CreateSnapshot makes a thin snapshot of a thin volume. It is left
	// inactive (thin snapshots skip activation).
	CreateSnapshot(ctx context.Context, vg, lv, name string) error
	// Activate activates a volume, even one that skips activation.
	Activate(ctx context.Context, vg, name string) error
	// Deactivate deactivates a volume.
	Deactivate(ctx context.Context, vg, name string) error
	// Remove removes a volume.
	Remove(ctx context.Context, vg, name string) error
	// CreateThin makes a new, active thin volume of at least size bytes in
	// a pool; it reads as zeros.
	CreateThin(ctx context.Context, vg, pool, name string, size int64) error
	// Rename renames a volume.
	Rename(ctx context.Context, vg, from, to string) error
	// ReserveMetadataSnap holds a snapshot of a thin pool's metadata, which
	// thin_delta reads while the pool stays in use; a pool holds at most one.
	ReserveMetadataSnap(ctx context.Context, vg, pool string) error
	// ReleaseMetadataSnap lets the held metadata snapshot go.
	ReleaseMetadataSnap(ctx context.Context, vg, pool string) error
	// Delta runs thin_delta on the held metadata snapshot of a pool,
	// comparing two thin devices by ID, and returns its report.
	Delta(ctx context.Context, vg, pool string, left, right int64) ([]byte, error)
	// DevicePath is where an active volume can be read.
	DevicePath(vg, name string) string
}

// Runner runs a command and returns what it printed on standard output. An
// error says which command failed and includes its standard error.
type Runner func(ctx context.Context, name string, args ...string) ([]byte, error)

// maxOutput bounds what a command may print: a thin_delta report of a
// badly fragmented large volume is big, but not this big.
const maxOutput = 1 << 30

// Exec runs commands with os/exec. LVM's warnings about inherited file
// descriptors are turned off.
func Exec(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, lookPath(name), args...)
	cmd.Env = append(os.Environ(), "LVM_SUPPRESS_FD_WARNINGS=1")
	var stdout limitedBuffer
	var stderr bytes.Buffer
	stdout.max = maxOutput
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if stdout.over {
			return nil, fmt.Errorf("%s: printed more than %d bytes", commandLine(name, args), maxOutput)
		}
		return nil, commandError(name, args, err, stderr.Bytes())
	}
	return stdout.Bytes(), nil
}

// lookPath finds a tool in PATH or, failing that, in the sbin directories
// LVM and thin-provisioning-tools install into, which a service's PATH may
// leave out.
func lookPath(name string) string {
	if _, err := exec.LookPath(name); err == nil {
		return name
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return name
}

// commandError describes a failed command with the last lines it printed on
// standard error.
func commandError(name string, args []string, err error, stderr []byte) error {
	msg := strings.TrimSpace(string(stderr))
	if len(msg) > 512 {
		msg = "..." + msg[len(msg)-512:]
	}
	msg = strings.Join(strings.Fields(msg), " ")
	if msg == "" {
		return fmt.Errorf("%s: %w", commandLine(name, args), err)
	}
	return fmt.Errorf("%s: %w: %s", commandLine(name, args), err, msg)
}

func commandLine(name string, args []string) string {
	return strings.Join(append([]string{name}, args...), " ")
}

// limitedBuffer stops keeping output past max and remembers it did, so a
// runaway command fails instead of filling memory.
type limitedBuffer struct {
	bytes.Buffer
	max  int
	over bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > b.max {
		b.over = true
		return 0, errors.New("output too large")
	}
	return b.Buffer.Write(p)
}

// CLI runs LVM's commands through Run.
type CLI struct {
	Run Runner
	// DevDir holds /dev/VG/LV links (default /dev); MapperDir holds
	// device-mapper nodes (default /dev/mapper).
	DevDir, MapperDir string
}

var _ LVM = (*CLI)(nil)

func (c *CLI) devDir() string {
	if c.DevDir == "" {
		return "/dev"
	}
	return c.DevDir
}

func (c *CLI) mapperDir() string {
	if c.MapperDir == "" {
		return "/dev/mapper"
	}
	return c.MapperDir
}

// volumeFields are the lvs columns Volumes asks for.
const volumeFields = "lv_name,vg_name,lv_attr,lv_size,pool_lv,thin_id,origin"

// Volumes runs lvs with a JSON report in bytes.
func (c *CLI) Volumes(ctx context.Context, vg string) ([]Volume, error) {
	out, err := c.Run(ctx, "lvs", "--reportformat", "json", "--units", "b", "--nosuffix",
		"--options", volumeFields, vg)
	if err != nil {
		return nil, fmt.Errorf("list volumes of %s: %w", vg, err)
	}
	vols, err := ParseVolumes(out)
	if err != nil {
		return nil, fmt.Errorf("list volumes of %s: %w", vg, err)
	}
	return vols, nil
}

// CreateSnapshot runs lvcreate --snapshot without a size, which makes a
// thin snapshot of a thin volume.
func (c *CLI) CreateSnapshot(ctx context.Context, vg, lv, name string) error {
	if _, err := c.Run(ctx, "lvcreate", "--snapshot", "--name", name, vg+"/"+lv); err != nil {
		return fmt.Errorf("create snapshot %s of %s/%s: %w", name, vg, lv, err)
	}
	return nil
}

// Activate runs lvchange; --ignoreactivationskip is what activates a thin
// snapshot, which is created to skip activation.
func (c *CLI) Activate(ctx context.Context, vg, name string) error {
	if _, err := c.Run(ctx, "lvchange", "--activate", "y", "--ignoreactivationskip", vg+"/"+name); err != nil {
		return fmt.Errorf("activate %s/%s: %w", vg, name, err)
	}
	return nil
}

// Deactivate runs lvchange.
func (c *CLI) Deactivate(ctx context.Context, vg, name string) error {
	if _, err := c.Run(ctx, "lvchange", "--activate", "n", vg+"/"+name); err != nil {
		return fmt.Errorf("deactivate %s/%s: %w", vg, name, err)
	}
	return nil
}

// Remove runs lvremove without asking.
func (c *CLI) Remove(ctx context.Context, vg, name string) error {
	if _, err := c.Run(ctx, "lvremove", "--yes", vg+"/"+name); err != nil {
		return fmt.Errorf("remove %s/%s: %w", vg, name, err)
	}
	return nil
}

// CreateThin runs lvcreate --thin. The size is given in 512-byte sectors,
// rounded up, since lvcreate refuses a byte count that is not a whole number
// of sectors; LVM then rounds it up to whole extents.
func (c *CLI) CreateThin(ctx context.Context, vg, pool, name string, size int64) error {
	sectors := (size + sectorSize - 1) / sectorSize
	if _, err := c.Run(ctx, "lvcreate", "--thin", "--virtualsize", strconv.FormatInt(sectors, 10)+"s", "--name", name, vg+"/"+pool); err != nil {
		return fmt.Errorf("create thin volume %s/%s in pool %s: %w", vg, name, pool, err)
	}
	return nil
}

// Rename runs lvrename.
func (c *CLI) Rename(ctx context.Context, vg, from, to string) error {
	if _, err := c.Run(ctx, "lvrename", vg, from, to); err != nil {
		return fmt.Errorf("rename %s/%s to %s: %w", vg, from, to, err)
	}
	return nil
}

// ReserveMetadataSnap sends the pool's device-mapper target its message.
func (c *CLI) ReserveMetadataSnap(ctx context.Context, vg, pool string) error {
	if _, err := c.Run(ctx, "dmsetup", "message", poolDevice(vg, pool), "0", "reserve_metadata_snap"); err != nil {
		return fmt.Errorf("reserve a metadata snapshot of pool %s/%s: %w", vg, pool, err)
	}
	return nil
}

// ReleaseMetadataSnap sends the pool's device-mapper target its message.
func (c *CLI) ReleaseMetadataSnap(ctx context.Context, vg, pool string) error {
	if _, err := c.Run(ctx, "dmsetup", "message", poolDevice(vg, pool), "0", "release_metadata_snap"); err != nil {
		return fmt.Errorf("release the metadata snapshot of pool %s/%s: %w", vg, pool, err)
	}
	return nil
}

// Delta runs thin_delta on the pool's metadata device, reading the held
// metadata snapshot (--metadata-snap), not the live metadata the kernel is
// changing.
func (c *CLI) Delta(ctx context.Context, vg, pool string, left, right int64) ([]byte, error) {
	meta := filepath.Join(c.mapperDir(), dmName(vg, pool+"_tmeta"))
	out, err := c.Run(ctx, "thin_delta", "--metadata-snap",
		"--snap1", strconv.FormatInt(left, 10), "--snap2", strconv.FormatInt(right, 10), meta)
	if err != nil {
		return nil, fmt.Errorf("compare thin devices %d and %d of pool %s/%s: %w", left, right, vg, pool, err)
	}
	return out, nil
}

// DevicePath returns /dev/VG/NAME.
func (c *CLI) DevicePath(vg, name string) string {
	return filepath.Join(c.devDir(), vg, name)
}

// poolDevice names the device-mapper device of a thin pool's target: LVM
// calls the pool LV's own device VG-POOL and the thin-pool target under it
// VG-POOL-tpool.
func poolDevice(vg, pool string) string { return dmName(vg, pool) + "-tpool" }

// dmName is the device-mapper name LVM gives VG/LV: hyphens inside either
// name are doubled so the one between them stays unambiguous.
func dmName(vg, lv string) string {
	return strings.ReplaceAll(vg, "-", "--") + "-" + strings.ReplaceAll(lv, "-", "--")
}
