package jobs_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairnhq/cairn/appliance/api"
	"github.com/cairnhq/cairn/appliance/jobs"
	"github.com/cairnhq/cairn/appliance/jobs/jobstest"
	"github.com/cairnhq/cairn/appliance/keys"
	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/meta"
	"github.com/cairnhq/cairn/cluster/store"
	"github.com/cairnhq/cairn/plugins"
	"github.com/cairnhq/cairn/plugins/file"
)

// gate is a store whose Puts wait until the gate opens, so a test can hold a
// backup in flight.
type gate struct {
	*store.Memory
	open chan struct{}
}

func (g *gate) Put(ctx context.Context, id chunk.ID, sealed []byte) (bool, error) {
	select {
	case <-g.open:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	return g.Memory.Put(ctx, id, sealed)
}

type fixture struct {
	m       *jobs.Manager
	catalog *meta.Memory
	store   *gate
	dir     string
}

func newFixture(t *testing.T, extra ...plugins.Kind) *fixture {
	t.Helper()
	dir := t.TempDir()
	catalog := meta.NewMemory()
	master, _, err := keys.Load(filepath.Join(dir, "master.key"), nil, true)
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{Memory: store.NewMemory(store.Options{}), open: make(chan struct{})}
	close(g.open)
	m, err := jobs.New(context.Background(), catalog, keys.NewRing(master, catalog, nil), g,
		append([]plugins.Kind{file.Kind()}, extra...), jobs.Options{Secrets: keys.NewSecrets(master, nil), Collector: memCollector{g.Memory}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return &fixture{m: m, catalog: catalog, store: g, dir: dir}
}

func (f *fixture) image(t *testing.T, name string, n int) string {
	b := make([]byte, n)
	rand.Read(b)
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func wait(t *testing.T, m *jobs.Manager, id string) meta.Job {
	t.Helper()
	return jobstest.Wait(t, m, id, 30*time.Second)
}

func TestBackupRestoreVerify(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	img := f.image(t, "a.img", 9<<20+5)
	if _, err := f.m.AddSource(ctx, api.AddSourceRequest{Name: "a", Kind: "file", Config: map[string]string{"path": img}}); err != nil {
		t.Fatal(err)
	}
	j, err := f.m.StartBackup(ctx, api.BackupRequest{Source: "a"})
	if err != nil {
		t.Fatal(err)
	}
	j = wait(t, f.m, j.ID)
	if j.State != meta.JobSucceeded || j.RestorePoint == "" || j.Progress.Done != j.Progress.Total || j.Progress.Total != 9<<20+5 {
		t.Fatalf("backup job: %+v", j)
	}
	rp, err := f.m.RestorePoint(ctx, j.RestorePoint)
	if err != nil || rp.Object != "a.img" || rp.NewChunks != 3 || rp.Tenant != jobs.DefaultTenant {
		t.Fatalf("restore point %+v, %v", rp, err)
	}

	out := filepath.Join(f.dir, "out.img")
	j, err = f.m.StartRestore(ctx, api.RestoreRequest{RestorePoint: rp.ID, To: "file:" + out})
	if err != nil {
		t.Fatal(err)
	}
	if j = wait(t, f.m, j.ID); j.State != meta.JobSucceeded {
		t.Fatalf("restore job: %+v", j)
	}
	a, _ := os.ReadFile(img)
	b, _ := os.ReadFile(out)
	if !bytes.Equal(a, b) {
		t.Fatal("restored image differs")
	}

	j, _ = f.m.StartVerify(ctx, rp.ID)
	if j = wait(t, f.m, j.ID); j.State != meta.JobSucceeded || j.Verify == nil || !j.Verify.OK || j.Verify.ChunksChecked != 3 {
		t.Fatalf("verify job: %+v", j)
	}
	if rp, _ = f.m.RestorePoint(ctx, rp.ID); rp.Verify.State != meta.VerifyOK {
		t.Fatalf("verify state %q, want ok", rp.Verify.State)
	}
}

func TestRequestsRefused(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	img := f.image(t, "a.img", 100)
	f.m.AddSource(ctx, api.AddSourceRequest{Name: "a", Kind: "file", Config: map[string]string{"path": img}})
	cases := []struct {
		name string
		call func() error
		want error
	}{
		{"bad source name", func() error {
			_, err := f.m.AddSource(ctx, api.AddSourceRequest{Name: "Bad Name", Kind: "file"})
			return err
		}, api.ErrInvalid},
		{"unknown kind", func() error {
			_, err := f.m.AddSource(ctx, api.AddSourceRequest{Name: "b", Kind: "tape"})
			return err
		}, api.ErrInvalid},
		{"duplicate", func() error {
			_, err := f.m.AddSource(ctx, api.AddSourceRequest{Name: "a", Kind: "file", Config: map[string]string{"path": img}})
			return err
		}, meta.ErrExists},
		{"unknown source", func() error { _, err := f.m.StartBackup(ctx, api.BackupRequest{Source: "zz"}); return err }, meta.ErrNotFound},
		{"full with extents", func() error {
			_, err := f.m.StartBackup(ctx, api.BackupRequest{Source: "a", Full: true, ChangedExtents: []plugins.Extent{}})
			return err
		}, api.ErrInvalid},
		{"unknown restore point", func() error { _, err := f.m.StartVerify(ctx, "rp-zz"); return err }, meta.ErrNotFound},
		{"cancel unknown job", func() error { _, err := f.m.CancelJob(ctx, "job-zz"); return err }, meta.ErrNotFound},
	}
	for _, c := range cases {
		if err := c.call(); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
}

func TestOneBackupPerObjectAndCancel(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.store.open = make(chan struct{}) // hold every Put
	img := f.image(t, "a.img", 8<<20)
	f.m.AddSource(ctx, api.AddSourceRequest{Name: "a", Kind: "file", Config: map[string]string{"path": img}})
	j, err := f.m.StartBackup(ctx, api.BackupRequest{Source: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.StartBackup(ctx, api.BackupRequest{Source: "a"}); !errors.Is(err, meta.ErrConflict) {
		t.Fatalf("second backup of the same object: %v, want ErrConflict", err)
	}
	if _, err := f.m.CancelJob(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	if j = wait(t, f.m, j.ID); j.State != meta.JobCanceled {
		t.Fatalf("canceled job is %q", j.State)
	}
	if rps, _ := f.m.RestorePoints(ctx, meta.Filter{}); len(rps) != 0 {
		t.Fatalf("a canceled backup left %d restore points", len(rps))
	}
	if _, err := f.m.CancelJob(ctx, j.ID); !errors.Is(err, meta.ErrConflict) {
		t.Fatalf("cancel of a finished job: %v, want ErrConflict", err)
	}
	close(f.store.open)
	j, err = f.m.StartBackup(ctx, api.BackupRequest{Source: "a"})
	if err != nil {
		t.Fatalf("backup after a canceled one: %v", err)
	}
	if j = wait(t, f.m, j.ID); j.State != meta.JobSucceeded {
		t.Fatalf("backup after cancel: %+v", j)
	}
}
