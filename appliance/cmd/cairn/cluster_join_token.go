package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newClusterJoinTokenCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "join-token",
		Short: "Issue a token that lets one new node join the cluster",
		Long: `Issue a join token: it admits one node, once, within 15 minutes. It also
carries the cluster CA's fingerprint, so the new node checks it talks to
this cluster before it sends the token. Treat it as a password.

Start the new node, with an empty data directory, as:
  cairnd --data DIR --listen ADDR --cluster-listen ADDR3 --join JOIN --token TOKEN`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			tok, err := c.IssueJoinToken(cmd.Context())
			if err != nil {
				return err
			}
			if a.wantJSON() {
				return a.printJSON(tok)
			}
			_, err = fmt.Fprintf(a.stdout, "%s\n\nValid until %s, for one node. Start it with:\n  cairnd --cluster-listen HOST:PORT --join %s --token %s\n",
				tok.Token, a.when(tok.Expires), tok.Join, tok.Token)
			return err
		},
	}
}
