// Command cairnd is the Cairn appliance daemon. With no flags it runs a
// single-node appliance on embedded storage in ./cairn-data: it creates its
// CA, HTTPS certificate, admin token and master key on first start and serves
// the REST API under /api/v1.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/appliance/api"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRoot().ExecuteContext(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "cairnd: %v\n", err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

type usageError struct{ error }

func newRoot() *cobra.Command {
	var cfg config
	cmd := &cobra.Command{
		Use:   "cairnd",
		Short: "Run a Cairn backup appliance node",
		Long: `cairnd runs a Cairn appliance node. With no flags it starts a single-node
appliance with embedded storage in ./cairn-data, creating on first start:

  ca.pem       the CA of the HTTPS certificate (give it to clients: cairn --ca)
  admin.token  the admin API token, mode 0600 (cairn --token-file)
  master.key   the master key, sealed by the passphrase when one is given

  cluster/     this node's identity in the cluster (its CA, certificate,
               Raft log); a single node is a one-member cluster
  chunks/      the node's chunk store

The master key is sealed by a passphrase from --passphrase-file or the
CAIRN_PASSPHRASE environment variable. Without one, cairnd keeps it in an
unsealed 0600 key file and warns loudly: fine to try Cairn, not for production.

With --demo it also runs an embedded vSphere simulator (govmomi's vcsim with
Cairn's changed-block-tracking extension) holding three VMs whose disks hold
ext4 filesystems, built at start under DATA/demo-vcsim and registered as the
source "demo": try "cairn object list demo" and "cairn backup run demo/web
--wait". The simulator keeps its VMs in memory, so each start rebuilds them.

A cluster: start the first node with --cluster-listen ADDR2; get a token
with cairn cluster join-token; start each other node, on its first start,
with --cluster-listen ADDR3 --join ADDR2 --token TOKEN. Any node answers
the API.`,
		Args:          cobra.NoArgs,
		Version:       api.Version(),
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.data, "data", "./cairn-data", "data directory")
	f.StringVar(&cfg.listen, "listen", "127.0.0.1:8443", "HTTPS address of the API")
	f.StringVar(&cfg.passphraseFile, "passphrase-file", "", "file holding the passphrase that seals the master key (or CAIRN_PASSPHRASE)")
	f.StringSliceVar(&cfg.hosts, "tls-host", nil, "extra host names or IPs for the HTTPS certificate")
	f.StringVar(&cfg.logFormat, "log-format", "json", "log format: json or text")
	f.StringVar(&cfg.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.BoolVar(&cfg.demo, "demo", false, "also run an embedded vSphere simulator with three VMs, registered as source \"demo\"")
	f.StringVar(&cfg.demoVcsim, "demo-vcsim", "127.0.0.1:8989", "address of the --demo simulator (keep it across restarts)")
	f.DurationVar(&cfg.demoChurn, "demo-churn", 30*time.Second, "with --demo, how often the web VM's guest writes to its disk (0: never)")
	f.StringVar(&cfg.clusterListen, "cluster-listen", "127.0.0.1:0", "address of the cluster listener (Raft, chunks, joins; mutual TLS); port 0 picks one, fine for a single node")
	f.StringVar(&cfg.clusterAdvertise, "cluster-advertise", "", "address other nodes reach this one at (default: the cluster listener's)")
	f.StringVar(&cfg.join, "join", "", "on first start, join the cluster of the member at this cluster address (needs --token)")
	f.StringVar(&cfg.token, "token", "", "join token from cairn cluster join-token (with --join)")
	f.DurationVar(&cfg.deadAfter, "dead-after", 30*time.Second, "how long a node may be unreachable before its chunks are re-replicated")
	f.DurationVar(&cfg.healEvery, "heal-every", 10*time.Second, "how often the leader checks every chunk's replicas and repairs them")
	f.StringVar(&cfg.verifySchedule, "verify-schedule", "weekly sun 03:00", "when the leader verifies every restore point and scrubs every node (a policy schedule; empty: never)")
	f.StringVar(&cfg.gcSchedule, "gc-schedule", "daily 04:00", "when the leader collects garbage with the default grace (a policy schedule; empty: never)")
	f.IntVar(&cfg.jobsPerNode, "jobs-per-node", 4, "scheduled backups this node runs at once")
	f.IntVar(&cfg.jobsPerSource, "jobs-per-source", 2, "scheduled backups of one source running at once, cluster-wide")
	f.DurationVar(&cfg.jobLease, "job-lease", 30*time.Second, "how long a running job's lease lasts; a job whose node stops renewing it for this long is interrupted and its scheduled run retried")
	f.DurationVar(&cfg.scheduleTick, "schedule-tick", 5*time.Second, "how often the leader looks for due scheduled runs and nodes look for queued jobs")
	reportFlags(f, &cfg.report)
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	return cmd
}
