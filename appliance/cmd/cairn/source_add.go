package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/appliance/api"
)

// newSourceAddCmd is "cairn source add KIND NAME ...": one subcommand per
// kind of source, each with the flags that kind needs.
func newSourceAddCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "add KIND NAME [flags]",
		Short: "Add a source",
		Long: `Add a source to back up from. Each kind of source has its own subcommand
and flags; secrets (passwords, credential secrets) are read from files, sent
over the appliance's TLS connection, stored sealed under the master key and
never shown again.`,
		// Runs only when no kind's subcommand matched: say which kinds exist
		// rather than complaining about that kind's flags.
		FParseErrWhitelist: cobra.FParseErrWhitelist{UnknownFlags: true},
		Args:               cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var kinds []string
			for _, c := range cmd.Commands() {
				if c.IsAvailableCommand() {
					kinds = append(kinds, c.Name())
				}
			}
			if len(args) == 0 {
				return usagef("name the kind of source: %s", strings.Join(kinds, ", "))
			}
			return usagef("source kind %q: the CLI adds %s sources", args[0], strings.Join(kinds, ", "))
		},
	}
	cmd.AddCommand(
		newSourceAddFileCmd(a),
		newSourceAddVsphereCmd(a),
		newSourceAddKVMCmd(a),
		newSourceAddLVMCmd(a),
		newSourceAddOpenStackCmd(a),
	)
	return cmd
}

// addSource sends req and prints the source the appliance recorded.
func (a *app) addSource(cmd *cobra.Command, req api.AddSourceRequest) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	src, err := c.AddSource(cmd.Context(), req)
	if err != nil {
		return err
	}
	if a.wantJSON() {
		return a.printJSON(src)
	}
	_, err = fmt.Fprintf(a.stdout, "Added %s source %s (%s).\n", src.Kind, src.Name, configText(src.Config))
	return err
}
