// Package cindertest runs a small real OpenStack Cinder deployment on
// loopback for tests: Debian's rabbitmq-server, cinder-api,
// cinder-scheduler and cinder-volume, with sqlite, the
// noauth_include_project_id strategy (no Keystone) and a file-backed volume
// driver (cairn_file_driver.py, a subclass of the FakeLoggingVolumeDriver
// that python3-cinder ships) whose volumes and snapshots are sparse files and
// whose connections are "driver_volume_type: local" with a device_path.
//
// Start brings everything up in a new temporary directory on free loopback
// ports and returns when the scheduler sees the volume backend; Stop ends
// every process it started (epmd included) and removes the directory. The
// packages come from tests/setup. One deployment serves a test binary: Get
// starts it on first use and Main, from TestMain, stops it. Keystone (in
// keystone.go) adds a real Keystone and a Keystone-authenticated cinder-api
// for the tests that need them.
package cindertest

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

//go:embed cairn_file_driver.py
var driverSource []byte

// Project is the project (tenant) ID the deployment's noauth API accepts in
// URLs; any [0-9a-zA-Z_-]+ works, this one is what the tests use.
const Project = "cairntest"

// Backend is the name of the deployment's only volume backend.
const Backend = "cairnfile"

// Deployment is a running Cinder.
type Deployment struct {
	// Dir holds the state, configuration, logs, and in Dir/files the
	// volumes and snapshots as sparse files named volume-ID and snapshot-ID.
	Dir string
	// Endpoint is the block-storage v3 URL without the project, as
	// gophercloud's noauth client wants it: http://127.0.0.1:PORT/v3/.
	Endpoint string
	// APIAddr is the host:port cinder-api listens on.
	APIAddr string
	// Started is how long Start took.
	Started time.Duration

	procs []*proc // in start order; stopped in reverse
	conf  string
}

type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Required lists the programs Start runs; tests/setup installs them.
var Required = []string{
	"/usr/bin/cinder-api", "/usr/bin/cinder-scheduler", "/usr/bin/cinder-volume",
	"/usr/bin/cinder-manage", "/usr/lib/rabbitmq/bin/rabbitmq-server", "/usr/bin/epmd",
}

// Missing returns the required programs that are not installed.
func Missing() []string {
	var out []string
	for _, p := range Required {
		if _, err := os.Stat(p); err != nil {
			out = append(out, p)
		}
	}
	return out
}

// Start runs a deployment; ctx bounds the start only.
func Start(ctx context.Context) (d *Deployment, err error) {
	if m := Missing(); len(m) > 0 {
		return nil, fmt.Errorf("start cinder: not installed (run tests/setup): %s", strings.Join(m, ", "))
	}
	t0 := time.Now()
	dir, err := os.MkdirTemp("", "cairn-cinder-")
	if err != nil {
		return nil, fmt.Errorf("start cinder: %w", err)
	}
	d = &Deployment{Dir: dir}
	defer func() {
		if err != nil {
			err = fmt.Errorf("start cinder: %w%s", err, d.logTail())
			d.Stop()
		}
	}()
	ports, err := freePorts(4)
	if err != nil {
		return d, err
	}
	epmdPort, amqpPort, distPort, apiPort := ports[0], ports[1], ports[2], ports[3]
	for _, sub := range []string{"files", "state", "log", "lock", "rabbit", "py"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return d, err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "py", "cairn_file_driver.py"), driverSource, 0o600); err != nil {
		return d, err
	}
	if err := d.startRabbit(ctx, epmdPort, amqpPort, distPort); err != nil {
		return d, err
	}
	d.APIAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(apiPort))
	d.Endpoint = "http://" + d.APIAddr + "/v3/"
	d.conf = filepath.Join(dir, "cinder.conf")
	if err := os.WriteFile(d.conf, []byte(d.config(amqpPort, apiPort)), 0o600); err != nil {
		return d, err
	}
	if out, err := d.command(ctx, "/usr/bin/cinder-manage", "--config-file", d.conf, "db", "sync").CombinedOutput(); err != nil {
		return d, fmt.Errorf("cinder-manage db sync: %w: %s", err, lastLines(string(out), 5))
	}
	for _, svc := range []string{"cinder-api", "cinder-scheduler", "cinder-volume"} {
		if err := d.spawn(svc, d.command(context.Background(), "/usr/bin/"+svc, "--config-file", d.conf)); err != nil {
			return d, err
		}
	}
	if err := d.waitReady(ctx); err != nil {
		return d, err
	}
	d.Started = time.Since(t0)
	return d, nil
}

