package cindertest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/noauth"
)

// shared is the deployment Main started for this test binary, or why not.
var (
	shared   *Deployment
	startErr error
)

// Main is a TestMain body: it starts one deployment for the whole test
// binary, runs the tests, and stops it whatever happened. Outside CI, when
// the machine cannot run Cinder (not root, packages not installed) the
// tests that call Get skip; with CI=true they fail instead.
func Main(m *testing.M) int {
	switch {
	case os.Geteuid() != 0:
		startErr = fmt.Errorf("%w: not root", ErrUnavailable)
	case len(Missing()) > 0:
		startErr = fmt.Errorf("%w: not installed (run tests/setup): %v", ErrUnavailable, Missing())
	default:
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		shared, startErr = Start(ctx)
		cancel()
		if startErr == nil {
			fmt.Fprintf(os.Stderr, "cindertest: Cinder started in %.1fs at %s\n", shared.Started.Seconds(), shared.Endpoint)
		}
	}
	code := m.Run()
	if shared != nil {
		if err := shared.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "cindertest:", err)
			code = max(code, 1)
		}
	}
	return code
}

// Get returns the shared deployment, or ends the test: a skip when Cinder
// cannot run on this machine outside CI, a failure otherwise.
func Get(t testing.TB) *Deployment {
	t.Helper()
	if shared != nil {
		return shared
	}
	if startErr == nil {
		t.Fatal("cindertest: Get called without cindertest.Main in TestMain")
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
