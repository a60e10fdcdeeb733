package kvm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cairnhq/cairn/plugins/nbd"
)

// Tools names the QEMU programs the plugin runs; empty fields mean the ones
// on PATH.
type Tools struct {
	QemuImg string // qemu-img
	QemuNBD string // qemu-nbd
	// TempDir holds the private folders of qemu-nbd's sockets; "" is the
	// system's temporary folder.
	TempDir string
}

func (t Tools) img() string { return or(t.QemuImg, "qemu-img") }
func (t Tools) nbd() string { return or(t.QemuNBD, "qemu-nbd") }
func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// qemuImg runs qemu-img and returns its standard output; a failure carries
// the tool's own message.
func (t Tools) qemuImg(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, t.img(), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("qemu-img %s: %s", args[0], msg)
	}
	return out, nil
}

// imageInfo is what `qemu-img info --output=json` says about an image.
type imageInfo struct {
	VirtualSize    int64  `json:"virtual-size"`
	Format         string `json:"format"`
	FormatSpecific struct {
		Type string `json:"type"`
		Data struct {
			Compat  string   `json:"compat"`
			Corrupt bool     `json:"corrupt"`
			Bitmaps []bitmap `json:"bitmaps"`
		} `json:"data"`
	} `json:"format-specific"`
}

type bitmap struct {
	Name        string   `json:"name"`
	Flags       []string `json:"flags"`
	Granularity int64    `json:"granularity"`
}

// usable reports whether the bitmap recorded every write since it was added:
// it is enabled ("auto") and was not left "in-use" by a QEMU that stopped
// without saving it.
func (b bitmap) usable() bool {
	enabled := false
	for _, f := range b.Flags {
		switch f {
		case "in-use":
			return false
		case "auto":
			enabled = true
		}
	}
	return enabled
}

// parseInfo decodes qemu-img info's JSON.
func parseInfo(out []byte) (*imageInfo, error) {
	var info imageInfo
	if err := json.Unmarshal(out, &info); err != nil {
		return nil, fmt.Errorf("decode qemu-img info: %w", err)
	}
	if info.Format == "" || info.VirtualSize < 0 {
		return nil, fmt.Errorf("decode qemu-img info: no format or a negative size")
	}
	return &info, nil
}

// info reads the image's metadata. Without -U qemu-img takes QEMU's image
// lock, so an image a running VM holds is refused here.
func (t Tools) info(ctx context.Context, path string) (*imageInfo, error) {
	out, err := t.qemuImg(ctx, "info", "--output=json", path)
	if err != nil {
		return nil, err
	}
	return parseInfo(out)
}

// server is a qemu-nbd process serving one image on a Unix socket in a
// private folder.
type server struct {
	cmd    *exec.Cmd
	dir    string
	sock   string
	exited chan struct{}
	stderr lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 64<<10 {
		return len(p), nil
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.TrimSpace(l.b.String())
}

// serve starts qemu-nbd with args (the image last) and connects to it.
func (t Tools) serve(ctx context.Context, opts nbd.Options, args ...string) (*server, *nbd.Client, error) {
	dir, err := os.MkdirTemp(t.TempDir, "cairn-kvm-")
	if err != nil {
		return nil, nil, fmt.Errorf("qemu-nbd socket folder: %w", err)
	}
	s := &server{dir: dir, sock: filepath.Join(dir, "nbd.sock"), exited: make(chan struct{})}
	// --persistent keeps serving between connections; --shared=0 allows any
	// number of them (reads and block status use separate ones).
	args = append([]string{"--persistent", "--shared=0", "--socket=" + s.sock}, args...)
	s.cmd = exec.Command(t.nbd(), args...)
	s.cmd.Stderr = &s.stderr
	// The export must not outlive the appliance that asked for it.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("start qemu-nbd: %w", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	c, err := s.connect(ctx, opts)
	if err != nil {
		_ = s.stop()
		return nil, nil, err
	}
	return s, c, nil
}

// connect dials the server until it listens, exits, or 30 s pass.
func (s *server) connect(ctx context.Context, opts nbd.Options) (*nbd.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		if _, err := os.Stat(s.sock); err == nil {
			c, err := nbd.Dial(ctx, "unix", s.sock, opts)
			if err == nil {
				return c, nil
			}
			if !errors.Is(err, syscall.ECONNREFUSED) {
				return nil, fmt.Errorf("connect to qemu-nbd: %w", err)
			}
		}
		select {
		case <-s.exited:
			return nil, fmt.Errorf("qemu-nbd exited: %s", s.stderr.String())
		case <-ctx.Done():
			return nil, fmt.Errorf("qemu-nbd did not listen on %s: %w", s.sock, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// dial opens another connection to the running server.
func (s *server) dial(ctx context.Context, opts nbd.Options) (*nbd.Client, error) {
	c, err := nbd.Dial(ctx, "unix", s.sock, opts)
	if err != nil {
		return nil, fmt.Errorf("connect to qemu-nbd: %w", err)
	}
	return c, nil
}

// stop ends qemu-nbd (SIGTERM, then SIGKILL after 10 s) and removes its
// folder. A server that exited by itself before stop is reported.
func (s *server) stop() error {
	var err error
	select {
	case <-s.exited:
		if st := s.cmd.ProcessState; !st.Success() {
			err = fmt.Errorf("qemu-nbd exited early (%s)", st)
			if msg := s.stderr.String(); msg != "" {
				err = fmt.Errorf("%w: %s", err, msg)
			}
		}
	default:
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
			err = errors.New("qemu-nbd did not stop within 10 s of SIGTERM and was killed")
		}
	}
	if rerr := os.RemoveAll(s.dir); rerr != nil && err == nil {
		err = rerr
	}
	return err
}
