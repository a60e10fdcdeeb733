package openstack

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/applicationcredentials"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"

	"github.com/cairnhq/cairn/plugins"
)

// TestKeystone backs up a volume through a real Keystone: a project whose
// user has only the member role, an application credential of that user
// (and the user's password through clouds.yaml), and a cinder-api that
// checks every token. It shows that the member role is enough for
// everything a backup does, and that a wrong secret is a clear error that
// does not show the secret.
func TestKeystone(t *testing.T) {
	e := newEnv(t)
	ks := e.d.Keystone(t)
	ctx := context.Background()
	admin, err := ks.Admin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := volSeq.Add(1)
	proj, err := projects.Create(ctx, admin, projects.CreateOpts{Name: fmt.Sprintf("tenant-%d", n), DomainID: "default"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	const password = "backup-user-password"
	user, err := users.Create(ctx, admin, users.CreateOpts{Name: fmt.Sprintf("backup-%d", n), DomainID: "default",
		DefaultProjectID: proj.ID, Password: password}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	page, err := roles.List(admin, roles.ListOpts{Name: "member"}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rs, _ := roles.ExtractRoles(page)
	if len(rs) != 1 {
		t.Fatalf("roles named member: %+v", rs)
	}
	if err := roles.Assign(ctx, admin, rs[0].ID, roles.AssignOpts{UserID: user.ID, ProjectID: proj.ID}).ExtractErr(); err != nil {
		t.Fatal(err)
	}

	// As the user: an application credential, and a volume in the project
	// through the Keystone-authenticated Cinder.
	pc, err := openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{IdentityEndpoint: ks.AuthURL,
		UserID: user.ID, Password: password, Scope: &gophercloud.AuthScope{ProjectID: proj.ID}})
	if err != nil {
		t.Fatal(err)
	}
	uid, err := openstack.NewIdentityV3(pc, gophercloud.EndpointOpts{})
	if err != nil {
		t.Fatal(err)
	}
	ac, err := applicationcredentials.Create(ctx, uid, user.ID, applicationcredentials.CreateOpts{Name: "cairn"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	usc, err := openstack.NewBlockStorageV3(pc, gophercloud.EndpointOpts{Region: ks.Region})
	if err != nil {
		t.Fatal(err)
	}
	usc.Microversion = Microversion
	v, err := volumes.Create(ctx, usc, volumes.CreateOpts{Size: 1, Name: "keystone-data"}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.remove(t, v.ID) })
	if _, err := e.a.waitVolume(ctx, v.ID, "available"); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("written by the project's guest\n"), 1000)
	if err := writeSparse(e.d.VolumeFile(v.ID), 0, data); err != nil {
		t.Fatal(err)
	}

	backup := func(t *testing.T, c Config) {
		t.Helper()
		src := NewSource(c, testTiming)
		objs, err := src.Objects(ctx)
		if err != nil {
			t.Fatalf("Objects: %v", err)
		}
		if len(objs) != 1 || objs[0].Name != "keystone-data" {
			t.Fatalf("Objects = %+v, want the project's one volume", objs)
		}
		snap, err := src.Open(ctx, "keystone-data", plugins.OpenOptions{})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer snap.Close(ctx)
		d := snap.Disks()[0]
		if _, err := d.Changes(ctx, nil); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(data))
		if _, err := d.ReadAt(got, 0); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("ReadAt: %v; or other bytes than the volume holds", err)
		}
		if err := snap.Close(ctx); err != nil {
			t.Fatal(err)
		}
		e.noLeftovers(t, v.ID)
	}

	t.Run("application credential", func(t *testing.T) {
		c, err := ParseConfig(map[string]string{SetAuthURL: ks.AuthURL, SetAppCredID: ac.ID, SetRegion: ks.Region,
			SetInterface: "public", SetHost: applianceHost}, map[string]string{SecretAppCred: ac.Secret})
		if err != nil {
			t.Fatal(err)
		}
		backup(t, c)
	})
	t.Run("clouds.yaml with a password", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "clouds.yaml")
		yaml := fmt.Sprintf("clouds:\n  lab:\n    auth:\n      auth_url: %s\n      username: %s\n      password: %s\n"+
			"      user_domain_id: default\n      project_id: %s\n    region_name: %s\n", ks.AuthURL, user.Name, password, proj.ID, ks.Region)
		if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := ParseConfig(map[string]string{SetCloud: "lab", SetCloudsFile: file, SetHost: applianceHost}, nil)
		if err != nil {
			t.Fatal(err)
		}
		backup(t, c)
	})
	t.Run("wrong secret", func(t *testing.T) {
		const wrong = "not-the-secret-0123456789"
		c, err := ParseConfig(map[string]string{SetAuthURL: ks.AuthURL, SetAppCredID: ac.ID, SetHost: applianceHost},
			map[string]string{SecretAppCred: wrong})
		if err != nil {
			t.Fatal(err)
		}
		_, err = NewSource(c, testTiming).Objects(ctx)
		if err == nil || !strings.Contains(err.Error(), "authenticate") || strings.Contains(err.Error(), wrong) {
			t.Fatalf("Objects with a wrong secret: %v; want an authentication error without the secret", err)
		}
		t.Logf("error: %v", err)
	})
}
