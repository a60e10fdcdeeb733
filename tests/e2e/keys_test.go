package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPassphraseSealsTheMasterKey runs cairnd with a passphrase: it will not
// start without it or with a wrong one, and the backups stay readable with
// the right one.
func TestPassphraseSealsTheMasterKey(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	pass := filepath.Join(dir, "pass")
	os.WriteFile(pass, []byte("correct horse battery staple\n"), 0o600)
	d := startDaemon(t, data, "", "--passphrase-file", pass)
	if strings.Contains(d.logText(), "UNSEALED") {
		t.Fatal("cairnd warned about an unsealed key although a passphrase was given")
	}
	key, _ := os.ReadFile(filepath.Join(data, "master.key"))
	if !strings.Contains(string(key), `"sealed":true`) && !strings.Contains(string(key), `"sealed": true`) {
		t.Fatalf("master.key is not sealed: %s", key)
	}
	img := filepath.Join(dir, "x.img")
	fsImage(t, img, 64<<20, 4<<20)
	d.ok("source", "add", "file", "x", "--path", img)
	rp := d.backup("x")
	d.kill()

	wrong := filepath.Join(dir, "wrong")
	os.WriteFile(wrong, []byte("tr0ub4dor&3\n"), 0o600)
	for _, c := range []struct {
		args []string
		env  string
		msg  string
	}{
		{nil, "", "passphrase"},
		{[]string{"--passphrase-file", wrong}, "", "wrong passphrase"},
		{nil, "CAIRN_PASSPHRASE=nope", "wrong passphrase"},
	} {
		msg := daemonFails(t, data, c.env, c.args...)
		if !strings.Contains(strings.ToLower(msg), c.msg) {
			t.Errorf("cairnd %v %s: %q, want it to mention %q", c.args, c.env, msg, c.msg)
		}
	}

	t.Setenv("CAIRN_PASSPHRASE", "correct horse battery staple")
	d = startDaemon(t, data, d.addr)
	out := filepath.Join(dir, "out.img")
	d.ok("restore", rp.ID, "--to", "file:"+out, "--wait")
	sameFile(t, out, img)
}

// daemonFails runs cairnd expecting it to refuse to start, and returns what
// it printed.
func daemonFails(t *testing.T, data, env string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "cairnd"), append([]string{"--data", data, "--listen", freeAddr(t)}, args...)...)
	cmd.Env = os.Environ()
	if env != "" {
		cmd.Env = append(cmd.Env, env)
	}
	out, err := cmd.CombinedOutput()
	if err == nil || ctx.Err() != nil {
		t.Fatalf("cairnd %v started (or hung) when it should have refused: %v\n%s", args, err, out)
	}
	return string(out)
}
