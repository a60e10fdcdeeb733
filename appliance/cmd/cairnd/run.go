package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/cairnhq/cairn/appliance/api"
	"github.com/cairnhq/cairn/appliance/jobs"
	"github.com/cairnhq/cairn/appliance/keys"
	"github.com/cairnhq/cairn/appliance/metrics"
	"github.com/cairnhq/cairn/appliance/policy"
	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/member"
	"github.com/cairnhq/cairn/cluster/store"
)

type config struct {
	data, listen, passphraseFile string
	hosts                        []string
	logFormat, logLevel          string
	demo                         bool
	demoVcsim                    string
	demoChurn                    time.Duration

	clusterListen, clusterAdvertise string
	join, token                     string
	deadAfter, healEvery            time.Duration
	verifySchedule, gcSchedule      string
	jobsPerNode, jobsPerSource      int
	jobLease, scheduleTick          time.Duration

	report reportConfig
}

func newLogger(format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", level)}
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	}
	return nil, usageError{fmt.Errorf("--log-format %q: want json or text", format)}
}

func passphrase(file string) ([]byte, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read passphrase: %w", err)
		}
		b = bytes.TrimRight(b, "\r\n")
		if len(b) == 0 {
			return nil, fmt.Errorf("passphrase file %s is empty", file)
		}
		return b, nil
	}
	if p := os.Getenv("CAIRN_PASSPHRASE"); p != "" {
		return []byte(p), nil
	}
	return nil, nil
}

// memoryLimit is the Go heap's soft limit unless GOMEMLIMIT says otherwise:
// the engines' buffers are bounded, and a limit keeps garbage from restores
// (a fresh buffer per chunk read) from growing the heap to twice its size.
const memoryLimit = 160 << 20

