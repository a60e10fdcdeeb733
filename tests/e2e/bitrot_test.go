package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/cluster/meta"
)

// TestVerifyFindsBitRot flips one byte inside a stored chunk: verify reports
// it and exits 1, and a restore fails without leaving a partial target.
func TestVerifyFindsBitRot(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	d := startDaemon(t, data, "")
	img := filepath.Join(dir, "x.img")
	fsImage(t, img, 128<<20, 24<<20)
	d.ok("source", "add", "file", "x", "--path", img)
	rp := d.backup("x")
	d.kill()

	segs, _ := filepath.Glob(filepath.Join(data, "chunks", "segments", "*.seg"))
	var biggest string
	var size int64
	for _, s := range segs {
		if fi, err := os.Stat(s); err == nil && fi.Size() > size {
			biggest, size = s, fi.Size()
		}
	}
	if size < 1<<20 {
		t.Fatalf("no segment with data among %v", segs)
	}
	f, err := os.OpenFile(biggest, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := []byte{0}
	f.ReadAt(b, size/2)
	b[0] ^= 0x10
	f.WriteAt(b, size/2)
	f.Close()

	d = startDaemon(t, data, d.addr)
	out, _, code := d.cairn("verify", rp.ID, "-o", "json")
	var vr meta.VerifyResult
	if err := json.Unmarshal([]byte(out), &vr); err != nil {
		t.Fatalf("verify output: %v\n%s", err, out)
	}
	if code != 1 || vr.OK || vr.Corrupt < 1 || vr.ChunksChecked == 0 {
		t.Fatalf("verify of a damaged restore point: exit %d, %+v", code, vr)
	}
	show := d.ok("backup", "show", rp.ID, "-o", "json")
	if !strings.Contains(show, `"failed"`) {
		t.Fatalf("restore point not marked failed after verify: %s", show)
	}

	target := filepath.Join(dir, "restored.img")
	_, errs, code := d.cairn("restore", rp.ID, "--to", "file:"+target, "--wait")
	// verify quarantined the damaged chunk, so the restore finds it missing.
	if code != 1 || !strings.Contains(errs, "not found") {
		t.Fatalf("restore of a damaged restore point: exit %d, %q", code, errs)
	}
	left, _ := filepath.Glob(target + "*")
	if len(left) != 0 {
		t.Fatalf("a failed restore left %v behind", left)
	}

	// A restore point that failed verification is never an incremental base,
	// and the damaged chunk was quarantined: the next backup stores it again,
	// which makes the damaged restore point whole.
	next := d.backup("x")
	if next.Base != "" {
		t.Fatalf("backup after a failed verify used %s as its base", next.Base)
	}
	if next.NewChunks < 1 {
		t.Fatalf("the quarantined chunk was not stored again: %+v", next)
	}
	out, _, code = d.cairn("verify", rp.ID, "-o", "json")
	if code != 0 {
		t.Fatalf("the damaged restore point is still damaged after the chunk was stored again: %s", out)
	}
	d.ok("restore", rp.ID, "--to", "file:"+target, "--wait")
	sameFile(t, target, img)
}
