package cindertest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/noauth"
)

// shared is the deployment of this test binary, started by the first Get.
var (
	once     sync.Once
	shared   *Deployment
	startErr error
)

// Main is a TestMain body: it runs the tests and then stops the deployment
// the first Get started, whatever happened. A binary whose tests never call
// Get (a fuzz run) starts nothing.
func Main(m *testing.M) int {
	code := m.Run()
	if shared != nil && code != 0 {
		fmt.Fprint(os.Stderr, shared.Errors(40))
	}
	if shared != nil {
		if err := shared.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "cindertest:", err)
			code = max(code, 1)
		}
	}
	return code
}

func start() {
	switch {
	case os.Geteuid() != 0:
		startErr = fmt.Errorf("%w: not root", ErrUnavailable)
	case len(Missing()) > 0:
		startErr = fmt.Errorf("%w: not installed (run tests/setup): %v", ErrUnavailable, Missing())
	default:
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		shared, startErr = Start(ctx)
		cancel()
		if startErr == nil {
			fmt.Fprintf(os.Stderr, "cindertest: Cinder started in %.1fs at %s\n", shared.Started.Seconds(), shared.Endpoint)
		}
	}
}

// Get returns the binary's deployment, starting it on the first call, or
// ends the test: a skip when Cinder cannot run on this machine outside CI,
// a failure otherwise. The test binary's TestMain must call Main, which
// stops it.
func Get(t testing.TB) *Deployment {
	t.Helper()
	once.Do(start)
	if shared != nil {
		return shared
	}
	if os.Getenv("CI") == "" && isUnavailable(startErr) {
		t.Skipf("cindertest: %v", startErr)
	}
	t.Fatalf("cindertest: %v", startErr)
	return nil
}

func isUnavailable(err error) bool {
	for e := err; e != nil; {
		if e == ErrUnavailable {
			return true
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		e = u.Unwrap()
	}
	return false
}

// Client returns a gophercloud block-storage client for the deployment's
// project at endpoint (Endpoint, or a proxy in front of it), at microversion
// 3.44 (attachments with complete).
func (d *Deployment) Client(endpoint string) (*gophercloud.ServiceClient, error) {
	pc, err := noauth.NewClient(gophercloud.AuthOptions{Username: "admin", TenantName: Project})
	if err != nil {
		return nil, err
	}
	pc.HTTPClient = http.Client{Timeout: 30 * time.Second}
	sc, err := noauth.NewBlockStorageNoAuthV3(pc, noauth.EndpointOpts{CinderEndpoint: endpoint})
	if err != nil {
		return nil, err
	}
	sc.Microversion = "3.44"
	return sc, nil
}

// VolumeFile is the sparse file holding volume id's bytes.
func (d *Deployment) VolumeFile(id string) string {
	return filepath.Join(d.Dir, "files", "volume-"+id)
}

// SnapshotFile is the sparse file holding snapshot id's bytes.
func (d *Deployment) SnapshotFile(id string) string {
	return filepath.Join(d.Dir, "files", "snapshot-"+id)
}

// Errors returns the last n ERROR lines (with their tracebacks' last line)
// of the services' logs, to explain a failed test.
func (d *Deployment) Errors(n int) string {
	logs, _ := filepath.Glob(filepath.Join(d.Dir, "log", "*.log"))
	var b strings.Builder
	for _, l := range logs {
		out, err := os.ReadFile(l)
		if err != nil {
			continue
		}
		var lines []string
		for _, line := range strings.Split(string(out), "\n") {
			// Services retry rabbit until it listens; that is not a failure.
			if strings.Contains(line, " ERROR ") && !strings.Contains(line, "ECONNREFUSED") {
				lines = append(lines, line)
			}
		}
		if len(lines) > n {
			lines = lines[len(lines)-n:]
		}
		if len(lines) > 0 {
			fmt.Fprintf(&b, "--- errors in %s:\n%s\n", filepath.Base(l), strings.Join(lines, "\n"))
		}
	}
	return b.String()
}
