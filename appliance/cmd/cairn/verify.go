package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/cluster/meta"
)

func newVerifyCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "verify ID",
		Short: "Verify a restore point",
		Long: `Read every chunk of a restore point back, authenticate it and check the
restore point's fingerprint. Waits for the result, showing progress on
stderr, and exits with 1 when damage is found.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			job, err := c.StartVerify(ctx, args[0])
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
			if err := a.showVerify(job.RestorePoint, *v); err != nil {
				return err
			}
			if !v.OK {
				return fmt.Errorf("restore point %s is damaged: %d corrupt and %d missing chunks", job.RestorePoint, v.Corrupt, v.Missing)
			}
			if job.State != meta.JobSucceeded {
				return jobFailed(job)
			}
			return nil
		},
	}
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
	f.add("Fingerprint", v.Fingerprint)
	for _, e := range v.Errors {
		f.add("Error", e)
	}
	return f.flush()
}
