package main

import (
	"strconv"

	"github.com/spf13/cobra"
)

func newObjectListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "list SOURCE",
		Short: "List the objects a source can protect",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			list, err := c.Objects(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.wantJSON() {
				return listJSON(a, list)
			}
			t := newTable(a.stdout, "NAME", "KIND", "SIZE", "DISKS")
			for _, o := range list {
				t.row(o.Name, o.Kind, humanBytes(o.Size), strconv.Itoa(o.Disks))
			}
			return t.flush()
		},
	}
}
