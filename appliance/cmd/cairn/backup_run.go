package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/appliance/api"
	"github.com/cairnhq/cairn/cluster/meta"
	"github.com/cairnhq/cairn/plugins"
)

func newBackupRunCmd(a *app) *cobra.Command {
	var (
		full    bool
		extents string
		wait    bool
	)
	cmd := &cobra.Command{
		Use:   "run SOURCE[/OBJECT]",
		Short: "Back up an object",
		Long: `Start a backup of an object. The object may be left out when the source has
only one. An incremental backup reads what changed since the last restore
point: with --changed-extents, the byte ranges listed in FILE (one
"OFFSET LENGTH" pair of decimal byte counts per line; blank lines and lines
starting with # are ignored); without it, the source's own change tracking
or a full read compared against the last restore point. --full reads
everything.

Without --wait the job is printed and left running. With --wait its progress
is shown on stderr and the new restore point is printed.`,
		Example: `  cairn backup run web --wait
  cairn backup run web/disk.img --changed-extents changed.txt --wait -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			source, object, _ := strings.Cut(args[0], "/")
			if source == "" || (strings.Contains(args[0], "/") && object == "") {
				return usagef("%q: want SOURCE or SOURCE/OBJECT", args[0])
			}
			if full && extents != "" {
				return usagef("--full and --changed-extents exclude each other")
			}
			req := api.BackupRequest{Source: source, Object: object, Full: full}
			if extents != "" {
				list, err := readExtents(extents)
				if err != nil {
					return err
				}
				req.ChangedExtents = list
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			job, err := c.StartBackup(ctx, req)
			if err != nil {
				return err
			}
			if !wait {
				return a.printStarted(job, "of "+objectName(job.Source, job.Object))
			}
			job, err = a.follow(ctx, c, job)
			if err != nil {
				return err
			}
			if job.State != meta.JobSucceeded {
				return jobFailed(job)
			}
			rp, err := c.RestorePoint(ctx, job.RestorePoint)
			if err != nil {
				return fmt.Errorf("backup job %s succeeded, but reading its restore point %s failed: %w", job.ID, job.RestorePoint, err)
			}
			if a.wantJSON() {
				return a.printJSON(rp)
			}
			return a.backupSummary(rp)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&full, "full", false, "read everything, not only what changed")
	f.StringVar(&extents, "changed-extents", "", "`FILE` listing the byte ranges changed since the last backup")
	f.BoolVar(&wait, "wait", false, "follow the job and print the restore point it makes")
	return cmd
}

// readExtents reads a --changed-extents file. Any problem with it is a
// usage error.
func readExtents(path string) ([]plugins.Extent, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usagef("changed extents file: %w", err)
	}
	defer f.Close()
	list, err := plugins.ParseExtents(f)
	if err != nil {
		return nil, usagef("changed extents file %s: %w", path, err)
	}
	return list, nil
}

// printStarted prints a job that was started and left running.
func (a *app) printStarted(j meta.Job, what string) error {
	if a.wantJSON() {
		return a.printJSON(j)
	}
	if what != "" {
		what = " " + what
	}
	_, err := fmt.Fprintf(a.stdout, "Started %s job %s%s.\nFollow it with: cairn job show %s --wait\n", j.Kind, j.ID, what, j.ID)
	return err
}

// backupSummary prints a new restore point in a few lines.
func (a *app) backupSummary(rp meta.RestorePoint) error {
	kind := "full"
	if rp.Base != "" {
		kind = "incremental on " + rp.Base
	}
	_, err := fmt.Fprintf(a.stdout, "Restore point %s of %s (%s)\n  size %s, read %s, new %s (%s stored)\n  fingerprint %s\n",
		rp.ID, objectName(rp.Source, rp.Object), kind,
		humanBytes(rp.LogicalBytes), humanBytes(rp.ReadBytes), humanBytes(rp.NewBytes), humanBytes(rp.StoredBytes),
		rp.Fingerprint)
	return err
}
