// Package e2e runs real cairnd and cairn processes on loopback, the way an
// admin would, and checks what they leave on disk.
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnhq/cairn/appliance/api"
	"github.com/cairnhq/cairn/cluster/meta"
	"github.com/cairnhq/cairn/plugins/openstack/cindertest"
)

var bin string // folder holding the cairnd and cairn binaries built for this run

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cairn-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	build := exec.Command("go", "build", "-race", "-o", dir+"/", "github.com/cairnhq/cairn/appliance/cmd/cairnd", "github.com/cairnhq/cairn/appliance/cmd/cairn")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build binaries:", err)
		os.Exit(1)
	}
	bin = dir
	// cindertest.Main runs the tests and stops the Cinder deployment that
	// the OpenStack test starts.
	code := cindertest.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// daemon is a running cairnd.
type daemon struct {
	t      *testing.T
	data   string
	addr   string
	cmd    *exec.Cmd
	log    *os.File
	client *api.Client
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startDaemon starts cairnd on data (reusing addr when restarting) and waits
// until its API answers.
func startDaemon(t *testing.T, data, addr string, extra ...string) *daemon {
	t.Helper()
	if addr == "" {
		addr = freeAddr(t)
	}
	logf, err := os.OpenFile(filepath.Join(t.TempDir(), "cairnd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--data", data, "--listen", addr, "--log-format", "text"}, extra...)
	cmd := exec.Command(filepath.Join(bin, "cairnd"), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{t: t, data: data, addr: addr, cmd: cmd, log: logf}
	t.Cleanup(d.kill)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatalf("cairnd did not come up within 60 s; log:\n%s", d.logText())
		}
		select {
		case err := <-exited:
			t.Fatalf("cairnd exited: %v; log:\n%s", err, d.logText())
		case <-time.After(100 * time.Millisecond):
		}
		ca, err1 := os.ReadFile(filepath.Join(data, "ca.pem"))
		token, err2 := os.ReadFile(filepath.Join(data, "admin.token"))
		if err1 != nil || err2 != nil {
			continue
		}
		c, err := api.NewClient("https://"+addr, ca, strings.TrimSpace(string(token)))
		if err != nil {
			t.Fatal(err)
		}
		if c.Health(context.Background()) == nil {
			d.client = c
			go func() { <-exited }() // keep reaping after we stop waiting
			return d
		}
	}
}

func (d *daemon) logText() string {
	b, _ := os.ReadFile(d.log.Name())
	return string(b)
}

// kill stops cairnd with SIGKILL: no chance to clean up.
func (d *daemon) kill() {
	if d.cmd.Process != nil {
		d.cmd.Process.Signal(syscall.SIGKILL)
		for range 100 {
			if d.cmd.Process.Signal(syscall.Signal(0)) != nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// cairn runs the CLI against d and returns stdout, stderr and the exit code.
func (d *daemon) cairn(args ...string) (string, string, int) {
	d.t.Helper()
	full := append([]string{"--server", "https://" + d.addr, "--ca", filepath.Join(d.data, "ca.pem"),
		"--token-file", filepath.Join(d.data, "admin.token")}, args...)
	cmd := exec.Command(filepath.Join(bin, "cairn"), full...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		d.t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// ok runs the CLI and fails the test unless it exits 0.
func (d *daemon) ok(args ...string) string {
	d.t.Helper()
	out, errs, code := d.cairn(args...)
	if code != 0 {
		d.t.Fatalf("cairn %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// backup runs a backup with --wait -o json and decodes the restore point.
func (d *daemon) backup(args ...string) meta.RestorePoint {
	d.t.Helper()
	out := d.ok(append([]string{"backup", "run", "--wait", "-o", "json"}, args...)...)
	var rp meta.RestorePoint
	if err := json.Unmarshal([]byte(out), &rp); err != nil {
		d.t.Fatalf("decode restore point: %v\n%s", err, out)
	}
	if rp.ID == "" || rp.Fingerprint == "" {
		d.t.Fatalf("restore point without id or fingerprint: %s", out)
	}
	return rp
}

// fsImage writes a sparse disk image of size bytes holding an ext4
// filesystem made by mkfs.ext4 -d from a tree of text and random files.
func fsImage(t *testing.T, path string, size int64, payload int) {
	t.Helper()
	tree := t.TempDir()
	for i := range 40 {
		dir := filepath.Join(tree, fmt.Sprintf("dir%02d", i%7))
		os.MkdirAll(dir, 0o755)
		var b []byte
		if i%3 == 0 {
			b = make([]byte, payload/40)
			rand.Read(b)
		} else {
			b = bytes.Repeat([]byte(fmt.Sprintf("line %d of a text file that compresses well\n", i)), payload/40/45)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("file%03d", i)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(size)
	f.Close()
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-d", tree, path).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
}

func sameFile(t *testing.T, a, b string) {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(x, y) {
		t.Fatalf("%s and %s differ", a, b)
	}
}
