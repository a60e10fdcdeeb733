package main

import (
	"encoding/json"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/appliance/api"
	"github.com/cairnhq/cairn/cluster/meta"
)

// restoreOptions collects the target kinds' restore flags into the request's
// options, by flag name; a flag left empty is not sent. Each kind adds its
// flags in its own file: opts["volume-name"] = f.String("volume-name", ...).
type restoreOptions map[string]*string

func (o restoreOptions) values() map[string]string {
	out := map[string]string{}
	for k, v := range o {
		if *v != "" {
			out[k] = *v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func newRestoreCmd(a *app) *cobra.Command {
	var (
		to        string
		overwrite bool
		wait      bool
		opts      = restoreOptions{}
	)
	cmd := &cobra.Command{
		Use:   "restore ID --to KIND:WHERE",
		Short: "Restore a restore point",
		Long: `Restore a restore point. --to names the kind of target and where:
  file:PATH   a new file or block device on the appliance; an existing file is
              not replaced unless --overwrite is given; a relative PATH is made
              absolute against the current directory.
  kvm:PATH    a new qcow2 (or, with --format raw, raw) image at the absolute
              PATH on the appliance; zeros stay unallocated.
Other kinds name a configured source to restore into (KIND:SOURCE) and take
the restore flags listed below.

Without --wait the job is printed and left running. With --wait its progress
is shown on stderr and the finished job is printed; with -o json, what the
restore made (such as volume_id) is also given at the top level.`,
		Example: "  cairn restore rp-01jd3k9x8m2c4fxy7q --to file:/srv/restored.img --wait",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, where, ok := strings.Cut(to, ":")
			if !ok || kind == "" || where == "" {
				return usagef("--to %q: want file:PATH or KIND:SOURCE", to)
			}
			if kind == "file" || kind == "kvm" { // kinds whose WHERE is a path on the appliance
				abs, err := filepath.Abs(where)
				if err != nil {
					return usage(err)
				}
				where = abs
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			job, err := c.StartRestore(ctx, api.RestoreRequest{RestorePoint: args[0], To: kind + ":" + where,
				Overwrite: overwrite, Options: opts.values()})
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
			if a.wantJSON() {
				if err := a.printJSON(restoredJSON(job)); err != nil {
					return err
				}
			} else if err := a.showJob(job); err != nil {
				return err
			}
			if job.State != meta.JobSucceeded {
				return jobFailed(job)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&to, "to", "", "where to restore: file:PATH on the appliance, or KIND:SOURCE")
	f.BoolVar(&overwrite, "overwrite", false, "replace an existing file")
	f.BoolVar(&wait, "wait", false, "follow the job and print it when it is done")
	addVsphereRestoreFlags(f, opts)
	addRestoreKVMFlags(f, opts)
	addLVMRestoreFlags(cmd, opts)
	addOpenStackRestoreFlags(cmd, opts)
	return cmd
}

// restoredJSON is a finished restore job with its result's fields (such as
// volume_id) also at the top level, where scripts look for them; a field
// of the job itself is never replaced.
func restoredJSON(j meta.Job) map[string]any {
	b, _ := json.Marshal(j)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	for k, v := range j.Result {
		if _, taken := out[k]; !taken {
			out[k] = v
		}
	}
	return out
}
