package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/cluster/meta"
)

func newVerifyCmd(a *app) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "verify ID | --all",
		Short: "Verify a restore point, or all of them",
		Long: `Read every chunk of a restore point back, authenticate it and check the
restore point's fingerprint; with --all, every restore point. A damaged copy
of a chunk is replaced from a good replica on another node (repaired). Waits
for the result, showing progress on stderr, and exits with 1 when a chunk has
no good copy left. -o json prints the result: ok, chunks_checked, corrupt,
missing, repaired, …`,
		Example: "  cairn verify rp-01jd3k9x8m2c4fxy7q\n  cairn verify --all -o json",
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case all && len(args) > 0:
				return usagef("give a restore point ID or --all, not both")
			case !all && len(args) != 1:
				return usagef("give one restore point ID, or --all")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var job meta.Job
			if all {
				job, err = c.StartVerifyAll(ctx)
			} else {
				job, err = c.StartVerify(ctx, args[0])
			}
			if err != nil {
				return err
			}
			job, err = a.follow(ctx, c, job)
			if err != nil {
				return err
			}
			v := job.Verify
			if v == nil && job.State == meta.JobSucceeded {
				return fmt.Errorf("verify job %s finished without a result", job.ID)
			}
			if v == nil {
				return jobFailed(job)
			}
			what := job.RestorePoint
			if all {
				what = fmt.Sprintf("all %d restore points", v.RestorePoints)
			}
			if err := a.showVerify(what, *v); err != nil {
				return err
			}
			if !v.OK {
				return fmt.Errorf("%s: damaged: %d corrupt and %d missing chunks", what, v.Corrupt, v.Missing)
			}
			if job.State != meta.JobSucceeded {
				return jobFailed(job)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "verify every restore point")
	return cmd
}

// showVerify prints what a verification found.
func (a *app) showVerify(id string, v meta.VerifyResult) error {
	if a.wantJSON() {
		return a.printJSON(v)
	}
	f := newFields(a.stdout)
	state := "OK"
	if !v.OK {
		state = "DAMAGED"
	}
	f.add("Restore point", id)
	f.add("Result", state)
	f.add("Checked", fmt.Sprintf("%d chunks, %s", v.ChunksChecked, humanBytes(v.BytesChecked)))
	f.add("Corrupt", fmt.Sprint(v.Corrupt))
	f.add("Missing", fmt.Sprint(v.Missing))
	f.add("Repaired", fmt.Sprint(v.Repaired))
	f.add("Fingerprint", v.Fingerprint)
	for _, e := range v.Errors {
		f.add("Error", e)
	}
	return f.flush()
}
