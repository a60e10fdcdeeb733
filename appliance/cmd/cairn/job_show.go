package main

import (
	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/cluster/meta"
)

func newJobShowCmd(a *app) *cobra.Command {
	var wait bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show a job",
		Long: `Show a job. With --wait, follow it until it is done, showing progress on
stderr, then show it; the exit code is then 1 unless it succeeded.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			job, err := c.Job(ctx, args[0])
			if err != nil {
				return err
			}
			if !wait {
				return a.showJob(job)
			}
			if job, err = a.follow(ctx, c, job); err != nil {
				return err
			}
			if err := a.showJob(job); err != nil {
				return err
			}
			if job.State != meta.JobSucceeded {
				return jobFailed(job)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "follow the job until it is done")
	return cmd
}
