package e2e

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/cluster/meta"
)

// TestGCReclaimsDeletedRestorePoints: after a restore point is deleted,
// two rounds of `cairn gc run --grace 0s` give its unshared chunks' space
// back, and the restore point that remains still verifies and restores.
func TestGCReclaimsDeletedRestorePoints(t *testing.T) {
	dir := t.TempDir()
	d := startDaemon(t, filepath.Join(dir, "data"), "")
	a, b := filepath.Join(dir, "a.img"), filepath.Join(dir, "b.img")
	randomImage(t, a, 96<<20)
	randomImage(t, b, 32<<20)
	d.ok("source", "add", "file", "a", "--path", a)
	d.ok("source", "add", "file", "b", "--path", b)
	old := d.backup("a")
	keep := d.backup("b")

	if _, errs, code := d.cairn("backup", "delete", "rp-nothing"); code != 3 || !strings.Contains(errs, "not found") {
		t.Fatalf("delete a missing restore point: exit %d, %s", code, errs)
	}
	d.ok("backup", "delete", old.ID)
	var total int64
	for round := 1; round <= 2; round++ {
		var g meta.GCResult
		out := d.ok("gc", "run", "--wait", "--grace", "0s", "-o", "json")
		if err := json.Unmarshal([]byte(out), &g); err != nil {
			t.Fatalf("gc result: %v\n%s", err, out)
		}
		t.Logf("round %d: %+v", round, g)
		// The deleted point's own chunks: its data, plus its one index leaf.
		if round == 1 && (g.Tombstoned != old.NewChunks+1 || g.Deleted != 0) {
			t.Fatalf("round 1 tombstoned %d and deleted %d; the deleted point had %d data chunks and one index chunk of its own", g.Tombstoned, g.Deleted, old.NewChunks)
		}
		if round == 2 && g.Deleted != old.NewChunks+1 {
			t.Fatalf("round 2 deleted %d chunks, want %d", g.Deleted, old.NewChunks+1)
		}
		total += g.BytesReclaimed
	}
	if total < 64<<20 {
		t.Fatalf("two rounds reclaimed %d bytes; the deleted point held 96 MiB of incompressible data", total)
	}
	if out := d.ok("verify", keep.ID, "-o", "json"); !strings.Contains(out, `"ok": true`) {
		t.Fatalf("the kept restore point does not verify after GC: %s", out)
	}
	restored := filepath.Join(dir, "b.restored")
	d.ok("restore", keep.ID, "--to", "file:"+restored, "--wait")
	sameFile(t, b, restored)
}
