package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/cluster/member"
)

func newClusterStatusCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the cluster's members, leader and replication health",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			st, err := c.ClusterStatus(cmd.Context())
			if err != nil {
				return err
			}
			return a.showCluster(st)
		},
	}
}

func (a *app) showCluster(st member.Status) error {
	if a.wantJSON() {
		return a.printJSON(st)
	}
	under := "not yet counted"
	if st.UnderReplicatedChunks >= 0 {
		under = strconv.FormatInt(st.UnderReplicatedChunks, 10)
	}
	if _, err := fmt.Fprintf(a.stdout, "Cluster %s, leader %s, placement epoch %d, under-replicated chunks: %s\n\n",
		st.ClusterID, st.Leader, st.Epoch, under); err != nil {
		return err
	}
	t := newTable(a.stdout, "NODE", "ADDRESS", "API", "STATE", "HEALTHY", "ROLE")
	for _, n := range st.Nodes {
		role := "follower"
		switch {
		case n.ID == st.Leader:
			role = "leader"
		case !n.Voter:
			role = "catching up"
		}
		t.row(n.ID, n.Address, n.API, n.State, yesNo(n.Healthy), role)
	}
	return t.flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
