package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/appliance/api/apitest"
)

func TestSourceAddOpenStack(t *testing.T) {
	srv := apitest.NewServer(t)
	dir := t.TempDir()
	secret := filepath.Join(dir, "ac.secret")
	if err := os.WriteFile(secret, []byte("hunter2-never-shown\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	fails(t, srv, exitUsage, "give cloud, auth-url, or noauth", "source", "add", "openstack", "prod")
	fails(t, srv, exitUsage, "noauth needs volume-endpoint and project", "source", "add", "openstack", "lab", "--noauth", "--project", "p")
	fails(t, srv, exitUsage, "needs its secret", "source", "add", "openstack", "prod",
		"--auth-url", "https://keystone:5000/v3", "--application-credential-id", "ac1")
	fails(t, srv, exitUsage, "is empty", "source", "add", "openstack", "prod",
		"--auth-url", "https://keystone:5000/v3", "--application-credential-id", "ac1", "--application-credential-secret-file", empty)
	fails(t, srv, exitUsage, "read the secret", "source", "add", "openstack", "prod",
		"--auth-url", "https://keystone:5000/v3", "--application-credential-id", "ac1", "--application-credential-secret-file", filepath.Join(dir, "none"))
	// The test server offers only "file" sources, which take no secrets:
	// its refusals show valid requests reached it, the secret included.
	r := fails(t, srv, exitUsage, "has no secrets", "source", "add", "openstack", "prod",
		"--auth-url", "https://keystone:5000/v3", "--application-credential-id", "ac1", "--application-credential-secret-file", secret)
	if strings.Contains(r.stderr+r.stdout, "hunter2") {
		t.Errorf("the secret was printed: %s %s", r.stdout, r.stderr)
	}
	fails(t, srv, exitUsage, `source kind "openstack"`, "source", "add", "openstack", "lab",
		"--noauth", "--volume-endpoint", "http://127.0.0.1:8776/v3", "--project", "admin")
	fails(t, srv, exitUsage, `source kind "openstack"`, "source", "add", "openstack", "prod", "--cloud", "prod", "--clouds-file", "clouds.yaml")
}

func TestRestoreOpenStackFlags(t *testing.T) {
	cmd := newRestoreCmd(&app{})
	opts := restoreOptions{}
	probe := &cobra.Command{Use: "probe"}
	addOpenStackRestoreFlags(probe, opts)
	if err := probe.ParseFlags([]string{"--volume-name", "db-restored", "--volume-type", "ssd", "--availability-zone", "az2"}); err != nil {
		t.Fatal(err)
	}
	if got := opts.values(); len(got) != 3 || got["volume-name"] != "db-restored" || got["volume-type"] != "ssd" || got["availability-zone"] != "az2" {
		t.Errorf("options sent: %v", got)
	}
	for _, name := range []string{"volume-name", "volume-type", "availability-zone", "volume-id"} {
		if cmd.Flags().Lookup(name) == nil {
			t.Errorf("cairn restore has no --%s", name)
		}
	}
}
