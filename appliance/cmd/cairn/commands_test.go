package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/appliance/api/apitest"
	"github.com/cairnhq/cairn/cluster/meta"
)

func TestSourceCommands(t *testing.T) {
	srv := apitest.NewServer(t)
	img := image(t, 1<<20)
	r := ok(t, srv, "source", "add", "file", "web", "--path", img)
	if !strings.Contains(r.stdout, "Added file source web (path="+img+")") {
		t.Errorf("source add printed %q", r.stdout)
	}
	fails(t, srv, exitConflict, "already exists", "source", "add", "file", "web", "--path", img)
	fails(t, srv, exitUsage, "--path is required", "source", "add", "file", "db")
	fails(t, srv, exitUsage, `source kind "nfs"`, "source", "add", "nfs", "db", "--path", img)
	fails(t, srv, exitUsage, "source name", "source", "add", "file", "Bad Name", "--path", img)

	// A relative path is made absolute: the appliance reads it, not us.
	t.Chdir(filepath.Dir(img))
	r = ok(t, srv, "source", "add", "file", "db", "--path", "disk.img", "-o", "json")
	src := jsonObject(t, r.stdout, "name", "kind", "config", "created")
	if cfg := src["config"].(map[string]any); cfg["path"] != img {
		t.Errorf("relative --path sent as %v, want %s", cfg["path"], img)
	}

	r = ok(t, srv, "source", "list")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") {
		t.Fatalf("source list:\n%s", r.stdout)
	}
	if column(t, lines[0], "KIND") != column(t, lines[2], "file") || column(t, lines[0], "CREATED") != column(t, lines[2], "2025-") {
		t.Errorf("source list columns not aligned:\n%s", r.stdout)
	}
	if l := jsonList(t, ok(t, srv, "source", "list", "-o", "json").stdout); len(l) != 2 || l[1]["name"] != "web" {
		t.Errorf("source list -o json: %v", l)
	}

	r = ok(t, srv, "object", "list", "web")
	if !strings.Contains(r.stdout, "disk.img") || !strings.Contains(r.stdout, "1.0 MiB") {
		t.Errorf("object list:\n%s", r.stdout)
	}
	if l := jsonList(t, ok(t, srv, "object", "list", "web", "-o", "json").stdout); len(l) != 1 || l[0]["size"] != float64(1<<20) {
		t.Errorf("object list -o json: %v", l)
	}
	fails(t, srv, exitNotFound, "not found", "object", "list", "nope")
}

func TestBackupRunWait(t *testing.T) {
	srv := withSource(t)
	r := ok(t, srv, "backup", "run", "web", "--wait", "-o", "json")
	rp := jsonObject(t, r.stdout, "id", "source", "object", "logical_bytes", "new_bytes", "fingerprint")
	if rp["source"] != "web" || rp["object"] != "disk.img" || rp["logical_bytes"] != float64(1<<20) {
		t.Errorf("restore point %v", rp)
	}
	// Not a terminal: plain lines, no carriage returns, a final state.
	if strings.Contains(r.stderr, "\r") {
		t.Errorf("progress redrawn on a non-terminal: %q", r.stderr)
	}
	if !strings.Contains(r.stderr, "backup job job-") || !strings.Contains(r.stderr, ": running") ||
		!strings.Contains(lastLine(r.stderr), ": succeeded, 1.0 MiB") {
		t.Errorf("progress lines:\n%s", r.stderr)
	}

	r = ok(t, srv, "backup", "run", "web/disk.img", "--full", "--wait")
	if !strings.HasPrefix(r.stdout, "Restore point rp-") || !strings.Contains(r.stdout, "fingerprint ") ||
		!strings.Contains(r.stdout, "size 1.0 MiB") {
		t.Errorf("text summary:\n%s", r.stdout)
	}
	fails(t, srv, exitNotFound, "not found", "backup", "run", "web/other.img")
	fails(t, srv, exitNotFound, "not found", "backup", "run", "nope")
	fails(t, srv, exitUsage, "want SOURCE or SOURCE/OBJECT", "backup", "run", "web/")
}

func TestBackupRunNoWait(t *testing.T) {
	srv := withSource(t)
	r := ok(t, srv, "backup", "run", "web")
	if !strings.Contains(r.stdout, "Started backup job job-") || !strings.Contains(r.stdout, "of web/disk.img") ||
		!strings.Contains(r.stdout, "cairn job show job-") {
		t.Errorf("backup run printed:\n%s", r.stdout)
	}
	job := jsonObject(t, ok(t, srv, "backup", "run", "web", "-o", "json").stdout, "id", "kind", "state", "progress")
	if job["kind"] != "backup" {
		t.Errorf("job %v", job)
	}
	if r.stderr != "" {
		t.Errorf("stderr without --wait: %q", r.stderr)
	}
}

