package lvm

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// ran is one command the real tools answered.
type ran struct {
	line           string
	stdout, stderr string
	code           int
}

// TestRealLVMAcceptsTheArguments runs the plugin's lvs, lvcreate, lvchange,
// lvremove and lvrename command lines through the host's real LVM tools on a volume
// group that does not exist. Without device-mapper nothing can succeed, but
// LVM parses the command line before it looks for the volume group, so a
// "not found" answer (and lvs's JSON report) shows the real tools accept
// every option and report column the plugin uses.
func TestRealLVMAcceptsTheArguments(t *testing.T) {
	if _, err := exec.LookPath(lookPath("lvs")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("lvs not found: tests/setup installs lvm2")
		}
		t.Skip("lvs not found: run tests/setup (lvm2)")
	}
	var got []ran
	cli := &CLI{Run: func(ctx context.Context, name string, args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, lookPath(name), args...)
		cmd.Env = append(os.Environ(), "LVM_SUPPRESS_FD_WARNINGS=1")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatalf("%s: %v", name, err)
		}
		got = append(got, ran{commandLine(name, args), stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()})
		return stdout.Bytes(), err
	}}
	const vg = "cairn-test-no-such-vg"
	ctx := t.Context()
	_, _ = cli.Volumes(ctx, vg)
	_ = cli.CreateSnapshot(ctx, vg, "data", "data.cairn-src.1")
	_ = cli.Activate(ctx, vg, "data.cairn-src.1")
	_ = cli.Deactivate(ctx, vg, "data.cairn-src.1")
	_ = cli.Remove(ctx, vg, "data.cairn-src.1")
	_ = cli.CreateThin(ctx, vg, "pool", "data.cairn-restore", 10<<20+12345)
	_ = cli.Rename(ctx, vg, "data.cairn-restore", "data")

	if len(got) != 7 {
		t.Fatalf("ran %d commands, want 7", len(got))
	}
	syntaxErrors := []string{"unrecognized option", "Error during parsing", "No command with matching syntax", "Unrecognised field", "Invalid argument"}
	for _, r := range got {
		for _, s := range syntaxErrors {
			if i := strings.Index(r.stderr, s); i >= 0 {
				t.Errorf("%s: exit %d, the real tool refused the command line: %s", r.line, r.code, strings.SplitN(r.stderr[i:], "\n", 2)[0])
			}
		}
	}
	// lvs still prints its report: check it is the shape ParseVolumes reads.
	if len(got) == 0 || !strings.HasPrefix(got[0].line, "lvs ") {
		t.Fatalf("no lvs run: %+v", got)
	}
	if vols, err := ParseVolumes([]byte(got[0].stdout)); err != nil || len(vols) != 0 || !strings.Contains(got[0].stdout, `"lv"`) {
		t.Errorf("lvs report %q: %v, %d volumes", got[0].stdout, err, len(vols))
	}
	for _, r := range got {
		// lvcreate may stop at its kernel check before looking for the VG.
		if !strings.HasPrefix(r.line, "lvcreate ") {
			if r.code != 5 || !strings.Contains(r.stderr, `Volume group "`+vg+`" not found`) {
				t.Errorf("%s: exit %d, %q; want exit 5, volume group not found", r.line, r.code, r.stderr)
			}
		}
	}
}
