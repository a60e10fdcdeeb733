package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/appliance/api"
	"github.com/cairnhq/cairn/cluster/meta"
)

func newPolicyCreateCmd(a *app) *cobra.Command {
	var req api.PolicyRequest
	cmd := &cobra.Command{
		Use:   "create NAME --schedule SPEC [--keep-last N] [--keep-daily N] [--keep-weekly N] [--keep-monthly N] [--keep-yearly N] [--lock 30d]",
		Short: "Create a backup policy: schedule, retention and retention lock",
		Long: `Create a policy. --schedule is one of
  hourly [:MM] | daily HH:MM | weekly mon,wed-fri HH:MM | monthly 1..31|last HH:MM
  | cron "M H DOM MON DOW"
each with an optional IANA time zone as the last word ("daily 02:00
Europe/Berlin"; default UTC). The --keep-* rules keep the newest restore point
of each of the last N periods that have one; with none set, nothing is ever
pruned. --lock keeps every restore point taken under the policy from being
deleted by anyone, admins included, for that long (units h, d, w, y = 365 d).
See docs/policies.md.

This version records the schedule; the scheduler that runs it is not built
yet. Retention and locks apply now (cairn prune; every new restore point).`,
		Example: `  cairn policy create gold --schedule "daily 02:00 Europe/Berlin" --keep-last 7 --keep-weekly 4 --keep-monthly 12 --lock 30d`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Name = args[0]
			c, err := a.client()
			if err != nil {
				return err
			}
			p, err := c.CreatePolicy(cmd.Context(), req)
			if err != nil {
				return err
			}
			return a.showPolicy(p)
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Schedule, "schedule", "", "when to back up, e.g. \"daily 02:00\"")
	f.IntVar(&req.KeepLast, "keep-last", 0, "keep the N newest restore points")
	f.IntVar(&req.KeepHourly, "keep-hourly", 0, "keep the newest point of each of the last N hours")
	f.IntVar(&req.KeepDaily, "keep-daily", 0, "keep the newest point of each of the last N days")
	f.IntVar(&req.KeepWeekly, "keep-weekly", 0, "keep the newest point of each of the last N ISO weeks")
	f.IntVar(&req.KeepMonthly, "keep-monthly", 0, "keep the newest point of each of the last N months")
	f.IntVar(&req.KeepYearly, "keep-yearly", 0, "keep the newest point of each of the last N years")
	f.StringVar(&req.Lock, "lock", "", "retention lock, e.g. 30d: no one can delete a point before it expires")
	f.StringVar(&req.TZ, "tz", "", "time zone whose days, weeks and months bucket retention (default UTC)")
	return cmd
}

func (a *app) showPolicy(p meta.Policy) error {
	if a.wantJSON() {
		return a.printJSON(p)
	}
	_, err := fmt.Fprintf(a.stdout, "Policy %s: %s; %s; targets %s\n", p.Name, orNone(p.Schedule), retentionText(p.Retention), orNone(joinTargets(p.Targets)))
	return err
}
