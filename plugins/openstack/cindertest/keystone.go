package cindertest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
)

// Keystone is a real Keystone (Debian's keystone package, sqlite, fernet
// tokens, served by keystone-wsgi-public) and a second cinder-api of the
// same deployment that authenticates requests through it
// (keystonemiddleware), registered in Keystone's catalog as the
// block-storage service of region RegionOne.
type Keystone struct {
	// AuthURL is Keystone's v3 URL.
	AuthURL string
	// AdminPassword is the password of user admin (domain default), who has
	// the admin role in project admin.
	AdminPassword string
	// Region of the catalog's block-storage endpoint.
	Region string
	// Started is how long starting Keystone took.
	Started time.Duration
}

var (
	ksOnce sync.Once
	ks     *Keystone
	ksErr  error
)

// KeystoneRequired lists the programs StartKeystone runs.
var KeystoneRequired = []string{"/usr/bin/keystone-manage", "/usr/bin/keystone-wsgi-public"}

// Keystone starts Keystone and the Keystone-authenticated cinder-api on the
// first call and returns them; they stop with the deployment. Like Get, it
// skips outside CI when Keystone is not installed and fails otherwise.
func (d *Deployment) Keystone(t testing.TB) *Keystone {
	t.Helper()
	ksOnce.Do(func() {
		for _, p := range KeystoneRequired {
			if _, err := os.Stat(p); err != nil {
				ksErr = fmt.Errorf("%w: not installed (run tests/setup): %s", ErrUnavailable, p)
				return
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		defer cancel()
		ks, ksErr = d.startKeystone(ctx)
		if ksErr == nil {
			fmt.Fprintf(os.Stderr, "cindertest: Keystone started in %.1fs at %s\n", ks.Started.Seconds(), ks.AuthURL)
		}
	})
	if ks != nil {
		return ks
	}
	if os.Getenv("CI") == "" && isUnavailable(ksErr) {
		t.Skipf("cindertest: %v", ksErr)
	}
	t.Fatalf("cindertest: %v", ksErr)
	return nil
}

func (d *Deployment) startKeystone(ctx context.Context) (k *Keystone, err error) {
	t0 := time.Now()
	defer func() {
		if err != nil {
			err = fmt.Errorf("start keystone: %w%s", err, d.logTail())
		}
	}()
	dir := filepath.Join(d.Dir, "keystone")
	for _, sub := range []string{"fernet", "credential"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, err
		}
	}
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	ksPort, apiPort := ports[0], ports[1]
	k = &Keystone{AuthURL: fmt.Sprintf("http://127.0.0.1:%d/v3", ksPort), AdminPassword: "cairn-admin-" + strconv.Itoa(ksPort), Region: "RegionOne"}
	conf := filepath.Join(dir, "keystone.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`[DEFAULT]
log_dir = %[1]s/log
[database]
connection = sqlite:///%[2]s/keystone.sqlite?timeout=60
sqlite_synchronous = false
[token]
provider = fernet
[fernet_tokens]
key_repository = %[2]s/fernet
[fernet_receipts]
key_repository = %[2]s/fernet
[credential]
key_repository = %[2]s/credential
`, d.Dir, dir)), 0o600); err != nil {
		return nil, err
	}
	for _, args := range [][]string{
		{"db_sync"},
		{"fernet_setup", "--keystone-user", "root", "--keystone-group", "root"},
		{"credential_setup", "--keystone-user", "root", "--keystone-group", "root"},
		{"bootstrap", "--bootstrap-password", k.AdminPassword, "--bootstrap-region-id", k.Region,
			"--bootstrap-admin-url", k.AuthURL, "--bootstrap-public-url", k.AuthURL, "--bootstrap-internal-url", k.AuthURL},
	} {
		cmd := d.command(ctx, "/usr/bin/keystone-manage", append([]string{"--config-file", conf}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("keystone-manage %s: %w: %s", args[0], err, lastLines(string(out), 5))
		}
	}
	// The block-storage service and endpoint go straight into the database:
	// keystone-wsgi-public, single-threaded on sqlite, deadlocks on its own
	// database lock when POST /v3/endpoints checks the region ("database is
	// locked" after the timeout), while reads and other writes work.
	catalog := fmt.Sprintf(`import sqlite3
c = sqlite3.connect(%q)
c.execute("insert into service (id, type, enabled, extra) values (?, ?, 1, ?)",
          ("cairncinder", "block-storage", '{"name": "cinderv3"}'))
c.execute("insert into endpoint (id, interface, service_id, url, extra, enabled, region_id) values (?, ?, ?, ?, ?, 1, ?)",
          ("cairncinderpublic", "public", "cairncinder", %q, "{}", %q))
c.commit()
`, filepath.Join(dir, "keystone.sqlite"), fmt.Sprintf("http://127.0.0.1:%d/v3/%%(project_id)s", apiPort), k.Region)
	if out, err := d.command(ctx, "/usr/bin/python3", "-c", catalog).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("register the block-storage endpoint: %w: %s", err, lastLines(string(out), 5))
	}
	srv := d.command(context.Background(), "/usr/bin/keystone-wsgi-public", "--host", "127.0.0.1", "--port", strconv.Itoa(ksPort))
	srv.Env = append(srv.Env, "OS_KEYSTONE_CONFIG_FILES="+conf)
	if err := d.spawn("keystone", srv); err != nil {
		return nil, err
	}

	// A cinder-api that authenticates through Keystone, beside the noauth one.
	cconf := filepath.Join(d.Dir, "cinder-keystone.conf")
	base, err := os.ReadFile(d.conf)
	if err != nil {
		return nil, err
	}
	c := strings.Replace(string(base), "auth_strategy = noauth_include_project_id", "auth_strategy = keystone", 1)
	c = strings.Replace(c, "osapi_volume_listen_port = ", "osapi_volume_listen_port = "+strconv.Itoa(apiPort)+"\n# was ", 1)
	c += fmt.Sprintf(`
[keystone_authtoken]
www_authenticate_uri = %[1]s
auth_url = %[1]s
auth_type = password
username = admin
password = %[2]s
project_name = admin
user_domain_id = default
project_domain_id = default
region_name = %[3]s
`, k.AuthURL, k.AdminPassword, k.Region)
	if err := os.WriteFile(cconf, []byte(c), 0o600); err != nil {
		return nil, err
	}
	if err := d.spawn("cinder-api-keystone", d.command(context.Background(), "/usr/bin/cinder-api", "--config-file", cconf)); err != nil {
		return nil, err
	}
	if err := waitTCP(ctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(ksPort)), 2*time.Minute); err != nil {
		return nil, fmt.Errorf("keystone: %w", err)
	}
	// keystone-wsgi-public listens before it answers: wait for a login.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		_, err := k.Admin(ctx)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return nil, err
		}
	}
	if err := waitTCP(ctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(apiPort)), 2*time.Minute); err != nil {
		return nil, fmt.Errorf("cinder-api with keystone: %w", err)
	}
	k.Started = time.Since(t0)
	return k, nil
}

// Admin returns an identity v3 client as user admin in project admin.
func (k *Keystone) Admin(ctx context.Context) (*gophercloud.ServiceClient, error) {
	pc, err := openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{
		IdentityEndpoint: k.AuthURL, Username: "admin", Password: k.AdminPassword, DomainID: "default",
		Scope: &gophercloud.AuthScope{ProjectName: "admin", DomainID: "default"},
	})
	if err != nil {
		return nil, fmt.Errorf("keystone admin: %w", err)
	}
	return openstack.NewIdentityV3(pc, gophercloud.EndpointOpts{Region: k.Region})
}
