package api_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/appliance/api"
	"github.com/cairnhq/cairn/cluster/meta"
)

// notFound is a Service that finds nothing.
type notFound struct{ api.Service }

func (notFound) AddSource(context.Context, api.AddSourceRequest) (meta.Source, error) {
	return meta.Source{}, meta.ErrNotFound
}

func (notFound) StartBackup(context.Context, api.BackupRequest) (meta.Job, error) {
	return meta.Job{}, meta.ErrNotFound
}

func (notFound) StartRestore(context.Context, api.RestoreRequest) (meta.Job, error) {
	return meta.Job{}, meta.ErrNotFound
}

func (notFound) StartVerify(context.Context, string) (meta.Job, error) {
	return meta.Job{}, meta.ErrNotFound
}

func (notFound) CancelJob(context.Context, string) (meta.Job, error) {
	return meta.Job{}, meta.ErrNotFound
}

func (notFound) StartGC(context.Context, api.GCRequest) (meta.Job, error) {
	return meta.Job{}, meta.ErrNotFound
}

func (notFound) CreatePolicy(context.Context, api.PolicyRequest) (meta.Policy, error) {
	return meta.Policy{}, meta.ErrNotFound
}

func (notFound) AssignPolicy(context.Context, string, string) (meta.Policy, error) {
	return meta.Policy{}, meta.ErrNotFound
}

func (notFound) Prune(context.Context, bool) (api.PruneResult, error) {
	return api.PruneResult{}, meta.ErrNotFound
}

// FuzzRequestBodies sends arbitrary bytes as the body of every endpoint
// that takes one. The server must never panic, and must answer with a
// 2xx or a 4xx carrying a JSON error body: no input is a server error.
//
// go test -run XXX -fuzz FuzzRequestBodies -fuzzminimizetime 2s ./appliance/api
//
// (The default minimization budget of 60 s per new input shows as long
// stretches of "0/sec".)
func FuzzRequestBodies(f *testing.F) {
	seeds := []string{
		``, `{}`, `null`, `[]`, `"x"`, `{"source":"web"}`,
		`{"name":"web","kind":"file","config":{"path":"/nonexistent"}}`,
		`{"name":"web","kind":"file","tenant":"Bad Tenant"}`,
		`{"name":"web","kind":"file","created":"yesterday"}`,
		`{"source":"web","object":"disk.img","changed_extents":[{"offset":0,"length":4096}]}`,
		`{"source":"web","changed_extents":[{"offset":9223372036854775807,"length":1}]}`,
		`{"source":"web","changed_extents":[{"offset":1e30,"length":1}]}`,
		`{"source":"web","full":true,"changed_extents":[]}`,
		`{"to":"file:/tmp/x","overwrite":true}`, `{"restore_point":"rp-1","to":"file:/tmp/x"}`,
		`{"to":":"}`, `{"to":"file:"}`, `{"grace":"0s"}`, `{"grace":"-1h"}`, `{"name":"gold","schedule":"daily 02:00","keep_daily":7,"lock":"30d"}`, `{"target":"web/disk.img"}`, `{"dry_run":true}`, `{"unknown":1}`, `{"source":"web"}garbage`,
		"{\"source\":\"\xff\xfe\"}", `{"source":"web",}`, `{"source":{"nested":[1,2,3]}}`,
	}
	for _, s := range seeds {
		f.Add(s)
	}
	// A service that keeps no state keeps runs independent, as coverage
	// guidance needs; valid bodies end there with a 404.
	h := api.NewServer(notFound{}, api.Options{Token: "t", MaxBodyBytes: 1 << 20})
	paths := []string{
		"/api/v1/sources",
		"/api/v1/backups",
		"/api/v1/restore-points/rp-1/restore",
		"/api/v1/restore-points/rp-1/verify",
		"/api/v1/jobs/job-1/cancel",
		"/api/v1/gc",
		"/api/v1/policies",
		"/api/v1/policies/gold/assign",
		"/api/v1/prune",
		"/api/v1/cluster/join-tokens",
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, path := range paths {
			req := httptest.NewRequest("POST", path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer t")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code < 200 || rec.Code >= 500 || (rec.Code >= 300 && rec.Code < 400) {
				t.Fatalf("POST %s %q: status %d %s", path, body, rec.Code, rec.Body)
			}
			if rec.Code >= 400 {
				var e struct{ Error, Code string }
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" || e.Code == "" {
					t.Fatalf("POST %s %q: error body %s", path, body, rec.Body)
				}
				if strings.Contains(e.Error, "\n") {
					t.Fatalf("POST %s %q: multi-line error %q", path, body, e.Error)
				}
			}
		}
	})
}
