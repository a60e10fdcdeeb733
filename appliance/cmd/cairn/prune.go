package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func newPruneCmd(a *app) *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "prune [--dry-run]",
		Short: "Delete the restore points their policies do not keep",
		Long: `Apply each object's policy: delete the restore points its keep rules do
not keep. Never deletes a point under a retention lock, one a running job
uses, or anything of an object without a policy. --dry-run lists what would
go, and why each kept point stays. Space comes back with cairn gc run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			res, err := c.Prune(cmd.Context(), dryRun)
			if err != nil {
				return err
			}
			if a.wantJSON() {
				return a.printJSON(res)
			}
			verb := "Removed"
			if dryRun {
				verb = "Would remove"
			}
			t := newTable(a.stdout, "OBJECT", "POLICY", "RESTORE POINT", "TIME", "ACTION")
			for _, o := range res.Objects {
				for _, k := range o.Kept {
					why := "keep: " + strings.Join(k.Reasons, ", ")
					if k.Error != "" {
						why = "kept: " + k.Error
					}
					t.row(objectName(o.Source, o.Object), o.Policy, k.ID, a.when(k.Time), why)
				}
				for _, r := range o.Removed {
					t.row(objectName(o.Source, o.Object), o.Policy, r.ID, a.when(r.Time), strings.ToLower(verb))
				}
			}
			if err := t.flush(); err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.stdout, "\n%s %d restore points, kept %d.\n", verb, res.Removed, res.Kept)
			return err
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "only show what would be removed")
	return cmd
}
