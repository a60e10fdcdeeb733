package main

import (
	"github.com/spf13/cobra"
)

func newSourceListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List sources",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			list, err := c.Sources(cmd.Context())
			if err != nil {
				return err
			}
			if a.wantJSON() {
				return listJSON(a, list)
			}
			t := newTable(a.stdout, "NAME", "KIND", "TENANT", "CREATED", "CONFIG")
			for _, s := range list {
				t.row(s.Name, s.Kind, s.Tenant, a.when(s.Created), configText(s.Config))
			}
			return t.flush()
		},
	}
}
