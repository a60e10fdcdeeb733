// Package qemunbd runs qemu-nbd, QEMU's NBD server, for one image on a Unix
// socket in a private folder, and connects Cairn's NBD client to it.
//
// qemu-nbd opens whatever QEMU's block layer opens: image files (raw,
// qcow2, ...) and, through Debian's qemu-block-extra, network volumes
// (iscsi://, nfs://, rbd:...), with no kernel module. The plugins use it to
// read dirty bitmaps of qcow2 images and to reach network volumes in user
// space.
package qemunbd

import (
	"bytes"
	"context"
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

// Config says how to start qemu-nbd.
type Config struct {
	Program string   // the qemu-nbd binary; empty means "qemu-nbd" on PATH
	TempDir string   // where the socket folder is made; empty means os.TempDir
	Args    []string // options and the image, last (--socket is added)
	// Env, when not nil, is the process environment (e.g. a Ceph keyring
	// path); nil inherits this process's.
	Env []string
}

// Server is a qemu-nbd process serving one image. It keeps serving between
// connections and allows any number of them.
type Server struct {
	cmd    *exec.Cmd
	dir    string
	sock   string
	exited chan struct{}
	stderr lockedBuffer
}

// Start starts qemu-nbd and connects to it with opts; the server and that
// first connection are returned. On error nothing is left running.
func Start(ctx context.Context, cfg Config, opts nbd.Options) (*Server, *nbd.Client, error) {
	dir, err := os.MkdirTemp(cfg.TempDir, "cairn-nbd-")
	if err != nil {
		return nil, nil, fmt.Errorf("qemu-nbd socket folder: %w", err)
	}
	s := &Server{dir: dir, sock: filepath.Join(dir, "nbd.sock"), exited: make(chan struct{})}
	prog := cfg.Program
	if prog == "" {
		prog = "qemu-nbd"
	}
	// --persistent keeps serving between connections; --shared=0 allows any
	// number of them (reads and block status use separate ones).
	args := append([]string{"--persistent", "--shared=0", "--socket=" + s.sock}, cfg.Args...)
	s.cmd = exec.Command(prog, args...)
	s.cmd.Stderr = &s.stderr
	s.cmd.Env = cfg.Env
	// The export must not outlive the appliance that asked for it.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("start qemu-nbd: %w", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	c, err := s.connect(ctx, opts)
	if err != nil {
		_ = s.Stop()
		return nil, nil, err
	}
	return s, c, nil
}

// connect dials the server until it listens, exits, or 30 s pass.
func (s *Server) connect(ctx context.Context, opts nbd.Options) (*nbd.Client, error) {
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

// Dial opens another connection to the running server.
func (s *Server) Dial(ctx context.Context, opts nbd.Options) (*nbd.Client, error) {
	c, err := nbd.Dial(ctx, "unix", s.sock, opts)
	if err != nil {
		return nil, fmt.Errorf("connect to qemu-nbd: %w", err)
	}
	return c, nil
}

// Stop ends qemu-nbd (SIGTERM, then SIGKILL after 10 s) and removes its
// folder. A server that exited by itself before Stop is reported.
func (s *Server) Stop() error {
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
