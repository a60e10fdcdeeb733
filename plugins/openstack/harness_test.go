package openstack

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/snapshots"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"

	"github.com/cairnhq/cairn/plugins/openstack/cindertest"
)

// TestMain starts Cinder once for the package. The conformance suite works
// on gigabyte volumes (Cinder's smallest): a low GC target returns their
// buffers before the next test allocates its own, which under the race
// detector's shadow memory is the difference between a few gigabytes and
// the out-of-memory killer.
func TestMain(m *testing.M) {
	debug.SetGCPercent(25)
	os.Exit(cindertest.Main(m))
}

// applianceHost is the connector host the tests' plugin attaches as.
const applianceHost = "cairn-appliance-test"

// testTiming keeps waits short and checks the attachment often.
var testTiming = Timing{Wait: time.Minute, Check: 100 * time.Millisecond, Cleanup: 5 * time.Second}

// env is the deployment and a client the tests use as the cloud's admin
// (the "guest" side: creating volumes, writing them, listing leftovers).
type env struct {
	d  *cindertest.Deployment
	sc *gophercloud.ServiceClient
	a  *api
}

func newEnv(t *testing.T) *env {
	t.Helper()
	d := cindertest.Get(t)
	sc, err := d.Client(d.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	return &env{d: d, sc: sc, a: &api{sc: sc, host: "guest", wait: time.Minute}}
}

// config is a noauth source configuration for endpoint (the API or a
// proxy in front of it).
func (e *env) config(endpoint string) Config {
	c, err := ParseConfig(map[string]string{
		SetNoAuth: "true", SetVolumeEndpoint: endpoint, SetProject: cindertest.Project, SetHost: applianceHost,
	}, nil)
	if err != nil {
		panic(err)
	}
	return c
}

func (e *env) source() *Source { return NewSource(e.config(e.d.Endpoint), testTiming) }

var volSeq atomic.Int64

// volume creates a volume of size GiB named prefix-N, attaches it to a
// guest host through the attachments API, and writes the non-zero 64 KiB
// pieces of content through the attachment's device. The volume, its
// snapshots and attachments are removed when the test ends.
func (e *env) volume(t *testing.T, prefix string, sizeGB int, content []byte) (*volumes.Volume, *attachment) {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("%s-%d", prefix, volSeq.Add(1))
	v, err := volumes.Create(ctx, e.sc, volumes.CreateOpts{Size: sizeGB, Name: name}, nil).Extract()
	if err != nil {
		t.Fatalf("create volume: %v", err)
	}
	t.Cleanup(func() { e.remove(t, v.ID) })
	if v, err = e.a.waitVolume(ctx, v.ID, "available"); err != nil {
		t.Fatal(err)
	}
	att, err := e.a.attach(ctx, v.ID)
	if err != nil {
		t.Fatalf("attach volume %s to the guest: %v", v.ID, err)
	}
	if err := writeSparse(att.Device.String(), 0, content); err != nil {
		t.Fatal(err)
	}
	if v, err = e.a.waitVolume(ctx, v.ID, "in-use"); err != nil {
		t.Fatal(err)
	}
	return v, att
}

// writeSparse writes the non-zero 64 KiB pieces of p at off.
func writeSparse(path string, off int64, p []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	const piece = 64 << 10
	zero := make([]byte, piece)
	for i := 0; i < len(p); i += piece {
		b := p[i:min(i+piece, len(p))]
		if bytes.Equal(b, zero[:len(b)]) {
			continue
		}
		if _, err := f.WriteAt(b, off+int64(i)); err != nil {
			return err
		}
	}
	return f.Sync()
}

// remove deletes a test volume with its snapshots and attachments.
func (e *env) remove(t *testing.T, id string) {
	ctx := context.Background()
	snaps, err := snapshots.ListDetail(e.sc, snapshots.ListOpts{VolumeID: id}).AllPages(ctx)
	if err == nil {
		all, _ := snapshots.ExtractSnapshots(snaps)
		for _, s := range all {
			if err := e.a.deleteSnapshot(ctx, s.ID); err != nil {
				t.Errorf("clean up: %v", err)
			}
		}
	}
	if err := e.a.removeVolume(ctx, id); err != nil {
		t.Errorf("clean up: %v", err)
	}
}

// leftovers lists what the plugin made that still exists: any volume with
// a Cairn role, snapshots of volumeID in an error state, and more than one
// kept backup snapshot of it (the change token).
func (e *env) leftovers(volumeID string) ([]string, error) {
	ctx := context.Background()
	vols, err := e.a.listVolumes(ctx, volumes.ListOpts{})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, v := range vols {
		if v.Metadata[metaRole] != "" && v.Metadata[metaRole] != roleRestore {
			out = append(out, fmt.Sprintf("volume %s (%s, %s, %s)", v.ID, v.Name, v.Metadata[metaRole], v.Status))
		}
	}
	page, err := snapshots.ListDetail(e.sc, snapshots.ListOpts{VolumeID: volumeID}).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	snaps, err := snapshots.ExtractSnapshots(page)
	if err != nil {
		return nil, err
	}
	kept := 0
	for _, s := range snaps {
		switch {
		case s.Status != "available":
			out = append(out, fmt.Sprintf("snapshot %s (%s)", s.ID, s.Status))
		case strings.HasPrefix(s.Name, namePrefix):
			if kept++; kept > 1 {
				out = append(out, fmt.Sprintf("snapshot %s: a second kept backup snapshot", s.ID))
			}
		}
	}
	return out, nil
}

// noLeftovers fails the test if leftovers lists anything.
func (e *env) noLeftovers(t *testing.T, volumeID string) {
	t.Helper()
	left, err := e.leftovers(volumeID)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("left behind: %s", strings.Join(left, "; "))
	}
}
