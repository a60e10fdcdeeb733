package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newBackupDeleteCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a restore point",
		Long: `Delete a restore point from the catalog. Its chunks are collected by later
garbage-collection rounds (cairn gc run) once nothing else references them;
restore points built on it stay whole. Refused (exit code 4) while its
retention lock holds — for everyone, admins included — while a running
backup builds on it, or while a restore or verify reads it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.DeleteRestorePoint(cmd.Context(), args[0]); err != nil {
				return err
			}
			if a.wantJSON() {
				return a.printJSON(map[string]string{"deleted": args[0]})
			}
			_, err = fmt.Fprintf(a.stdout, "Deleted restore point %s; cairn gc run reclaims its space.\n", args[0])
			return err
		},
	}
}
