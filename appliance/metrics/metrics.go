// Package metrics exposes the appliance's state to Prometheus.
//
// Every value is read when Prometheus scrapes, from the catalog, the chunk
// store and the cluster, so a metric is never out of step with what the API
// shows and no other package needs to call into this one. The figures are
// gauges (restore points are pruned and job records change state, so counts
// taken from the catalog can go down), except the count of finished jobs. docs/metrics.md lists the names.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cairnhq/cairn/cluster/member"
	"github.com/cairnhq/cairn/cluster/meta"
	"github.com/cairnhq/cairn/cluster/store"
)

// Catalog is what the metrics read; *meta.Local and *meta.Replicated are ones.
type Catalog interface {
	RestorePoints(ctx context.Context, f meta.Filter) ([]meta.RestorePoint, error)
	Jobs(ctx context.Context, f meta.JobFilter) ([]meta.Job, error)
}

// Cluster is the cluster as the metrics see it; *member.Member is one (with
// IsLeader from its catalog).
type Cluster interface {
	Status(ctx context.Context) (member.Status, error)
}

// Sources are where the figures come from; nil fields are left out.
type Sources struct {
	Catalog Catalog
	// Store reports the local chunk store's size.
	Store func() store.Stats
	// Leader says whether this node leads the cluster.
	Leader  func() bool
	Cluster Cluster
	// Log receives scrape errors; they are also the scrape's error.
	Log *slog.Logger
	// Timeout bounds the reads of one scrape; 0 means 10 s.
	Timeout time.Duration
}

// Handler returns the /metrics handler: the appliance's figures plus the Go
// runtime's and the process's.
func Handler(src Sources) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), &collector{src: src})
	var errLog promhttp.Logger
	if src.Log != nil {
		errLog = slog.NewLogLogger(src.Log.Handler(), slog.LevelWarn)
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: errLog, ErrorHandling: promhttp.ContinueOnError})
}

var (
	object = []string{"source", "object"}

	descJobs     = prometheus.NewDesc("cairn_jobs", "Job records in the catalog by kind and state.", []string{"kind", "state"}, nil)
	descFinished = prometheus.NewDesc("cairn_jobs_finished_total", "Jobs that reached a final state, by kind and state.", []string{"kind", "state"}, nil)

	descPoints    = prometheus.NewDesc("cairn_restore_points", "Restore points in the catalog per object.", object, nil)
	descLastOK    = prometheus.NewDesc("cairn_last_successful_backup_timestamp_seconds", "Time of the newest restore point of the object, Unix seconds.", object, nil)
	descRead      = prometheus.NewDesc("cairn_backup_read_bytes", "Bytes read from the source by the backups whose restore points exist, per object.", object, nil)
	descStored    = prometheus.NewDesc("cairn_backup_stored_bytes", "Sealed bytes the backups whose restore points exist stored for the first time, per object.", object, nil)
	descLogical   = prometheus.NewDesc("cairn_backup_logical_bytes", "Disk capacity the restore points of the object represent, summed.", object, nil)
	descLastRead  = prometheus.NewDesc("cairn_last_backup_read_bytes", "Bytes read by the newest backup of the object.", object, nil)
	descLastStore = prometheus.NewDesc("cairn_last_backup_stored_bytes", "Sealed bytes the newest backup of the object stored for the first time.", object, nil)
	descLastDur   = prometheus.NewDesc("cairn_last_backup_duration_seconds", "How long the newest backup of the object took.", object, nil)

	descChunks   = prometheus.NewDesc("cairn_store_chunks", "Chunks in this node's chunk store.", nil, nil)
	descLive     = prometheus.NewDesc("cairn_store_live_bytes", "Sealed bytes of the chunks in this node's store.", nil, nil)
	descSegBytes = prometheus.NewDesc("cairn_store_segment_bytes", "Bytes in this node's segment files, live or not.", nil, nil)
	descSegs     = prometheus.NewDesc("cairn_store_segments", "Segment files in this node's store.", nil, nil)

	descLeader  = prometheus.NewDesc("cairn_cluster_is_leader", "1 if this node leads the cluster, else 0.", nil, nil)
	descMembers = prometheus.NewDesc("cairn_cluster_members", "Cluster members by state and health.", []string{"state", "healthy"}, nil)
	descUnder   = prometheus.NewDesc("cairn_cluster_under_replicated_chunks", "Chunks the last healing round left short of their replica count; -1 before the first round.", nil, nil)

	descUp = prometheus.NewDesc("cairn_scrape_source_up", "1 if the source of a group of metrics answered this scrape.", []string{"source"}, nil)
)

