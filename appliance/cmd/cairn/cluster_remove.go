package main

import (
	"github.com/spf13/cobra"
)

func newClusterRemoveCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "remove NODE",
		Short: "Drain a node and remove it from the cluster",
		Long: `Remove a node: it stops receiving new chunks, its chunks are copied to the
other nodes, and once none is left only there it leaves the membership and
Raft. Follow it with cairn cluster status. The last node cannot be removed
(exit code 4).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			st, err := c.RemoveNode(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.showCluster(st)
		},
	}
}
