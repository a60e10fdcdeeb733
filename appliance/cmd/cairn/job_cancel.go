package main

import (
	"github.com/spf13/cobra"
)

func newJobCancelCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a job",
		Long:  "Ask a queued or running job to stop, and show it. A job that has already finished is a conflict (exit code 4).",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			job, err := c.CancelJob(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.showJob(job)
		},
	}
}
