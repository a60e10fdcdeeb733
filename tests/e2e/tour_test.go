package e2e

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cairnhq/cairn/cluster/meta"
)

const block = 4 << 20

// TestTour is the README's tour: a full backup of a sparse ext4 image, about
// 1% of its blocks changed, an incremental with the extent list, and both
// restore points restored byte-identical.
func TestTour(t *testing.T) {
	dir := t.TempDir()
	d := startDaemon(t, filepath.Join(dir, "data"), "")
	img := filepath.Join(dir, "disk.img")
	fsImage(t, img, 1<<30, 96<<20)

	d.ok("source", "add", "file", "disk", "--path", img)
	out := d.ok("source", "list", "-o", "json")
	if !strings.Contains(out, `"disk"`) {
		t.Fatalf("source list: %s", out)
	}
	rp1 := d.backup("disk")
	if rp1.Source != "disk" || rp1.Object != "disk.img" || rp1.LogicalBytes != 1<<30 || rp1.NewBytes == 0 {
		t.Fatalf("full backup: %+v", rp1)
	}
	if rp1.ReadBytes >= 1<<30/2 {
		t.Fatalf("full backup of a sparse image read %d bytes: holes were read", rp1.ReadBytes)
	}
	orig := filepath.Join(dir, "orig.img")
	if out, err := exec.Command("cp", "--sparse=always", img, orig).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}

	// Change 1% of the 256 blocks: three blocks, partly or wholly, inside
	// and outside the filesystem's data.
	f, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	var list strings.Builder
	changes := []struct{ off, n int64 }{{3*block + 100, 5000}, {77 * block, block}, {200*block + block - 10, 10}}
	for _, c := range changes {
		b := make([]byte, c.n)
		rand.Read(b)
		if _, err := f.WriteAt(b, c.off); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&list, "%d %d\n", c.off, c.n)
	}
	f.Close()
	extents := filepath.Join(dir, "changed.txt")
	os.WriteFile(extents, []byte(list.String()), 0o644)

	rp2 := d.backup("disk", "--changed-extents", extents)
	if rp2.Base != rp1.ID {
		t.Fatalf("incremental base = %q, want %q", rp2.Base, rp1.ID)
	}
	if rp2.ReadBytes != 3*block || rp2.NewChunks != 3 || rp2.NewBytes != 3*block {
		t.Fatalf("incremental read %d bytes and stored %d chunks (%d bytes); want 3 blocks of each", rp2.ReadBytes, rp2.NewChunks, rp2.NewBytes)
	}

	for _, c := range []struct {
		rp   meta.RestorePoint
		want string
	}{{rp1, orig}, {rp2, img}} {
		out := filepath.Join(dir, c.rp.ID+".img")
		d.ok("restore", c.rp.ID, "--to", "file:"+out, "--wait")
		sameFile(t, out, c.want)
		var st syscall.Stat_t
		syscall.Stat(out, &st)
		if st.Blocks*512 >= 1<<30/2 {
			t.Fatalf("restored image uses %d bytes: zero blocks were not left as holes", st.Blocks*512)
		}
	}

	var vr meta.VerifyResult
	out = d.ok("verify", rp2.ID, "-o", "json")
	if err := json.Unmarshal([]byte(out), &vr); err != nil {
		t.Fatalf("verify output: %v\n%s", err, out)
	}
	if !vr.OK || vr.ChunksChecked == 0 || vr.Corrupt != 0 {
		t.Fatalf("verify: %+v", vr)
	}

	// With no extent list and nothing changed, the hash-compare incremental
	// reads the allocated extents and stores nothing.
	rp3 := d.backup("disk")
	if rp3.NewChunks != 0 || rp3.Fingerprint != rp2.Fingerprint {
		t.Fatalf("unchanged backup stored %d chunks; fingerprint equal: %v", rp3.NewChunks, rp3.Fingerprint == rp2.Fingerprint)
	}
	list2 := d.ok("backup", "list", "-o", "json")
	var rps []meta.RestorePoint
	if err := json.Unmarshal([]byte(list2), &rps); err != nil || len(rps) != 3 {
		t.Fatalf("backup list: %v\n%s", err, list2)
	}
}

// TestNoPlaintextOnDisk writes a marker into a disk and looks for it in every
// file of the data directory after a backup.
func TestNoPlaintextOnDisk(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	d := startDaemon(t, data, "")
	n, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	marker := fmt.Sprintf("CAIRN-SECRET-MARKER-%x", n)
	img := filepath.Join(dir, "secret.img")
	content := []byte(strings.Repeat(marker+" ", 3*block/len(marker)))
	tail := make([]byte, block)
	rand.Read(tail)
	copy(tail[1000:], marker)
	os.WriteFile(img, append(content, tail...), 0o644)

	d.ok("source", "add", "file", "secret", "--path", img)
	d.backup("secret")
	d.kill()
	err := filepath.Walk(data, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), marker) || strings.Contains(string(b), marker[:24]) {
			t.Errorf("%s holds the plaintext marker", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
