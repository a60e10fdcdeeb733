package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/appliance/api"
	"github.com/cairnhq/cairn/appliance/api/apitest"
	"github.com/cairnhq/cairn/cluster/meta"
	"github.com/cairnhq/cairn/plugins"
)

// finish reads a job until it is done, as a follower would.
func finish(t *testing.T, c *api.Client, id string) meta.Job {
	t.Helper()
	for range 100 {
		j, err := c.Job(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if j.Done() {
			return j
		}
	}
	t.Fatalf("job %s never finished", id)
	return meta.Job{}
}

func TestClientRoundTrip(t *testing.T) {
	ctx := context.Background()
	srv := apitest.NewServer(t)
	c := srv.APIClient(t)
	if err := c.Health(ctx); err != nil {
		t.Fatal(err)
	}
	doc, err := c.OpenAPI(ctx)
	if err != nil || !json.Valid(doc) || !strings.Contains(string(doc), `"openapi"`) {
		t.Fatalf("OpenAPI: %v %.40s", err, doc)
	}

	img := filepath.Join(t.TempDir(), "vm.img")
	if err := os.WriteFile(img, make([]byte, 3<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := c.AddSource(ctx, api.AddSourceRequest{Name: "web", Kind: "file", Config: map[string]string{"path": img}})
	if err != nil {
		t.Fatal(err)
	}
	if src.Created.IsZero() || src.Config["path"] != img {
		t.Errorf("added source %+v", src)
	}
	again := api.AddSourceRequest{Name: src.Name, Kind: src.Kind, Config: src.Config}
	if _, err := c.AddSource(ctx, again); !errors.Is(err, meta.ErrExists) {
		t.Errorf("duplicate source: %v, want ErrExists", err)
	}
	var apiErr *api.Error
	if _, err := c.AddSource(ctx, again); !errors.As(err, &apiErr) || apiErr.Status != 409 || apiErr.Code != api.CodeExists {
		t.Errorf("duplicate source: %#v, want *api.Error 409 already_exists", err)
	}
	sources, err := c.Sources(ctx)
	if err != nil || len(sources) != 1 || sources[0].Name != "web" {
		t.Fatalf("Sources = %v, %v", sources, err)
	}
	objs, err := c.Objects(ctx, "web")
	if err != nil || len(objs) != 1 || objs[0].Name != "vm.img" || objs[0].Size != 3<<20 {
		t.Fatalf("Objects = %v, %v", objs, err)
	}
	if _, err := c.Objects(ctx, "nope"); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("Objects of a missing source: %v", err)
	}

	job, err := c.StartBackup(ctx, api.BackupRequest{Source: "web"})
	if err != nil || job.Kind != meta.JobBackup || job.ID == "" {
		t.Fatalf("StartBackup = %+v, %v", job, err)
	}
	job = finish(t, c, job.ID)
	if job.State != meta.JobSucceeded || job.RestorePoint == "" {
		t.Fatalf("backup job ended %+v", job)
	}
	full, err := c.RestorePoint(ctx, job.RestorePoint)
	if err != nil || full.LogicalBytes != 3<<20 || full.Fingerprint == "" {
		t.Fatalf("RestorePoint = %+v, %v", full, err)
	}

	// An empty extent list means "nothing changed" and must reach the
	// service as such, not as "no list".
	job, err = c.StartBackup(ctx, api.BackupRequest{Source: "web", Object: "vm.img", ChangedExtents: []plugins.Extent{}})
	if err != nil {
		t.Fatal(err)
	}
	job = finish(t, c, job.ID)
	if len(job.Messages) != 0 {
		t.Errorf("empty extent list arrived as no list: messages %q", job.Messages)
	}
	incr, err := c.RestorePoint(ctx, job.RestorePoint)
	if err != nil || incr.Base != full.ID || incr.ReadBytes != 0 {
		t.Errorf("incremental = %+v, %v; want base %s and nothing read", incr, err, full.ID)
	}

	list, err := c.RestorePoints(ctx, meta.Filter{Source: "web", Object: "vm.img"})
	if err != nil || len(list) != 2 {
		t.Fatalf("RestorePoints = %v, %v", list, err)
	}
	if list, err := c.RestorePoints(ctx, meta.Filter{Object: "other"}); err != nil || len(list) != 0 || list == nil {
		t.Errorf("RestorePoints of another object = %#v, %v; want an empty list", list, err)
	}

	to := filepath.Join(t.TempDir(), "restored.img")
	job, err = c.StartRestore(ctx, api.RestoreRequest{RestorePoint: incr.ID, To: "file:" + to})
	if err != nil {
		t.Fatal(err)
	}
	if job = finish(t, c, job.ID); job.State != meta.JobSucceeded || job.Target != "file:"+to {
		t.Fatalf("restore job ended %+v", job)
	}
	if fi, err := os.Stat(to); err != nil || fi.Size() != 3<<20 {
		t.Errorf("restored file: %v %v", fi, err)
	}
	if _, err := c.StartRestore(ctx, api.RestoreRequest{RestorePoint: incr.ID, To: "file:" + to}); !errors.Is(err, plugins.ErrExists) {
		t.Errorf("restore over an existing file: %v, want ErrExists", err)
	}
	if _, err := c.StartRestore(ctx, api.RestoreRequest{RestorePoint: incr.ID, To: "file:" + to, Overwrite: true}); err != nil {
		t.Errorf("restore with overwrite: %v", err)
	}

	job, err = c.StartVerify(ctx, full.ID)
	if err != nil {
		t.Fatal(err)
	}
	if job = finish(t, c, job.ID); job.Verify == nil || !job.Verify.OK {
		t.Errorf("verify job ended %+v", job)
	}

	jobs, err := c.Jobs(ctx, 2)
	if err != nil || len(jobs) != 2 || jobs[0].Kind != meta.JobVerify {
		t.Fatalf("Jobs(2) = %v, %v", jobs, err)
	}
	running, err := c.StartVerify(ctx, full.ID)
	if err != nil {
		t.Fatal(err)
	}
	canceled, err := c.CancelJob(ctx, running.ID)
	if err != nil || canceled.State != meta.JobCanceled {
		t.Errorf("CancelJob = %+v, %v", canceled, err)
	}
	if _, err := c.CancelJob(ctx, running.ID); !errors.Is(err, meta.ErrConflict) {
		t.Errorf("second cancel: %v, want ErrConflict", err)
	}
	if _, err := c.Job(ctx, "job-nope"); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("missing job: %v", err)
	}
	// IDs travel escaped, whatever they hold.
	if _, err := c.RestorePoint(ctx, "a/../b?c"); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("odd ID: %v, want ErrNotFound", err)
	}
}

