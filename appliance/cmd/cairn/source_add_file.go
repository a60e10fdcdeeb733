package main

import (
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/appliance/api"
)

func newSourceAddFileCmd(a *app) *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "file NAME --path IMAGE",
		Short: "Add a raw disk image or block device on the appliance",
		Long: `Add a "file" source: a raw disk image or a block device on the appliance. A
relative --path is made absolute against the current directory.`,
		Example: "  cairn source add file web --path /var/lib/images/web.img",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if path == "" {
				return usagef("--path is required")
			}
			abs, err := filepath.Abs(path)
			if err != nil {
				return usage(err)
			}
			return a.addSource(cmd, api.AddSourceRequest{Name: args[0], Kind: "file", Config: map[string]string{"path": abs}})
		},
	}
	cmd.Flags().StringVar(&path, "path", "", "image file or block device on the appliance")
	return cmd
}
