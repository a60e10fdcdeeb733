package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/cluster/meta"
)

func newPolicyListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List policies",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			list, err := c.Policies(cmd.Context())
			if err != nil {
				return err
			}
			if a.wantJSON() {
				return listJSON(a, list)
			}
			t := newTable(a.stdout, "NAME", "SCHEDULE", "RETENTION", "TARGETS")
			for _, p := range list {
				t.row(p.Name, orNone(p.Schedule), retentionText(p.Retention), orNone(joinTargets(p.Targets)))
			}
			return t.flush()
		},
	}
}

func retentionText(r meta.Retention) string {
	var parts []string
	for _, k := range []struct {
		name string
		n    int
	}{{"last", r.KeepLast}, {"hourly", r.KeepHourly}, {"daily", r.KeepDaily}, {"weekly", r.KeepWeekly}, {"monthly", r.KeepMonthly}, {"yearly", r.KeepYearly}} {
		if k.n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k.name, k.n))
		}
	}
	if len(parts) == 0 {
		parts = append(parts, "keep all")
	}
	if r.LockSeconds > 0 {
		parts = append(parts, "lock "+lockText(time.Duration(r.LockSeconds)*time.Second))
	}
	if r.TZ != "" {
		parts = append(parts, r.TZ)
	}
	return strings.Join(parts, ", ")
}

func lockText(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

func joinTargets(ts []string) string { return strings.Join(ts, ",") }

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