func TestClientErrors(t *testing.T) {
	ctx := context.Background()
	srv := apitest.NewServer(t)

	bad, err := api.NewClient(srv.URL, srv.CAPEM, "wrong")
	if err != nil {
		t.Fatal(err)
	}
	var apiErr *api.Error
	if _, err := bad.Sources(ctx); !errors.As(err, &apiErr) || apiErr.Status != 401 || apiErr.Code != api.CodeUnauthorized {
		t.Errorf("wrong token: %v", err)
	}

	other := apitest.NewServer(t) // another appliance, another CA
	untrusting, err := api.NewClient(srv.URL, other.CAPEM, srv.Token)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := untrusting.Sources(ctx); !errors.Is(err, api.ErrConnect) || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("unknown CA: %v, want ErrConnect about the certificate", err)
	}

	gone := apitest.NewServer(t)
	c := gone.APIClient(t)
	gone.Close()
	if _, err := c.Sources(ctx); !errors.Is(err, api.ErrConnect) {
		t.Errorf("stopped server: %v, want ErrConnect", err)
	}

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := srv.APIClient(t).Sources(canceled); !errors.Is(err, context.Canceled) || errors.Is(err, api.ErrConnect) {
		t.Errorf("canceled context: %v, want context.Canceled only", err)
	}

	for _, u := range []string{"http://127.0.0.1:8443", "127.0.0.1:8443", "https://"} {
		if _, err := api.NewClient(u, nil, "t"); err == nil {
			t.Errorf("NewClient(%q) accepted", u)
		}
	}
	if _, err := api.NewClient(srv.URL, []byte("not PEM"), "t"); err == nil {
		t.Error("NewClient accepted a CA file without certificates")
	}
}
