package main

import (
	"bufio"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cairnhq/cairn/appliance/api"
	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/meta"
)

type harness struct{ bin string }

func newHarness(dir string) (*harness, error) {
	bin := filepath.Join(dir, "bin")
	cmd := exec.Command("go", "build", "-o", bin+"/", "github.com/cairnhq/cairn/appliance/cmd/cairnd")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("build cairnd: %w", err)
	}
	return &harness{bin: bin}, nil
}

// daemon is a cairnd process under measurement.
type daemon struct {
	cmd    *exec.Cmd
	client *api.Client
}

func (h *harness) start(data string) (*daemon, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(filepath.Join(h.bin, "cairnd"), "--data", data, "--listen", addr, "--log-level", "warn")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	d := &daemon{cmd: cmd}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		ca, err1 := os.ReadFile(filepath.Join(data, "ca.pem"))
		tok, err2 := os.ReadFile(filepath.Join(data, "admin.token"))
		if err1 != nil || err2 != nil {
			continue
		}
		c, err := api.NewClient("https://"+addr, ca, strings.TrimSpace(string(tok)))
		if err != nil {
			return nil, err
		}
		if c.Health(context.Background()) == nil {
			d.client = c
			return d, nil
		}
	}
	d.stop()
	return nil, fmt.Errorf("cairnd did not start")
}

func (d *daemon) stop() {
	d.cmd.Process.Signal(syscall.SIGTERM)
	d.cmd.Wait()
}

// peakRSS is the daemon's high-water resident set size.
func (d *daemon) peakRSS() int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil {
		return -1
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return -1
}

// wait follows a job to its end and returns it with its wall time.
func (d *daemon) wait(j meta.Job, err error) (meta.Job, time.Duration, error) {
	if err != nil {
		return j, 0, err
	}
	start := time.Now()
	ctx := context.Background()
	for {
		j, err = d.client.Job(ctx, j.ID)
		if err != nil {
			return j, 0, err
		}
		if j.Done() {
			if j.State != meta.JobSucceeded {
				return j, 0, fmt.Errorf("job %s %s: %s", j.ID, j.State, j.Error)
			}
			return j, time.Since(start), nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (d *daemon) backup(source string, req api.BackupRequest) (meta.RestorePoint, time.Duration, error) {
	req.Source = source
	ctx := context.Background()
	j, took, err := d.wait(d.client.StartBackup(ctx, req))
	if err != nil {
		return meta.RestorePoint{}, 0, err
	}
	rp, err := d.client.RestorePoint(ctx, j.RestorePoint)
	return rp, took, err
}

// cryptoLimit is what every core can do computing HMAC-SHA-256 and
// AES-256-GCM over the same bytes: the ceiling for ingest of new data.
func cryptoLimit(data []byte) (float64, error) {
	key, err := chunk.NewKey(chunk.KeyID{1}, make([]byte, chunk.SecretSize))
	if err != nil {
		return 0, err
	}
	block, _ := aes.NewCipher(make([]byte, 32))
	gcm, _ := cipher.NewGCM(block)
	workers := runtime.NumCPU()
	blocks := len(data) / chunk.BlockSize
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			nonce := make([]byte, gcm.NonceSize())
			out := make([]byte, 0, chunk.BlockSize+gcm.Overhead())
			for b := w; b < blocks; b += workers {
				p := data[b*chunk.BlockSize : (b+1)*chunk.BlockSize]
				key.Sum(p)
				out = gcm.Seal(out[:0], nonce, p, nil)
			}
		})
	}
	wg.Wait()
	return float64(blocks*chunk.BlockSize) / time.Since(start).Seconds(), nil
}

// ingest is (a): a 2 GiB high-entropy image, backed up in full into a data
// directory on tmpfs (the pipeline's own speed) and on disk.
func (h *harness) ingest(r *report, shm, dir string) error {
	const size = 2 << 30
	data := make([]byte, size)
	rand.Read(data)
	// The image lives on tmpfs when there is one, so that reading the
	// source measures nothing but the pipeline.
	imgDir := dir
	if shm != "" {
		imgDir = shm
	}
	img := filepath.Join(imgDir, fmt.Sprintf("cairn-bench-entropy-%d.img", os.Getpid()))
	if err := os.WriteFile(img, data, 0o600); err != nil {
		return err
	}
	defer os.Remove(img)
	syscall.Sync()
	limit, err := cryptoLimit(data)
	if err != nil {
		return err
	}
	data = nil
	runtime.GC()

	r.section("(a) Ingest of a 2 GiB high-entropy image")
	r.line("Crypto limit (%d cores, HMAC-SHA-256 + AES-256-GCM over the same bytes): **%.0f MB/s**.\n", runtime.NumCPU(), limit/1e6)
	r.line("Each pass is a full backup by a fresh cairnd into a fresh data directory. The first pass into tmpfs")
	r.line("writes memory this VM has not touched before, which costs a hypervisor fault per page; later passes")
	r.line("reuse it, as a long-running appliance does. The disk pass is bound by the disk (fsync before every ack).\n")
	r.header("data directory", "pass", "full backup", "throughput", "fraction of crypto limit (goal ≥ 0.5)", "cairnd peak RSS")
	type pass struct{ name, where, label string }
	var passes []pass
	if shm != "" {
		passes = append(passes, pass{"tmpfs", shm, "1 (cold memory)"}, pass{"tmpfs", shm, "2 (warm memory)"}, pass{"tmpfs", shm, "3 (warm memory)"})
	}
	passes = append(passes, pass{"disk", dir, "1"})
	for _, p := range passes {
		data, err := os.MkdirTemp(p.where, "cairn-bench-data-")
		if err != nil {
			return err
		}
		d, err := h.start(data)
		if err != nil {
			os.RemoveAll(data)
			return err
		}
		if _, err := d.client.AddSource(context.Background(), api.AddSourceRequest{Name: "entropy", Kind: "file", Config: map[string]string{"path": img}}); err != nil {
			d.stop()
			os.RemoveAll(data)
			return err
		}
		syscall.Sync()
		rp, took, err := d.backup("entropy", api.BackupRequest{})
		rss := d.peakRSS()
		d.stop()
		os.RemoveAll(data)
		if err != nil {
			return err
		}
		rate := float64(rp.ReadBytes) / took.Seconds()
		r.row(p.name, p.label, fmt.Sprintf("%.2f s", took.Seconds()), mbps(rp.ReadBytes, took), fmt.Sprintf("**%.2f**", rate/limit), mib(rss))
	}
	return nil
}
