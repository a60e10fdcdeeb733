package main

import (
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/appliance/api"
	"github.com/cairnhq/cairn/cluster/meta"
)

func newRestoreCmd(a *app) *cobra.Command {
	var (
		to        string
		overwrite bool
		wait      bool
	)
	cmd := &cobra.Command{
		Use:   "restore ID --to file:PATH",
		Short: "Restore a restore point",
		Long: `Restore a restore point into a file or block device on the appliance. An
existing file is not replaced unless --overwrite is given. A relative PATH is
made absolute against the current directory.

Without --wait the job is printed and left running. With --wait its progress
is shown on stderr and the finished job is printed.`,
		Example: "  cairn restore rp-01jd3k9x8m2c4fxy7q --to file:/srv/restored.img --wait",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, ok := strings.CutPrefix(to, "file:")
			if !ok || path == "" {
				return usagef("--to %q: want file:PATH", to)
			}
			abs, err := filepath.Abs(path)
			if err != nil {
				return usage(err)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			job, err := c.StartRestore(ctx, api.RestoreRequest{RestorePoint: args[0], To: "file:" + abs, Overwrite: overwrite})
			if err != nil {
				return err
			}
			if !wait {
				return a.printStarted(job, "of "+job.RestorePoint+" to "+job.Target)
			}
			job, err = a.follow(ctx, c, job)
			if err != nil {
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
	f := cmd.Flags()
	f.StringVar(&to, "to", "", "where to restore: file:PATH on the appliance")
	f.BoolVar(&overwrite, "overwrite", false, "replace an existing file")
	f.BoolVar(&wait, "wait", false, "follow the job and print it when it is done")
	return cmd
}