// command prepares a Cinder command with the test driver importable. The
// Debian interpreter is named explicitly in the scripts' shebang, so only the
// environment matters here.
func (d *Deployment) command(ctx context.Context, path string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = append(os.Environ(),
		"PYTHONPATH="+filepath.Join(d.Dir, "py"),
		"CAIRN_CINDER_FILES="+filepath.Join(d.Dir, "files"),
		"HOME="+d.Dir,
	)
	cmd.Dir = d.Dir
	return cmd
}

// config is cinder.conf; see ../shared/notes/cinder-on-debian.md for why
// each setting is there.
func (d *Deployment) config(amqpPort, apiPort int) string {
	dir := d.Dir
	return fmt.Sprintf(`[DEFAULT]
auth_strategy = noauth_include_project_id
project_id_regex = [0-9a-zA-Z_\-]+
transport_url = rabbit://guest:guest@127.0.0.1:%d/
osapi_volume_listen = 127.0.0.1
osapi_volume_listen_port = %d
osapi_volume_workers = 1
scheduler_driver_init_wait_time = 1
periodic_interval = 5
enabled_backends = %s
default_volume_type = __DEFAULT__
state_path = %s/state
log_dir = %s/log
api_paste_config = /etc/cinder/api-paste.ini
rootwrap_config = /etc/cinder/rootwrap.conf
my_ip = 127.0.0.1
host = cairntest
debug = false

[database]
connection = sqlite:///%s/cinder.sqlite?timeout=60
sqlite_synchronous = false

[oslo_concurrency]
lock_path = %s/lock

[oslo_messaging_rabbit]
rabbit_qos_prefetch_count = 0

[%s]
volume_driver = cairn_file_driver.FileDriver
volume_backend_name = %s
`, amqpPort, apiPort, Backend, dir, dir, dir, dir, Backend, Backend)
}

// startRabbit runs epmd and rabbitmq-server as this process's children, on
// the given loopback ports, with all state under d.Dir/rabbit.
func (d *Deployment) startRabbit(ctx context.Context, epmdPort, amqpPort, distPort int) error {
	base := filepath.Join(d.Dir, "rabbit")
	epmd := exec.Command("/usr/bin/epmd", "-port", strconv.Itoa(epmdPort), "-address", "127.0.0.1")
	if err := d.spawn("epmd", epmd); err != nil {
		return err
	}
	if err := waitTCP(ctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(epmdPort)), 10*time.Second); err != nil {
		return fmt.Errorf("epmd: %w", err)
	}
	if err := os.WriteFile(filepath.Join(base, ".erlang.cookie"), []byte("cairntestcookie"), 0o400); err != nil {
		return err
	}
	rabbit := exec.Command("/usr/lib/rabbitmq/bin/rabbitmq-server")
	rabbit.Env = append(os.Environ(),
		"HOME="+base,
		"RABBITMQ_HOME=/usr/lib/rabbitmq",
		"RABBITMQ_NODENAME=cairn"+strconv.Itoa(amqpPort)+"@localhost",
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT="+strconv.Itoa(amqpPort),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(distPort),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(base, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(d.Dir, "log"),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(base, "rabbitmq"),
		"RABBITMQ_ADVANCED_CONFIG_FILE="+filepath.Join(base, "advanced.config"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(base, "enabled_plugins"),
		"RABBITMQ_PID_FILE="+filepath.Join(base, "rabbit.pid"),
		"RABBITMQ_SERVER_ERL_ARGS=+S 1:1 +A 4",
		"ERL_EPMD_ADDRESS=127.0.0.1",
		"ERL_EPMD_PORT="+strconv.Itoa(epmdPort),
	)
	rabbit.Dir = base
	if err := os.WriteFile(filepath.Join(base, "enabled_plugins"), []byte("[].\n"), 0o600); err != nil {
		return err
	}
	if err := d.spawn("rabbitmq-server", rabbit); err != nil {
		return err
	}
	// Not waited for: Cinder's services retry until rabbit listens, and the
	// database sync runs meanwhile.
	return nil
}