func TestChangedExtents(t *testing.T) {
	srv := withSource(t)
	dir := t.TempDir()
	extents := filepath.Join(dir, "changed.txt")
	os.WriteFile(extents, []byte("# changed since yesterday\n0 4096\n\n8192 4096\n"), 0o644)

	// No base yet: the service's note reaches the user.
	r := ok(t, srv, "backup", "run", "web", "--changed-extents", extents, "--wait", "-o", "json")
	if !strings.Contains(r.stderr, "note: no earlier restore point") {
		t.Errorf("job message not shown:\n%s", r.stderr)
	}
	first := jsonObject(t, r.stdout)
	r = ok(t, srv, "backup", "run", "web", "--changed-extents", extents, "--wait", "-o", "json")
	incr := jsonObject(t, r.stdout, "base", "read_bytes")
	if incr["base"] != first["id"] || incr["read_bytes"] != float64(8192) {
		t.Errorf("incremental %v, want base %v and 8192 bytes read", incr, first["id"])
	}

	// An empty list means nothing changed; it is not dropped on the way.
	empty := filepath.Join(dir, "empty.txt")
	os.WriteFile(empty, []byte("# nothing\n"), 0o644)
	r = ok(t, srv, "backup", "run", "web", "--changed-extents", empty, "--wait", "-o", "json")
	if rp := jsonObject(t, r.stdout); rp["read_bytes"] != float64(0) || strings.Contains(r.stderr, "note:") {
		t.Errorf("empty extent list: %v\n%s", rp, r.stderr)
	}

	jobs, _ := srv.Service.Jobs(context.Background(), 100)
	bad := filepath.Join(dir, "bad.txt")
	os.WriteFile(bad, []byte("0 4096\n4096 lots\n"), 0o644)
	fails(t, srv, exitUsage, "line 2", "backup", "run", "web", "--changed-extents", bad)
	os.WriteFile(bad, []byte("-5 4096\n"), 0o644)
	fails(t, srv, exitUsage, "negative", "backup", "run", "web", "--changed-extents", bad)
	fails(t, srv, exitUsage, "no such file", "backup", "run", "web", "--changed-extents", filepath.Join(dir, "missing.txt"))
	fails(t, srv, exitUsage, "exclude each other", "backup", "run", "web", "--full", "--changed-extents", extents)
	if after, _ := srv.Service.Jobs(context.Background(), 100); len(after) != len(jobs) {
		t.Errorf("a bad extent file still started a job")
	}

	// Extents past the end of the image fail the job on the server: exit 1.
	os.WriteFile(bad, []byte("4194304 4096\n"), 0o644)
	r = fails(t, srv, exitFailure, "failed: extent", "backup", "run", "web", "--changed-extents", bad, "--wait")
	if r.stdout != "" {
		t.Errorf("a failed backup printed %q", r.stdout)
	}
}

func TestBackupListShow(t *testing.T) {
	srv := withSource(t)
	rp := jsonObject(t, ok(t, srv, "backup", "run", "web", "--wait", "-o", "json").stdout)["id"].(string)
	ok(t, srv, "source", "add", "file", "db", "--path", image(t, 4096))
	ok(t, srv, "backup", "run", "db", "--wait")

	r := ok(t, srv, "backup", "list")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || column(t, lines[0], "SIZE") != column(t, lines[1], "1.0 MiB") {
		t.Errorf("backup list:\n%s", r.stdout)
	}
	if l := jsonList(t, ok(t, srv, "backup", "list", "--source", "web", "-o", "json").stdout); len(l) != 1 || l[0]["id"] != rp {
		t.Errorf("backup list --source web: %v", l)
	}
	if l := jsonList(t, ok(t, srv, "backup", "list", "--object", "nothing", "-o", "json").stdout); len(l) != 0 {
		t.Errorf("backup list --object nothing: %v", l)
	}

	r = ok(t, srv, "backup", "show", rp)
	for _, want := range []string{"Restore point: " + rp, "Object:", "web/disk.img", "Fingerprint:", "DISK", "disk0"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("backup show lacks %q:\n%s", want, r.stdout)
		}
	}
	jsonObject(t, ok(t, srv, "backup", "show", rp, "-o", "json").stdout, "id", "disks", "verify", "fingerprint")
	fails(t, srv, exitNotFound, "not found", "backup", "show", "rp-nope")
}

func TestRestore(t *testing.T) {
	srv := withSource(t)
	rp := jsonObject(t, ok(t, srv, "backup", "run", "web", "--wait", "-o", "json").stdout)["id"].(string)
	to := filepath.Join(t.TempDir(), "restored.img")

	r := ok(t, srv, "restore", rp, "--to", "file:"+to)
	if !strings.Contains(r.stdout, "Started restore job") || !strings.Contains(r.stdout, "to file:"+to) {
		t.Errorf("restore printed:\n%s", r.stdout)
	}
	r = ok(t, srv, "restore", rp, "--to", "file:"+to+".2", "--wait")
	if !strings.Contains(r.stdout, "State:") || !strings.Contains(r.stdout, "succeeded") {
		t.Errorf("restore --wait printed:\n%s", r.stdout)
	}
	if fi, err := os.Stat(to + ".2"); err != nil || fi.Size() != 1<<20 {
		t.Errorf("restored file: %v, %v", fi, err)
	}
	fails(t, srv, exitConflict, "already exists", "restore", rp, "--to", "file:"+to+".2")
	job := jsonObject(t, ok(t, srv, "restore", rp, "--to", "file:"+to+".2", "--overwrite", "--wait", "-o", "json").stdout)
	if job["state"] != meta.JobSucceeded || job["kind"] != "restore" {
		t.Errorf("restore --overwrite: %v", job)
	}
	fails(t, srv, exitUsage, "want file:PATH", "restore", rp, "--to", to)
	fails(t, srv, exitUsage, "want file:PATH", "restore", rp)
	fails(t, srv, exitNotFound, "not found", "restore", "rp-nope", "--to", "file:"+to+".3")
}