type collector struct{ src Sources }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descJobs, descFinished, descPoints, descLastOK, descRead, descStored, descLogical, descLastRead,
		descLastStore, descLastDur, descChunks, descLive, descSegBytes, descSegs, descLeader, descMembers, descUnder, descUp} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	timeout := c.src.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	up := func(source string, err error) {
		v := 1.0
		if err != nil {
			v = 0
			if c.src.Log != nil {
				c.src.Log.Warn("metrics: read failed", "source", source, "err", err)
			}
		}
		gauge(descUp, v, source)
	}
	if cat := c.src.Catalog; cat != nil {
		up("catalog", c.catalog(ctx, cat, ch))
	}
	if c.src.Store != nil {
		st := c.src.Store()
		gauge(descChunks, float64(st.Chunks))
		gauge(descLive, float64(st.LiveBytes))
		gauge(descSegBytes, float64(st.SegmentBytes))
		gauge(descSegs, float64(st.Segments))
	}
	if c.src.Leader != nil {
		v := 0.0
		if c.src.Leader() {
			v = 1
		}
		gauge(descLeader, v)
	}
	if c.src.Cluster != nil {
		st, err := c.src.Cluster.Status(ctx)
		up("cluster", err)
		if err == nil {
			type key struct{ state, healthy string }
			n := map[key]int{}
			for _, node := range st.Nodes {
				h := "false"
				if node.Healthy {
					h = "true"
				}
				n[key{node.State, h}]++
			}
			for k, v := range n {
				gauge(descMembers, float64(v), k.state, k.healthy)
			}
			gauge(descUnder, float64(st.UnderReplicatedChunks))
		}
	}
}

func (c *collector) catalog(ctx context.Context, cat Catalog, ch chan<- prometheus.Metric) error {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	jobs, err := cat.Jobs(ctx, meta.JobFilter{})
	if err != nil {
		return err
	}
	type ks struct{ kind, state string }
	counts := map[ks]int{}
	for _, j := range jobs {
		counts[ks{j.Kind, j.State}]++
	}
	for k, v := range counts {
		gauge(descJobs, float64(v), k.kind, k.state)
		// Job records are never deleted and a final state never changes,
		// so the count of finished ones only grows: a counter.
		if (meta.Job{State: k.state}).Done() {
			ch <- prometheus.MustNewConstMetric(descFinished, prometheus.CounterValue, float64(v), k.kind, k.state)
		}
	}
	points, err := cat.RestorePoints(ctx, meta.Filter{})
	if err != nil {
		return err
	}
	type obj struct{ source, object string }
	type agg struct {
		n                     int
		read, stored, logical int64
		last                  meta.RestorePoint
	}
	objs := map[obj]*agg{}
	for _, rp := range points {
		k := obj{rp.Source, rp.Object}
		a := objs[k]
		if a == nil {
			a = &agg{}
			objs[k] = a
		}
		a.n++
		a.read += rp.ReadBytes
		a.stored += rp.StoredBytes
		a.logical += rp.LogicalBytes
		if rp.Time.After(a.last.Time) {
			a.last = rp
		}
	}
	for k, a := range objs {
		l := []string{k.source, k.object}
		gauge(descPoints, float64(a.n), l...)
		gauge(descLastOK, float64(a.last.Time.UnixMilli())/1000, l...)
		gauge(descRead, float64(a.read), l...)
		gauge(descStored, float64(a.stored), l...)
		gauge(descLogical, float64(a.logical), l...)
		gauge(descLastRead, float64(a.last.ReadBytes), l...)
		gauge(descLastStore, float64(a.last.StoredBytes), l...)
		gauge(descLastDur, a.last.Duration, l...)
	}
	return nil
}