// spawn starts cmd in its own process group, logging to d.Dir/log/NAME.out.
func (d *Deployment) spawn(name string, cmd *exec.Cmd) error {
	out, err := os.Create(filepath.Join(d.Dir, "log", name+".out"))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("%s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	d.procs = append(d.procs, p)
	return nil
}

// waitReady polls the scheduler's pools until the backend is listed.
func (d *Deployment) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	url := d.Endpoint + Project + "/scheduler-stats/get_pools"
	var last error
	for {
		for _, p := range d.procs {
			select {
			case <-p.done:
				return fmt.Errorf("%s exited: %v", p.name, p.err)
			default:
			}
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Header.Set("X-Auth-Token", "admin:"+Project)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			var b strings.Builder
			buf := make([]byte, 4096)
			for {
				n, rerr := resp.Body.Read(buf)
				b.Write(buf[:n])
				if rerr != nil {
					break
				}
			}
			resp.Body.Close()
			if resp.StatusCode == 200 && strings.Contains(b.String(), Backend) {
				return nil
			}
			last = fmt.Errorf("get_pools: %s %s", resp.Status, lastLines(b.String(), 2))
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cinder not ready: %v", last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// StopAPI stops cinder-api alone (the appliance losing the API); the other
// services keep running.
func (d *Deployment) StopAPI() {
	for _, p := range d.procs {
		if p.name == "cinder-api" {
			stopProc(p)
		}
	}
}

// Stop ends every process in reverse start order and removes Dir. It is
// safe to call more than once. The error lists whatever survived: a
// process group still alive or the directory still there.
func (d *Deployment) Stop() error {
	var left []string
	for i := len(d.procs) - 1; i >= 0; i-- {
		p := d.procs[i]
		stopProc(p)
		if err := syscall.Kill(-p.cmd.Process.Pid, 0); !errors.Is(err, syscall.ESRCH) {
			left = append(left, fmt.Sprintf("%s (process group %d)", p.name, p.cmd.Process.Pid))
		}
	}
	d.procs = nil
	if d.Dir != "" {
		if err := os.RemoveAll(d.Dir); err != nil {
			left = append(left, err.Error())
		}
	}
	if len(left) > 0 {
		return fmt.Errorf("stop cinder: still there: %s", strings.Join(left, ", "))
	}
	return nil
}

// stopProc sends SIGTERM to the process group, then SIGKILL after a grace
// period, and waits for the process.
func stopProc(p *proc) {
	select {
	case <-p.done:
		return
	default:
	}
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	// Children left in the group (eventlet workers, erl_child_setup).
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// logTail returns the end of every service's output, for start errors.
func (d *Deployment) logTail() string {
	if d == nil || d.Dir == "" {
		return ""
	}
	var b strings.Builder
	for _, p := range d.procs {
		out, err := os.ReadFile(filepath.Join(d.Dir, "log", p.name+".out"))
		if err == nil && len(out) > 0 {
			fmt.Fprintf(&b, "\n--- %s:\n%s", p.name, lastLines(string(out), 8))
		}
	}
	return b.String()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func waitTCP(ctx context.Context, addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s after %s: %w", addr, limit, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ErrUnavailable is returned by Main's deployment when the tests cannot run
// Cinder here (not root, or packages missing outside CI).
var ErrUnavailable = errors.New("cinder deployment unavailable")
