package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cairnhq/cairn/appliance/api"
	"github.com/cairnhq/cairn/appliance/jobs"
	"github.com/cairnhq/cairn/cluster/meta"
	"github.com/cairnhq/cairn/plugins/vsphere"
	"github.com/cairnhq/cairn/plugins/vsphere/vcsimtest"
)

// The demo's simulated vCenter: VMs with 64 MiB disks whose first 48 MiB
// hold an ext4 filesystem; the rest is scratch space the "guest" of web
// writes a log record into every --demo-churn, so incrementals have
// something to read.
const (
	demoSource   = "demo"
	demoDisk     = 64 << 20
	demoFS       = 48 << 20
	demoPassword = "demo-password" // the simulator listens on loopback only
)

// demoVM is a VM of the demo and the files its filesystems hold.
type demoVM struct {
	name  string
	disks []map[string]int // per disk: file name → size of generated content
	tags  []string
}

var demoVMs = []demoVM{
	{"web", []map[string]int{{"index.html": 20 << 10, "access.log": 3 << 20, "assets/app.js": 400 << 10}}, []string{"tier-1"}},
	{"db", []map[string]int{{"pgdata/base.dat": 8 << 20}, {"wal/000000010000000000000001": 4 << 20}}, []string{"tier-0", "database"}},
	{"files", []map[string]int{{"docs/report.txt": 2 << 20, "docs/photo.raw": 5 << 20}}, nil},
}

// startDemo builds the demo images, starts the simulator and registers it
// as source "demo". The returned stop ends the simulator.
func startDemo(ctx context.Context, data, listen string, churn time.Duration, mgr *jobs.Manager, log *slog.Logger) (func(), error) {
	start := time.Now()
	dir := filepath.Join(data, "demo-vcsim")
	// The simulator's state lives in memory: each start builds it afresh.
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	imgDir := filepath.Join(dir, "images")
	if err := os.MkdirAll(imgDir, 0o700); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	var vms []vcsimtest.VM
	for _, v := range demoVMs {
		vm := vcsimtest.VM{Name: v.name, Tags: v.tags, CPUs: 2, MemoryMB: 2048}
		for i, files := range v.disks {
			img := filepath.Join(imgDir, fmt.Sprintf("%s-%d.img", v.name, i))
			if err := demoImage(ctx, img, v.name, files); err != nil {
				return nil, err
			}
			vm.Disks = append(vm.Disks, vcsimtest.Disk{Capacity: demoDisk, Image: img})
		}
		vms = append(vms, vm)
	}
	logFile := filepath.Join(dir, "snapshots.log")
	var logMu sync.Mutex
	sim, err := vcsimtest.Start(ctx, vcsimtest.Options{Dir: dir, VMs: vms, Listen: listen,
		User: "cairn@vsphere.local", Password: demoPassword,
		OnSnapshot: func(vm string, disk int, changeID, flat string) {
			logMu.Lock()
			defer logMu.Unlock()
			recordSnapshot(logFile, vm, disk, changeID, flat, log)
		}})
	if err != nil {
		return nil, fmt.Errorf("demo: start the vSphere simulator: %w", err)
	}
	for _, v := range vms {
		for i := range v.Disks {
			os.Remove(filepath.Join(imgDir, fmt.Sprintf("%s-%d.img", v.Name, i)))
		}
	}
	cfg := map[string]string{vsphere.SettingURL: sim.URL.String(), vsphere.SettingUser: sim.User, vsphere.SettingThumbprint: sim.Thumbprint}
	_, err = mgr.AddSource(ctx, api.AddSourceRequest{Name: demoSource, Kind: "vsphere", Config: cfg,
		Secrets: map[string]string{vsphere.SecretPassword: sim.Password}})
	switch {
	case err == nil:
	case errors.Is(err, meta.ErrExists):
		srcs, _ := mgr.Sources(ctx)
		for _, src := range srcs {
			if src.Name == demoSource && src.Config[vsphere.SettingURL] != cfg[vsphere.SettingURL] {
				log.Warn("source demo from an earlier run points elsewhere; start with the same --demo-vcsim address",
					"recorded", src.Config[vsphere.SettingURL], "now", cfg[vsphere.SettingURL])
			}
		}
	default:
		sim.Close()
		return nil, fmt.Errorf("demo: register source %s: %w", demoSource, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		guestChurn(cctx, sim, churn, log)
	}()
	log.Info("demo vSphere simulator running", "source", demoSource, "url", sim.URL.String(),
		"vms", strings.Join(sim.VMs(), ","), "took", time.Since(start).Round(time.Millisecond).String(),
		"try", "cairn object list demo; cairn backup run demo/web --wait")
	return func() { cancel(); <-done; sim.Close() }, nil
}

// demoImage makes a sparse image holding an ext4 filesystem with files of
// generated text and random bytes.
func demoImage(ctx context.Context, img, vm string, files map[string]int) error {
	src, err := os.MkdirTemp(filepath.Dir(img), "tree-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(src)
	for name, size := range files {
		p := filepath.Join(src, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, demoContent(vm, name, size), 0o644); err != nil {
			return err
		}
	}
	readme := fmt.Sprintf("This is the disk of the demo VM %q, served by Cairn's embedded vSphere simulator.\n", vm)
	if err := os.WriteFile(filepath.Join(src, "README"), []byte(readme), 0o644); err != nil {
		return err
	}
	if err := vcsimtest.Ext4Image(ctx, img, demoFS, src); err != nil {
		return fmt.Errorf("demo: build the disk of %s: %w", vm, err)
	}
	return nil
}

// demoContent is half text lines (which compress) and half random bytes
// (which do not), like real data.
func demoContent(vm, name string, size int) []byte {
	var b strings.Builder
	for i := 0; b.Len() < size/2; i++ {
		fmt.Fprintf(&b, "%s %s line %d: the quick brown fox jumps over the lazy dog\n", vm, name, i)
	}
	out := []byte(b.String())[:size/2]
	tail := make([]byte, size-len(out))
	_, _ = rand.Read(tail)
	return append(out, tail...)
}

// recordSnapshot appends the SHA-256 of a frozen disk to the log, so a
// restore can be checked against exactly what the snapshot held.
func recordSnapshot(logFile, vm string, disk int, changeID, flat string, log *slog.Logger) {
	f, err := os.Open(flat)
	if err != nil {
		log.Warn("demo: hash snapshot disk", "err", err)
		return
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		log.Warn("demo: hash snapshot disk", "err", err)
		return
	}
	line := fmt.Sprintf("%s vm=%s disk=%d change_id=%q sha256=%s\n", time.Now().UTC().Format(time.RFC3339),
		vm, disk, changeID, hex.EncodeToString(h.Sum(nil)))
	lf, err := os.OpenFile(logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		log.Warn("demo: snapshot log", "err", err)
		return
	}
	defer lf.Close()
	_, _ = lf.WriteString(line)
}

// guestChurn writes a 4 KiB log record into web's scratch space every
// interval, as a running guest would.
func guestChurn(ctx context.Context, sim *vcsimtest.Sim, every time.Duration, log *slog.Logger) {
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	const slots = (demoDisk - demoFS) / 4096
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rec := make([]byte, 4096)
		copy(rec, fmt.Sprintf("web guest log record %d at %s\n", i, time.Now().UTC().Format(time.RFC3339Nano)))
		if err := sim.Write("web", 0, demoFS+int64(i%slots)*4096, rec); err != nil {
			log.Warn("demo: guest write", "err", err)
		}
	}
}
