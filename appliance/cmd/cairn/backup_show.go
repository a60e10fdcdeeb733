package main

import (
	"github.com/spf13/cobra"
)

func newBackupShowCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show a restore point",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			rp, err := c.RestorePoint(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.showRestorePoint(rp)
		},
	}
}
