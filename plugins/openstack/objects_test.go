package openstack

import (
	"context"
	"errors"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"

	"github.com/cairnhq/cairn/plugins"
	"github.com/cairnhq/cairn/plugins/openstack/cindertest"
)

// TestObjects: volumes are listed with their project, size, status and
// metadata, named by a unique name or else by ID, and opened by either.
func TestObjects(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	mk := func(name string, meta map[string]string) *volumes.Volume {
		v, err := volumes.Create(ctx, e.sc, volumes.CreateOpts{Size: 1, Name: name, Metadata: meta}, nil).Extract()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.remove(t, v.ID) })
		if v, err = e.a.waitVolume(ctx, v.ID, "available"); err != nil {
			t.Fatal(err)
		}
		return v
	}
	db := mk("objects-db", map[string]string{"app": "postgres"})
	twin1, twin2 := mk("objects-twin", nil), mk("objects-twin", nil)

	src := e.source()
	objs, err := src.Objects(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]plugins.Object{}
	for _, o := range objs {
		byName[o.Name] = o
	}
	o, ok := byName["objects-db"]
	if !ok || o.Kind != ObjectKind || o.Size != 1<<30 || o.Disks != 1 || o.Info["id"] != db.ID ||
		o.Info["status"] != "available" || o.Info["size_gb"] != "1" || o.Info["project"] != cindertest.Project ||
		o.Info["metadata.app"] != "postgres" {
		t.Errorf("objects-db listed as %+v", o)
	}
	for _, v := range []*volumes.Volume{twin1, twin2} {
		if _, ok := byName[v.ID]; !ok {
			t.Errorf("volume %s shares its name; want it listed by ID", v.ID)
		}
	}
	if _, ok := byName["objects-twin"]; ok {
		t.Error("a shared name is listed as an object")
	}
	if _, err := src.Open(ctx, "objects-twin", plugins.OpenOptions{}); err == nil {
		t.Error("Open by a shared name succeeded")
	}
	snap, err := src.Open(ctx, twin1.ID, plugins.OpenOptions{})
	if err != nil {
		t.Fatalf("Open by ID: %v", err)
	}
	if err := snap.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Open(ctx, "objects-db", plugins.OpenOptions{ChangedExtents: []plugins.Extent{}}); !errors.Is(err, plugins.ErrUnsupported) {
		t.Errorf("Open with a changed-extents list: %v, want plugins.ErrUnsupported", err)
	}
	e.noLeftovers(t, twin1.ID)
}
