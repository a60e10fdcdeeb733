package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/cluster/meta"
)

func newSourceAddCmd(a *app) *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "add file NAME --path IMAGE",
		Short: "Add a source",
		Long: `Add a source to back up from. The only kind is "file": a raw disk image or
a block device on the appliance. A relative --path is made absolute against
the current directory.`,
		Example: "  cairn source add file web --path /var/lib/images/web.img",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, name := args[0], args[1]
			if kind != "file" {
				return usagef("source kind %q: the CLI adds \"file\" sources", kind)
			}
			if path == "" {
				return usagef("--path is required")
			}
			abs, err := filepath.Abs(path)
			if err != nil {
				return usage(err)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			src, err := c.AddSource(cmd.Context(), meta.Source{Name: name, Kind: kind, Config: map[string]string{"path": abs}})
			if err != nil {
				return err
			}
			if a.wantJSON() {
				return a.printJSON(src)
			}
			_, err = fmt.Fprintf(a.stdout, "Added %s source %s (%s).\n", src.Kind, src.Name, configText(src.Config))
			return err
		},
	}
	cmd.Flags().StringVar(&path, "path", "", "image file or block device on the appliance")
	return cmd
}
