package main

import (
	"github.com/spf13/cobra"
)

func newPolicyAssignCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "assign NAME SOURCE[/OBJECT]",
		Short: "Apply a policy to a source or one object",
		Long: `Apply a policy to every object of a source (SOURCE) or to one object
(SOURCE/OBJECT); an object's own assignment wins over its source's. A target
assigned to another policy moves to this one.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			p, err := c.AssignPolicy(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			return a.showPolicy(p)
		},
	}
}
