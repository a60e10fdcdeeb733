package main

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/appliance/report"
)

func newReportCmd(a *app) *cobra.Command {
	g := group("report", "Show backup reports")
	g.AddCommand(newReportDailyCmd(a))
	return g
}

func newReportDailyCmd(a *app) *cobra.Command {
	var format, date, tz string
	cmd := &cobra.Command{
		Use:   "daily",
		Short: "Show the daily report: per object the last result, bytes, dedupe ratio and failures",
		Long: `Show the daily report of one calendar day: per source/object the result of
the last backup that finished that day, the last backup time, its duration,
bytes read and stored, the dedupe ratio (logical bytes / stored bytes), the
restore point count and every failed backup with its error. Objects without
a successful backup that day are flagged.

--format text (the default) prints a table, json the report as the API gives
it (also -o json), html a self-contained page, as mailed by cairnd.`,
		Example: `  cairn report daily
  cairn report daily --date 2026-03-08 --tz Europe/Berlin --format html > report.html`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if a.wantJSON() && !cmd.Flags().Changed("format") {
				format = "json"
			}
			switch format {
			case "text", "json", "html":
			default:
				return usagef("--format %q: want text, json or html", format)
			}
			if date != "" {
				if _, err := report.Day(date, ""); err != nil {
					return usagef("--date %q: want YYYY-MM-DD", date)
				}
			}
			if tz == "" {
				tz = a.getenv("TZ")
			}
			if _, err := report.Zone(tz); err != nil {
				return usagef("--tz %q: want an IANA time zone such as Europe/Berlin", tz)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			wire := format
			if wire == "text" {
				wire = "json"
			}
			data, err := c.DailyReport(cmd.Context(), date, tz, wire)
			if err != nil {
				return err
			}
			switch format {
			case "html":
				_, err := a.stdout.Write(data)
				return err
			case "json":
				var buf bytes.Buffer
				if err := json.Indent(&buf, data, "", "  "); err != nil {
					return fmt.Errorf("decode report: %w", err)
				}
				_, err := a.stdout.Write(buf.Bytes())
				return err
			}
			var r report.Report
			if err := json.Unmarshal(data, &r); err != nil {
				return fmt.Errorf("decode report: %w", err)
			}
			// JSON times carry an offset, not the zone: restore the zone
			// so that times print with its abbreviation.
			if loc, err := report.Zone(r.TimeZone); err == nil {
				r.Start = r.Start.In(loc)
			}
			return report.Text(a.stdout, r)
		},
	}
	f := cmd.Flags()
	f.StringVar(&format, "format", "text", "text, json or html")
	f.StringVar(&date, "date", "", "the day, YYYY-MM-DD (default: today in --tz)")
	f.StringVar(&tz, "tz", "", "IANA time zone of the day, such as Europe/Berlin (default: $TZ, else UTC)")
	return cmd
}