func run(ctx context.Context, cfg config) error {
	log, err := newLogger(cfg.logFormat, cfg.logLevel)
	if err != nil {
		return err
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	if err := os.MkdirAll(cfg.data, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	pass, err := passphrase(cfg.passphraseFile)
	if err != nil {
		return err
	}
	if err := checkJoin(cfg); err != nil {
		return err
	}
	for flag, spec := range map[string]string{"--verify-schedule": cfg.verifySchedule, "--gc-schedule": cfg.gcSchedule} {
		if spec == "" {
			continue
		}
		if _, err := policy.ParseSchedule(spec); err != nil {
			return usageError{fmt.Errorf("%s %q: %w", flag, spec, err)}
		}
	}
	switch {
	case cfg.jobsPerNode < 1 || cfg.jobsPerSource < 1:
		return usageError{fmt.Errorf("--jobs-per-node and --jobs-per-source must be at least 1")}
	case cfg.jobLease < 3*time.Second:
		return usageError{fmt.Errorf("--job-lease %s: want at least 3s", cfg.jobLease)}
	case cfg.scheduleTick < 100*time.Millisecond:
		return usageError{fmt.Errorf("--schedule-tick %s: want at least 100ms", cfg.scheduleTick)}
	}
	reports, err := newReporting(cfg.report)
	if err != nil {
		return err
	}
	// The API listener first: its address is published to the cluster.
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()

	chunks, err := store.Open(filepath.Join(cfg.data, "chunks"), store.Options{})
	if err != nil {
		return err
	}
	defer chunks.Close()
	mem, err := member.Start(ctx, member.Config{
		Dir: filepath.Join(cfg.data, "cluster"), Listen: cfg.clusterListen, Advertise: cfg.clusterAdvertise,
		API: ln.Addr().String(), Join: cfg.join, Token: cfg.token, Store: chunks, DeadAfter: cfg.deadAfter, HealEvery: cfg.healEvery, Log: log,
	})
	if err != nil {
		return err
	}
	defer mem.Close()

	masterPath := filepath.Join(cfg.data, "master.key")
	var master *keys.Master
	var status keys.Status
	if secret := mem.JoinedSecret(); secret != nil {
		master, status, err = keys.Adopt(masterPath, secret, pass, pass == nil)
		clear(secret)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s already holds a master key: a node joins with an empty data directory", cfg.data)
		}
	} else {
		master, status, err = keys.Load(masterPath, pass, pass == nil)
	}
	if err != nil {
		return err
	}
	if !status.Sealed {
		log.Warn("THE MASTER KEY IS STORED UNSEALED: anyone who can read " + masterPath +
			" can decrypt every backup. Start cairnd with --passphrase-file or CAIRN_PASSPHRASE to seal it.")
	}
	mem.SetSecret(master.Share())

	log.Info("waiting for the cluster", "node", mem.ID(), "cluster_address", mem.Address())
	if err := mem.Ready(ctx); err != nil {
		return fmt.Errorf("join the cluster: %w", err)
	}
	catalog := mem.Catalog()
	ring := keys.NewRing(master, catalog, nil)
	mgr, err := jobs.New(ctx, catalog, ring, mem.Chunks(), wirePlugins(), jobs.Options{
		Log: log, Secrets: keys.NewSecrets(master, nil), Node: mem.ID(), Collector: collector{mem}, Repairer: repairer{mem},
		Lease: cfg.jobLease,
		// A read that finds a damaged copy fails over and has that copy
		// deleted on its node, and healing restores it; deleting a chunk
		// everywhere would throw the good copies away too.
		Quarantine: func(_ context.Context, id chunk.ID) {
			log.Error("a chunk failed authentication although its checksum held: not deleted, since other copies may be good", "chunk", id.String())
		},
	})
	if err != nil {
		return err
	}
	defer mgr.Close()
	// The scheduler passes on the leader only; its claims and queued jobs
	// go through Raft, so a new leader carries on where the old one
	// stopped. Every node's worker takes queued jobs under a lease.
	go mgr.NewScheduler(jobs.SchedulerOptions{Tick: cfg.scheduleTick, Verify: cfg.verifySchedule, GC: cfg.gcSchedule}).Run(ctx, catalog.IsLeader)
	go mgr.RunWorker(ctx, jobs.WorkerOptions{Tick: cfg.scheduleTick, PerNode: cfg.jobsPerNode, PerSource: cfg.jobsPerSource})
	if cfg.demo {
		stop, err := startDemo(ctx, cfg.data, cfg.demoVcsim, cfg.demoChurn, mgr, log)
		if err != nil {
			return err
		}
		defer stop()
	}

	tlsCfg, err := api.EnsureTLS(cfg.data, cfg.hosts)
	if err != nil {
		return err
	}
	token, err := api.EnsureToken(filepath.Join(cfg.data, "admin.token"))
	if err != nil {
		return err
	}
	stopReports := reports.start(ctx, catalog, log)
	defer stopReports()
	prom := metrics.Handler(metrics.Sources{Catalog: catalog, Store: chunks.Stats, Leader: catalog.IsLeader, Cluster: mem, Log: log})
	srv := api.NewServer(mgr, api.Options{Token: token, Logger: log, Cluster: mem, Reports: catalog,
		Metrics: prom, MetricsPublic: cfg.report.metricsPublic}).HTTPServer(cfg.listen, tlsCfg)
	log.Info("cairnd serving", "node", mem.ID(), "cluster_address", mem.Address(), "url", "https://"+ln.Addr().String()+"/api/v1", "data", cfg.data,
		"ca", filepath.Join(cfg.data, "ca.pem"), "token_file", filepath.Join(cfg.data, "admin.token"))

	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("cairnd stopping")
	shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shut); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("shutdown", "err", strings.TrimSpace(err.Error()))
	}
	return nil
}

// checkJoin refuses --join without --token and the reverse.
func checkJoin(cfg config) error {
	switch {
	case cfg.join != "" && cfg.token == "":
		return usageError{errors.New("--join needs --token: get one with cairn cluster join-token on a member")}
	case cfg.token != "" && cfg.join == "":
		return usageError{errors.New("--token needs --join ADDRESS: the cluster address of a member")}
	}
	return nil
}

// collector sweeps every member's store for the jobs' garbage collection.
type collector struct{ m *member.Member }

func (c collector) Sweep(ctx context.Context, live *store.LiveSet, cutoff, purgeBefore time.Time) (store.SweepStats, int64, error) {
	nodes, err := c.m.Sweep(ctx, live, cutoff, purgeBefore)
	var sum store.SweepStats
	var reclaimed int64
	for _, n := range nodes {
		sum = sum.Add(n.SweepStats)
		reclaimed += n.BytesReclaimed
	}
	return sum, reclaimed, err
}

// repairer adds the members' scrub to the member's repairs of damaged copies.
type repairer struct{ *member.Member }

func (r repairer) Scrub(ctx context.Context) (checked, damaged, repaired int64, err error) {
	nodes, err := r.Member.Scrub(ctx)
	for _, n := range nodes {
		checked += n.Chunks
		damaged += n.Damaged
		repaired += n.Repaired
	}
	return checked, damaged, repaired, err
}