func TestVerify(t *testing.T) {
	srv := withSource(t)
	rp := jsonObject(t, ok(t, srv, "backup", "run", "web", "--wait", "-o", "json").stdout)["id"].(string)

	res := jsonObject(t, ok(t, srv, "verify", rp, "-o", "json").stdout, "ok", "chunks_checked", "corrupt", "missing", "fingerprint")
	if res["ok"] != true {
		t.Errorf("verify: %v", res)
	}
	r := ok(t, srv, "verify", rp)
	if !strings.Contains(r.stdout, "Result:        OK") || !strings.Contains(r.stderr, "verify job") {
		t.Errorf("verify text:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}

	srv.Service.Corrupt(rp)
	r = fails(t, srv, exitFailure, "damaged: 1 corrupt", "verify", rp, "-o", "json")
	if res := jsonObject(t, r.stdout, "ok", "corrupt"); res["ok"] != false || res["corrupt"] != float64(1) {
		t.Errorf("verify of a corrupt restore point: %v", res)
	}
	fails(t, srv, exitNotFound, "not found", "verify", "rp-nope")
}

func TestJobCommands(t *testing.T) {
	srv := withSource(t)
	srv.Service.SetSteps(1 << 30) // jobs stay running
	job := jsonObject(t, ok(t, srv, "backup", "run", "web", "-o", "json").stdout)["id"].(string)

	r := ok(t, srv, "job", "list")
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(lines) != 2 || !strings.Contains(lines[1], job) {
		t.Errorf("job list:\n%s", r.stdout)
	}
	if l := jsonList(t, ok(t, srv, "job", "list", "--limit", "1", "-o", "json").stdout); len(l) != 1 || l[0]["id"] != job {
		t.Errorf("job list --limit 1: %v", l)
	}
	r = ok(t, srv, "job", "show", job)
	if !strings.Contains(r.stdout, "Job:") || !strings.Contains(r.stdout, "running") || !strings.Contains(r.stdout, "web/disk.img") {
		t.Errorf("job show:\n%s", r.stdout)
	}
	canceled := jsonObject(t, ok(t, srv, "job", "cancel", job, "-o", "json").stdout, "id", "state")
	if canceled["state"] != meta.JobCanceled {
		t.Errorf("job cancel: %v", canceled)
	}
	fails(t, srv, exitConflict, "already canceled", "job", "cancel", job)
	fails(t, srv, exitFailure, "canceled", "job", "show", job, "--wait")
	fails(t, srv, exitNotFound, "not found", "job", "show", "job-nope")
	fails(t, srv, exitUsage, "--limit 0", "job", "list", "--limit", "0")
}

// TestInterrupt stops following a job that keeps running: exit 130 and a
// message saying the job goes on.
func TestInterrupt(t *testing.T) {
	srv := withSource(t)
	srv.Service.SetSteps(1 << 30)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	r := runCLI(ctx, cliOpts{env: env(srv)}, "backup", "run", "web", "--wait")
	failsWith(t, r, exitInterrupted, "keeps running on the server", "backup", "run", "web", "--wait")
	jobs, _ := srv.Service.Jobs(context.Background(), 1)
	if len(jobs) != 1 || jobs[0].State != meta.JobRunning {
		t.Errorf("job after Ctrl-C: %+v", jobs)
	}
}

func TestProgressBarOnTerminal(t *testing.T) {
	srv := withSource(t)
	srv.Service.SetSteps(8)
	r := runCLI(context.Background(), cliOpts{env: env(srv), tty: true, width: 70}, "backup", "run", "web", "--wait")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "\r") || !strings.Contains(r.stderr, "[====") || !strings.HasSuffix(r.stderr, "\n") {
		t.Errorf("no progress bar drawn: %q", r.stderr)
	}
	for _, frame := range strings.Split(r.stderr, "\r") {
		frame = strings.TrimSuffix(strings.TrimSuffix(frame, "\n"), "\x1b[K")
		if len(frame) >= 70 {
			t.Errorf("bar frame wider than the terminal: %q", frame)
		}
	}
	if !strings.Contains(r.stderr, "ETA ") || !strings.Contains(r.stderr, "/s") {
		t.Errorf("bar lacks rate or ETA: %q", r.stderr)
	}
}
