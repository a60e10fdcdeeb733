package metrics

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"

	"github.com/cairnhq/cairn/cluster/member"
	"github.com/cairnhq/cairn/cluster/meta"
	"github.com/cairnhq/cairn/cluster/store"
)

type fakeCatalog struct {
	points []meta.RestorePoint
	jobs   []meta.Job
	err    error
}

func (f *fakeCatalog) RestorePoints(context.Context, meta.Filter) ([]meta.RestorePoint, error) {
	return f.points, f.err
}
func (f *fakeCatalog) Jobs(context.Context, meta.JobFilter) ([]meta.Job, error) { return f.jobs, f.err }

type fakeCluster struct{ st member.Status }

func (f fakeCluster) Status(context.Context) (member.Status, error) { return f.st, nil }

func scrape(t *testing.T, src Sources) string {
	t.Helper()
	rec := httptest.NewRecorder()
	Handler(src).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	if rec.Code != 200 {
		t.Fatalf("scrape: %d %s", rec.Code, b)
	}
	return string(b)
}

func value(text, series string) string {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		return ""
	}
	return m[1]
}

func TestCollector(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	cat := &fakeCatalog{
		points: []meta.RestorePoint{
			{ID: "a", Source: "nas", Object: "vm-1", Time: t0, ReadBytes: 100, StoredBytes: 40, LogicalBytes: 1000, Duration: 2},
			{ID: "b", Source: "nas", Object: "vm-1", Time: t0.Add(time.Hour), ReadBytes: 10, StoredBytes: 5, LogicalBytes: 1000, Duration: 0.5},
		},
		jobs: []meta.Job{
			{ID: "j1", Kind: meta.JobBackup, State: meta.JobSucceeded},
			{ID: "j2", Kind: meta.JobBackup, State: meta.JobSucceeded},
			{ID: "j3", Kind: meta.JobBackup, State: meta.JobFailed},
			{ID: "j4", Kind: meta.JobVerify, State: meta.JobRunning},
		},
	}
	leader := true
	src := Sources{
		Catalog: cat, Leader: func() bool { return leader },
		Store: func() store.Stats { return store.Stats{Chunks: 7, LiveBytes: 700, SegmentBytes: 900, Segments: 2} },
		Cluster: fakeCluster{member.Status{UnderReplicatedChunks: 3, Nodes: []member.NodeStatus{
			{ID: "n1", State: "active", Healthy: true}, {ID: "n2", State: "active", Healthy: true}, {ID: "n3", State: "active", Healthy: false},
		}}},
	}
	text := scrape(t, src)
	l := `{object="vm-1",source="nas"}`
	for series, want := range map[string]string{
		`cairn_jobs{kind="backup",state="succeeded"}`:           "2",
		`cairn_jobs{kind="backup",state="failed"}`:              "1",
		`cairn_jobs{kind="verify",state="running"}`:             "1",
		"cairn_restore_points" + l:                              "2",
		"cairn_last_successful_backup_timestamp_seconds" + l:    "1.7000036e+09",
		"cairn_backup_read_bytes" + l:                           "110",
		"cairn_backup_stored_bytes" + l:                         "45",
		"cairn_backup_logical_bytes" + l:                        "2000",
		"cairn_last_backup_read_bytes" + l:                      "10",
		"cairn_last_backup_stored_bytes" + l:                    "5",
		"cairn_last_backup_duration_seconds" + l:                "0.5",
		"cairn_store_chunks":                                    "7",
		"cairn_store_live_bytes":                                "700",
		"cairn_store_segment_bytes":                             "900",
		"cairn_store_segments":                                  "2",
		"cairn_cluster_is_leader":                               "1",
		`cairn_cluster_members{healthy="true",state="active"}`:  "2",
		`cairn_cluster_members{healthy="false",state="active"}`: "1",
		"cairn_cluster_under_replicated_chunks":                 "3",
		`cairn_scrape_source_up{source="catalog"}`:              "1",
	} {
		if got := value(text, series); got != want {
			t.Errorf("%s = %q, want %s", series, got, want)
		}
	}

	if value(text, `cairn_jobs_finished_total{kind="verify",state="running"}`) != "" {
		t.Error("a running job counted as finished")
	}
	if !regexp.MustCompile(`(?m)^# TYPE cairn_jobs_finished_total counter$`).MatchString(text) {
		t.Error("cairn_jobs_finished_total is not a counter")
	}

	leader = false
	cat.err = errors.New("catalog closed")
	text = scrape(t, src)
	if value(text, "cairn_cluster_is_leader") != "0" || value(text, `cairn_scrape_source_up{source="catalog"}`) != "0" {
		t.Errorf("after losing the lead and the catalog:\n%s", text)
	}
	if value(text, "cairn_restore_points"+l) != "" {
		t.Error("catalog figures served although the catalog failed")
	}
}
