package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLIErrors checks that failures are one clear line and the documented
// exit code (docs/cli.md).
func TestCLIErrors(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	d := startDaemon(t, data, "")
	img := filepath.Join(dir, "x.img")
	os.WriteFile(img, []byte("some data"), 0o644)
	d.ok("source", "add", "file", "x", "--path", img)

	badExtents := filepath.Join(dir, "bad.txt")
	os.WriteFile(badExtents, []byte("0 4096\nlots of bytes\n"), 0o644)
	wrongToken := filepath.Join(dir, "wrong.token")
	os.WriteFile(wrongToken, []byte("not-the-token\n"), 0o600)

	cases := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"unknown restore point", []string{"backup", "show", "rp-nope"}, 3, "not found"},
		{"unknown source", []string{"backup", "run", "nope", "--wait"}, 3, "not found"},
		{"duplicate source", []string{"source", "add", "file", "x", "--path", img}, 4, "exists"},
		{"bad extent file", []string{"backup", "run", "x", "--changed-extents", badExtents}, 2, "line 2"},
		{"unknown flag", []string{"backup", "run", "x", "--bogus"}, 2, "bogus"},
		{"restore onto an existing file", []string{"restore", "rp-nope", "--to", "file:" + img}, 3, "not found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, errs, code := d.cairn(c.args...)
			if code != c.code || !strings.Contains(strings.ToLower(errs), c.msg) {
				t.Fatalf("exit %d, stderr %q; want exit %d mentioning %q", code, errs, c.code, c.msg)
			}
			if lines := strings.Count(strings.TrimSpace(errs), "\n"); lines > 0 {
				t.Fatalf("error takes %d lines: %q", lines+1, errs)
			}
		})
	}

	rp := d.backup("x")
	if _, errs, code := d.cairn("restore", rp.ID, "--to", "file:"+img, "--wait"); code != 4 {
		t.Fatalf("restore over an existing file without --overwrite: exit %d, %s", code, errs)
	}

	d.data = dir // the token file and CA are no longer found
	if _, _, code := d.cairn("source", "list"); code == 0 {
		t.Fatal("a missing CA/token was accepted")
	}
	d.data = data
	_, _, code := d.cairn("--token-file", wrongToken, "source", "list")
	if code != 6 {
		t.Fatalf("wrong token: exit %d, want 6", code)
	}
	d.kill()
	if _, _, code := d.cairn("source", "list"); code != 5 {
		t.Fatalf("no server: exit %d, want 5", code)
	}
}
