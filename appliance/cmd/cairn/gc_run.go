package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/appliance/api"
	"github.com/cairnhq/cairn/cluster/meta"
)

func newGCRunCmd(a *app) *cobra.Command {
	var (
		grace string
		wait  bool
	)
	cmd := &cobra.Command{
		Use:   "run [--wait] [--grace DURATION]",
		Short: "Collect garbage: remove chunks no restore point references",
		Long: `Start a garbage-collection round. It marks every chunk every restore point
references; on every node, a chunk nothing references and no one has used
for the grace period (default 1h; running backups hold it back further) is
tombstoned, and one tombstoned by an earlier round and unused since is
deleted, then the node compacts. Space therefore comes back in the second
round after restore points are deleted; with no backup in flight,
--grace 0s makes that two quick runs. One round runs at a time in the
cluster, and none while a node is down.

With --wait the round's result is printed (-o json: the gc result with
bytes_reclaimed); without, the job.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if grace != "" {
				if d, err := time.ParseDuration(grace); err != nil || d < 0 {
					return usagef("--grace %q: want a duration such as 1h or 0s", grace)
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			job, err := c.StartGC(ctx, api.GCRequest{Grace: grace})
			if err != nil {
				return err
			}
			if !wait {
				return a.printStarted(job, "")
			}
			job, err = a.follow(ctx, c, job)
			if err != nil {
				return err
			}
			if job.GC != nil {
				if err := a.showGC(*job.GC); err != nil {
					return err
				}
			}
			if job.State != meta.JobSucceeded {
				return jobFailed(job)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&grace, "grace", "", "how long a chunk must have gone unused to be collected (default 1h)")
	cmd.Flags().BoolVar(&wait, "wait", false, "follow the round and print its result")
	return cmd
}

func (a *app) showGC(g meta.GCResult) error {
	if a.wantJSON() {
		return a.printJSON(g)
	}
	f := newFields(a.stdout)
	f.add("Epoch", fmt.Sprint(g.Epoch))
	f.add("Marked", fmt.Sprintf("%d chunks of %d restore points", g.LiveChunks, g.RestorePoints))
	f.add("Scanned", fmt.Sprint(g.Scanned))
	f.add("Tombstoned", fmt.Sprint(g.Tombstoned))
	f.add("Deleted", fmt.Sprintf("%d chunks, %s", g.Deleted, humanBytes(g.DeletedBytes)))
	f.add("Reclaimed", humanBytes(g.BytesReclaimed))
	return f.flush()
}
