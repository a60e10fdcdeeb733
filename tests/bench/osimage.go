package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/cairnhq/cairn/appliance/api"
	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/plugins"
)

// osImage is (b), (c) and (d): an 8 GiB sparse image holding an ext4
// filesystem made from this machine's /usr/share, /usr/bin and Go tree;
// a full backup, a 1% incremental with an extent list, a restore, and the
// daemon's peak RSS through all of it.
func (h *harness) osImage(r *report, dir string) error {
	const size = 8 << 30
	tree := filepath.Join(dir, "tree")
	os.MkdirAll(tree, 0o755)
	for _, src := range []string{"/usr/share", "/usr/bin", "/usr/local/go"} {
		if _, err := os.Stat(src); err == nil {
			if out, err := exec.Command("cp", "-a", src, tree+"/").CombinedOutput(); err != nil {
				return fmt.Errorf("copy %s: %v: %s", src, err, out)
			}
		}
	}
	img := filepath.Join(dir, "os.img")
	f, err := os.Create(img)
	if err != nil {
		return err
	}
	f.Truncate(size)
	f.Close()
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-d", tree, img).CombinedOutput(); err != nil {
		return fmt.Errorf("mkfs.ext4: %v: %s", err, out)
	}
	os.RemoveAll(tree)
	var st syscall.Stat_t
	syscall.Stat(img, &st)
	allocated := st.Blocks * 512

	data := filepath.Join(dir, "data")
	d, err := h.start(data)
	if err != nil {
		return err
	}
	defer d.stop()
	ctx := context.Background()
	if _, err := d.client.AddSource(ctx, api.AddSourceRequest{Name: "os", Kind: "file", Config: map[string]string{"path": img}}); err != nil {
		return err
	}
	full, fullTook, err := d.backup("os", api.BackupRequest{})
	if err != nil {
		return err
	}

	// Change 1% of the disk's blocks, at random blocks, with random data.
	blocks := int64(size / chunk.BlockSize)
	f, err = os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	var extents []plugins.Extent
	seen := map[int64]bool{}
	buf := make([]byte, chunk.BlockSize)
	for len(extents) < int(blocks/100) {
		n, _ := rand.Int(rand.Reader, big.NewInt(blocks))
		b := n.Int64()
		if seen[b] {
			continue
		}
		seen[b] = true
		rand.Read(buf)
		if _, err := f.WriteAt(buf, b*chunk.BlockSize); err != nil {
			return err
		}
		extents = append(extents, plugins.Extent{Offset: b * chunk.BlockSize, Length: chunk.BlockSize})
	}
	f.Close()
	extents, _ = plugins.NormalizeExtents(extents, size)
	incr, incrTook, err := d.backup("os", api.BackupRequest{ChangedExtents: extents})
	if err != nil {
		return err
	}

	out := filepath.Join(dir, "restored.img")
	_, restTook, err := d.wait(d.client.StartRestore(ctx, api.RestoreRequest{RestorePoint: full.ID, To: "file:" + out}))
	if err != nil {
		return err
	}
	os.Remove(out)
	rss := d.peakRSS()

	r.section("(b) 8 GiB sparse OS image")
	r.line("ext4 made with `mkfs.ext4 -d` from /usr/share, /usr/bin and /usr/local/go: %s allocated.\n", mib(allocated))
	r.header("backup", "wall time", "read", "read rate", "new (plaintext)", "stored (sealed)")
	r.row("full", fmt.Sprintf("%.2f s", fullTook.Seconds()), mib(full.ReadBytes), mbps(full.ReadBytes, fullTook), mib(full.NewBytes), mib(full.StoredBytes))
	r.row(fmt.Sprintf("1%% incremental (%d blocks, extent list)", len(extents)), fmt.Sprintf("%.2f s", incrTook.Seconds()),
		mib(incr.ReadBytes), mbps(incr.ReadBytes, incrTook), mib(incr.NewBytes), mib(incr.StoredBytes))
	r.line("\nIncremental vs full wall time: **%.3f**.", incrTook.Seconds()/fullTook.Seconds())

	r.section("(c) Restore")
	r.header("restore point", "wall time", "logical rate (capacity)", "data rate (non-zero blocks)")
	r.row("full of the OS image", fmt.Sprintf("%.2f s", restTook.Seconds()), mbps(full.LogicalBytes, restTook), mbps(full.ReadBytes-full.ZeroBlocks*chunk.BlockSize, restTook))

	r.section("(d) Memory")
	r.header("cairnd through (b) and (c) of an 8 GiB disk", "goal")
	r.row(fmt.Sprintf("peak RSS **%s**", mib(rss)), "≤ 256 MiB")
	return nil
}
