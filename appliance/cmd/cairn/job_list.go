package main

import (
	"github.com/spf13/cobra"
)

func newJobListCmd(a *app) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List jobs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 || limit > 1000 {
				return usagef("--limit %d: want 1 to 1000", limit)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			list, err := c.Jobs(cmd.Context(), limit)
			if err != nil {
				return err
			}
			if a.wantJSON() {
				return listJSON(a, list)
			}
			t := newTable(a.stdout, "ID", "KIND", "STATE", "OBJECT", "PROGRESS", "CREATED", "RESTORE POINT")
			for _, j := range list {
				t.row(j.ID, j.Kind, j.State, objectName(j.Source, j.Object), progressText(j.Progress),
					a.when(j.Created), j.RestorePoint)
			}
			return t.flush()
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 50, "show at most this many jobs")
	return cmd
}
