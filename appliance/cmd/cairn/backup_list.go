package main

import (
	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/cluster/meta"
)

func newBackupListCmd(a *app) *cobra.Command {
	var f meta.Filter
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List restore points",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			list, err := c.RestorePoints(cmd.Context(), f)
			if err != nil {
				return err
			}
			if a.wantJSON() {
				return listJSON(a, list)
			}
			t := newTable(a.stdout, "ID", "TIME", "SOURCE", "OBJECT", "SIZE", "NEW", "BASE", "VERIFIED")
			for _, rp := range list {
				t.row(rp.ID, a.when(rp.Time), rp.Source, rp.Object, humanBytes(rp.LogicalBytes),
					humanBytes(rp.NewBytes), rp.Base, rp.Verify.State)
			}
			return t.flush()
		},
	}
	cmd.Flags().StringVar(&f.Source, "source", "", "only restore points of this source")
	cmd.Flags().StringVar(&f.Object, "object", "", "only restore points of this object")
	return cmd
}
